"""tempbench's own token loop over a transformers model's forward and KV cache (no `generate`).

Why: `model.generate` spends most of a decode step in Python and small kernels around the model (logits
processors, stopping criteria, `prepare_inputs_for_generation`, position ids, the attention mask rebuilt every step,
the KV cache grown by `torch.cat`): about 39 ms per step at batch 16 on the Qwen2.5-VL-7B architecture, where
reading the weights and the KV cache once takes about 4.6 ms. This module keeps only what a step needs:

- :class:`TokenRule` chooses the next token exactly as `generate` does for tempbench's `GenerationSettings`
  (scores in float32; repetition penalty over each row's own prompt and answer, as transformers 5.24 and as
  any batch of one; `min_new_tokens` masks the EOS ids; temperature, then top-p; argmax or one
  `torch.multinomial` draw per step over the whole batch, so a seeded sampling run draws what `generate` draws);
- :func:`decode` runs the loop: finished rows get the pad id, the loop stops when every row has ended or after
  `max_new_tokens`, as `generate`;
- decode backends (:class:`DynamicStep`: the model's own cache; :class:`StaticStep`: K/V preallocated for the whole
  answer, written in place, the mask built once and flipped one slot per step, its attention by default the grouped
  one-token attention of step_attention.py (each KV head read once for its query heads); :class:`GraphStep`: the
  static step captured once per batch as a CUDA graph and replayed, GPU only);
- cache surgery on transformers' dynamic caches for prefix sharing (:func:`select_rows`, :func:`merge_rows`):
  rows are picked or stacked on the batch axis for every tensor a layer holds (attention K/V, and the conv and
  recurrent states of linear-attention layers, e.g. Qwen3.5's gated DeltaNet); only attention K/V have a sequence
  axis, and rows of different lengths are stacked with their padding on the LEFT (never between a prefix and its
  continuation: a recurrent state would be changed by padding steps).

Equality with `generate` token for token (float32, tiny Qwen2.5-VL / Qwen3-VL / Qwen3.5) is tested in
tests/test_models_sharing.py.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any

import torch

BACKENDS = ("transformers", "dynamic", "static", "cuda-graph")
# attention of the static / graph step: `grouped` (step_attention.py: each KV head read once for its query heads)
# or `stock` (the model's own sdpa attention, as in prefill)
STEP_ATTENTION = ("grouped", "stock")
ALIGN = 16  # the static step's K/V length is a multiple of this (SDPA's memory-efficient kernel aligns mask rows)


# --------------------------------------------------------------------------------------------------- next token


class TokenRule:
    """The next token from float32 scores (R, V), as `generate` with the same settings."""

    def __init__(self, settings, eos_ids: list[int], vocab: int, device):
        self.s = settings
        self.eos = torch.tensor(sorted(set(int(e) for e in eos_ids)), dtype=torch.long, device=device)
        self.vocab = vocab
        self.min_new = int(settings.min_new_tokens or 0)
        self.penalty = float(settings.repetition_penalty)

    def __call__(self, scores: torch.Tensor, n_new: int, seen: torch.Tensor | None) -> torch.Tensor:
        s = self.s
        if seen is not None and self.penalty != 1.0:
            penalised = torch.where(scores < 0, scores * self.penalty, scores / self.penalty)
            scores = torch.where(seen, penalised, scores)
        if n_new < self.min_new:
            scores = scores.clone()
            scores[:, self.eos] = -float("inf")
        if not s.do_sample:
            return torch.argmax(scores, dim=-1)
        if float(s.temperature) != 1.0:
            scores = scores / float(s.temperature)
        if float(s.top_p) < 1.0:
            sorted_logits, sorted_indices = torch.sort(scores, descending=False)
            cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
            remove = cumulative <= (1 - float(s.top_p))
            remove[..., -1:] = False
            scores = scores.masked_fill(remove.scatter(1, sorted_indices, remove), -float("inf"))
        probs = torch.nn.functional.softmax(scores, dim=-1)
        return torch.multinomial(probs, num_samples=1).squeeze(1)


def seen_matrix(rows: list[list[int]], vocab: int, device) -> torch.Tensor:
    """(R, V) bool: which ids each row's prompt holds (for the repetition penalty)."""
    seen = torch.zeros((len(rows), vocab), dtype=torch.bool, device=device)
    for i, r in enumerate(rows):
        if r:
            seen[i, torch.as_tensor(r, dtype=torch.long, device=device)] = True
    return seen


@dataclass
class DecodeStats:
    """What the token loop did, summed over calls: decode steps, seconds in them, seconds spent capturing graphs
    (compile time). With `record`, each call also appends its shape (videos, prefix tokens and vision patches per
    video, each row's video and suffix tokens, rows, cache width) and, synchronised, its stage seconds (prefix prefill with the vision tower, suffix prefill, decode) to
    `batches`: for benchmarks (the synchronisation costs a little). `step_attention`: the attention of the last
    static / graph step (:data:`STEP_ATTENTION`), None for the dynamic step."""

    steps: int = 0
    step_seconds: float = 0.0
    capture_seconds: float = 0.0
    captures: int = 0
    backend: str = "dynamic"
    step_attention: str | None = None
    fallbacks: list = field(default_factory=list)
    record: bool = False
    batches: list = field(default_factory=list)


def decode(step, first_scores: torch.Tensor, rule: TokenRule, *, max_new_tokens: int, pad_id: int,
           seen: torch.Tensor | None = None, stats: DecodeStats | None = None, sync=None) -> torch.Tensor:
    """Generate up to `max_new_tokens` per row. `first_scores` (R, V) are the logits after the prompt;
    `step(tokens (R,), k)` feeds token k of every row and returns the next logits (R, V). Returns (R, T) ids:
    each row's answer, then `pad_id` after its EOS (T <= max_new_tokens; the loop stops when all rows ended)."""
    scores = first_scores.float()
    rows = scores.shape[0]
    unfinished = torch.ones(rows, dtype=torch.bool, device=scores.device)
    out = []
    t0 = time.perf_counter()
    for k in range(max_new_tokens):
        nxt = rule(scores, k, seen)
        nxt = torch.where(unfinished, nxt, torch.full_like(nxt, pad_id))
        out.append(nxt)
        if seen is not None:
            seen[torch.arange(rows, device=seen.device), nxt] |= unfinished
        unfinished = unfinished & ~torch.isin(nxt, rule.eos)
        if k + 1 == max_new_tokens or not bool(unfinished.any()):
            break
        scores = step(nxt, k).float()
        if stats is not None:
            stats.steps += 1
    if stats is not None:
        if sync is not None:
            sync()
        stats.step_seconds += time.perf_counter() - t0
    return torch.stack(out, dim=1)


# --------------------------------------------------------------------------------------------------- caches


def cache_kwarg(model) -> str:
    """The forward keyword of the KV cache: `cache` (transformers >= 5.2x) or `past_key_values` (5.17)."""
    import inspect

    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


_SEQ = ("keys", "values")  # attention K/V (batch, heads, seq, dim)
_STATES = ("conv_states", "recurrent_states")  # linear attention: {index: (batch, ...)} or a tensor


def _layers(cache) -> list:
    layers = getattr(cache, "layers", None)
    if layers is None:
        raise TypeError(f"{type(cache).__name__}: no per-layer storage (transformers 5.x caches have .layers)")
    return layers


def _check_layer(layer) -> None:
    for name, value in vars(layer).items():
        if isinstance(value, torch.Tensor) and value.ndim > 0 and name not in _SEQ + _STATES:
            raise TypeError(f"cache layer {type(layer).__name__} holds tensor {name!r}: prefix sharing does not know "
                            "how to copy it")


def _map_layer(layer, seq_fn, state_fn):
    new = copy.copy(layer)
    for name, value in vars(layer).items():
        if isinstance(value, (list, dict)) and name not in _STATES:
            setattr(new, name, copy.copy(value))
    for name in _SEQ:
        value = getattr(layer, name, None)
        if isinstance(value, torch.Tensor) and value.ndim == 4:
            setattr(new, name, seq_fn(value))
    for name in _STATES:
        value = getattr(layer, name, None)
        if isinstance(value, dict):
            setattr(new, name, {k: (state_fn(v) if isinstance(v, torch.Tensor) else v) for k, v in value.items()})
        elif isinstance(value, torch.Tensor):
            setattr(new, name, state_fn(value))
    return new


def select_rows(cache, index: torch.Tensor):
    """A new cache holding rows `index` of `cache` (every layer, every tensor; repeats allowed: a prefix
    expanded to each of its queries). `cache` is not changed."""
    out = copy.copy(cache)
    layers = _layers(cache)
    for layer in layers:
        _check_layer(layer)
    idx = index.to(torch.long)
    out.layers = [_map_layer(layer, lambda t: t.index_select(0, idx.to(t.device)),
                             lambda t: t.index_select(0, idx.to(t.device))) for layer in layers]
    return out


def cache_width(cache) -> int:
    """Sequence length of the attention K/V (the same for every attention layer of a cache)."""
    for layer in _layers(cache):
        keys = getattr(layer, "keys", None)
        if isinstance(keys, torch.Tensor) and keys.ndim == 4:
            return int(keys.shape[-2])
    return 0


def merge_rows(caches: list, order: torch.Tensor):
    """Stack caches of possibly different sequence lengths on the batch axis, attention K/V left-padded with zeros
    to the longest (the caller's attention mask hides the padding), then reorder the stacked rows by `order`
    (row i of the result = stacked row order[i])."""
    width = max(cache_width(c) for c in caches)
    out = copy.copy(caches[0])
    merged = []
    for parts in zip(*[_layers(c) for c in caches]):
        base = parts[0]
        new = copy.copy(base)
        for name, value in vars(base).items():
            if isinstance(value, (list, dict)) and name not in _STATES:
                setattr(new, name, copy.copy(value))
        for name in _SEQ:
            if isinstance(getattr(base, name, None), torch.Tensor) and getattr(base, name).ndim == 4:
                padded = [torch.nn.functional.pad(getattr(p, name), (0, 0, width - getattr(p, name).shape[-2], 0))
                          for p in parts]
                setattr(new, name, torch.cat(padded, 0).index_select(0, order.to(padded[0].device)))
        for name in _STATES:
            value = getattr(base, name, None)
            if isinstance(value, dict):
                setattr(new, name, {k: (torch.cat([getattr(p, name)[k] for p in parts], 0)
                                        .index_select(0, order.to(v.device)) if isinstance(v, torch.Tensor) else v)
                                    for k, v in value.items()})
            elif isinstance(value, torch.Tensor):
                setattr(new, name, torch.cat([getattr(p, name) for p in parts], 0).index_select(0, order.to(value.device)))
        merged.append(new)
    out.layers = merged
    return out


def has_linear_layers(cache) -> bool:
    """Whether some layer keeps conv / recurrent states (no sequence axis: no padding may enter them)."""
    return any(getattr(layer, name, None) not in (None, {}) for layer in _layers(cache) for name in _STATES)


# --------------------------------------------------------------------------------------------------- steps


def _positions(base: torch.Tensor, k: int) -> torch.Tensor:
    """(4, R, 1) position ids of decode step k: text row, then the three M-RoPE rows, all `base + k` (after the
    prompt every axis advances together); `base` (2, R): text position and M-RoPE position of the first new token."""
    text = base[0] + k
    mrope = base[1] + k
    return torch.stack([text, mrope, mrope, mrope], 0).unsqueeze(-1)


class DynamicStep:
    """A decode step through the model's own (dynamic) cache and a 2-D attention mask grown by one column."""

    def __init__(self, model, cache, attention_mask: torch.Tensor, base: torch.Tensor):
        self.model, self.cache, self.mask, self.base = model, cache, attention_mask, base
        self.kw = cache_kwarg(model)

    def __call__(self, tokens: torch.Tensor, k: int) -> torch.Tensor:
        self.mask = torch.cat([self.mask, self.mask.new_ones((self.mask.shape[0], 1))], dim=1)
        out = self.model(input_ids=tokens[:, None], attention_mask=self.mask, position_ids=_positions(self.base, k),
                         use_cache=True, logits_to_keep=1, **{self.kw: self.cache})
        return out.logits[:, -1]


class StaticKV:
    """K/V of every attention layer preallocated for the prompt and the whole answer (R, H, L, D), written in place
    at slot `index` (a 1-element device tensor: a CUDA graph reads it at replay). Duck-types the cache interface
    the attention layers call (`update`, `get_seq_length`). The step passes a prepared 4-D mask, which
    transformers' mask builders return as it is (5.17 and 5.24), so no mask is built inside a step."""

    is_compileable = True

    def __init__(self, keys: list[torch.Tensor], values: list[torch.Tensor], index: torch.Tensor):
        self.keys, self.values, self.index = keys, values, index
        self.layers = []

    def update(self, key_states, value_states, layer_idx, *args, **kwargs):
        self.keys[layer_idx].index_copy_(2, self.index, key_states)
        self.values[layer_idx].index_copy_(2, self.index, value_states)
        return self.keys[layer_idx], self.values[layer_idx]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return int(self.keys[0].shape[-2])

    def get_mask_sizes(self, *args, **kwargs):  # pragma: no cover - masks are passed in prepared
        return self.keys[0].shape[-2], 0


def static_ok(model, cache) -> str | None:
    """Why the static / graph backends cannot run this model and cache (None when they can)."""
    if getattr(model.config, "_attn_implementation", None) not in ("sdpa",):
        return f"attention {getattr(model.config, '_attn_implementation', None)!r} (the static step passes sdpa masks)"
    if has_linear_layers(cache):
        return "linear-attention layers (their recurrent states are not preallocated)"
    for layer in _layers(cache):
        keys = getattr(layer, "keys", None)
        if not (isinstance(keys, torch.Tensor) and keys.ndim == 4):
            return f"cache layer {type(layer).__name__} without attention K/V"
    return None


class StaticStep:
    """Decode step over :class:`StaticKV`: the prompt's K/V copied once into buffers that hold the whole answer,
    the 4-D mask prepared once and opened one slot per step; nothing grows, nothing is rebuilt.

    The mask is additive in the model's dtype (0 = attend, -inf = hidden): SDPA turns a boolean mask into exactly
    this in every layer at every step, so preparing it once changes no value. The buffers' length is rounded up to a
    multiple of :data:`ALIGN` (the extra slots stay hidden), so that SDPA's memory-efficient kernel finds the mask's
    rows aligned and does not pad a copy of it in every layer."""

    def __init__(self, model, cache, attention_mask: torch.Tensor, base: torch.Tensor, max_new_tokens: int,
                 attention: str = "grouped"):
        if attention not in STEP_ATTENTION:
            raise ValueError(f"attention={attention!r}: use one of {STEP_ATTENTION}")
        self.model = model
        self.kw = cache_kwarg(model)
        self.attention = attention
        if attention == "grouped":
            from tempbench.models.qwen.step_attention import attention_configs, register

            register()
            self._configs = attention_configs(model)
        layers = _layers(cache)
        rows, width = attention_mask.shape
        self.width = width
        total = -(-(width + max_new_tokens) // ALIGN) * ALIGN
        keys, values = [], []
        for layer in layers:
            k, v = layer.keys, layer.values
            kb = k.new_zeros((k.shape[0], k.shape[1], total, k.shape[3]))
            vb = v.new_zeros((v.shape[0], v.shape[1], total, v.shape[3]))
            kb[:, :, :width].copy_(k)
            vb[:, :, :width].copy_(v)
            keys.append(kb)
            values.append(vb)
        dev = attention_mask.device
        self.index = torch.zeros(1, dtype=torch.long, device=dev)
        self.kv = StaticKV(keys, values, self.index)
        dtype = keys[0].dtype if keys else torch.float32
        self.mask = torch.full((rows, 1, 1, total), float("-inf"), dtype=dtype, device=dev)
        self.mask[:, 0, 0, :width].masked_fill_(attention_mask.bool(), 0.0)
        self.base = base
        self.ids = torch.zeros((rows, 1), dtype=torch.long, device=dev)
        self.pos = _positions(base, 0).clone()

    def prepare(self, tokens: torch.Tensor, k: int) -> None:
        self.ids.copy_(tokens[:, None])
        self.pos.copy_(_positions(self.base, k))
        self.index.fill_(self.width + k)
        self.mask[:, 0, 0, self.width + k] = 0.0

    def forward(self) -> torch.Tensor:
        if self.attention == "grouped":
            from tempbench.models.qwen.step_attention import grouped_step

            with grouped_step(self._configs):
                return self._forward()
        return self._forward()

    def _forward(self) -> torch.Tensor:
        out = self.model(input_ids=self.ids, attention_mask=self.mask, position_ids=self.pos, use_cache=True,
                         logits_to_keep=1, **{self.kw: self.kv})
        return out.logits[:, -1]

    def __call__(self, tokens: torch.Tensor, k: int) -> torch.Tensor:
        self.prepare(tokens, k)
        return self.forward()


class GraphStep(StaticStep):
    """:class:`StaticStep` captured as one CUDA graph (after two warm-up steps on a side stream) and replayed for
    every token; the capture time is counted in `stats.capture_seconds` (part of every end-to-end figure)."""

    def __init__(self, model, cache, attention_mask, base, max_new_tokens, stats: DecodeStats,
                 attention: str = "grouped"):
        super().__init__(model, cache, attention_mask, base, max_new_tokens, attention)
        self.graph = None
        self.stats = stats

    def _capture(self) -> None:
        t0 = time.perf_counter()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        # warm-up writes K/V at the current slot; the real step overwrites the same slot
        with torch.cuda.stream(stream):
            for _ in range(2):
                self.forward()
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.out = self.forward()
        self.graph = graph
        torch.cuda.synchronize()
        self.stats.capture_seconds += time.perf_counter() - t0
        self.stats.captures += 1

    def __call__(self, tokens: torch.Tensor, k: int) -> torch.Tensor:
        self.prepare(tokens, k)
        if self.graph is None:
            self._capture()
        self.graph.replay()
        # the caller's float32 scores, copied out of the graph's buffer once (clone only when already float32)
        return self.out.float() if self.out.dtype != torch.float32 else self.out.clone()


def make_step(backend: str, model, cache, attention_mask, base, max_new_tokens: int, stats: DecodeStats,
              attention: str = "grouped"):
    """The decode step of `backend` (`dynamic`, `static`, `cuda-graph`); a backend that cannot run here falls back to
    `dynamic` (static: another attention or linear-attention layers; cuda-graph: no CUDA device) and says why in
    `stats.fallbacks`. `attention` (:data:`STEP_ATTENTION`) is the static / graph step's attention."""
    if backend in ("static", "cuda-graph"):
        why = static_ok(model, cache)
        if why is None and backend == "cuda-graph" and attention_mask.device.type != "cuda":
            why = "no CUDA device"
        if why is None:
            stats.backend, stats.step_attention = backend, attention
            if backend == "cuda-graph":
                return GraphStep(model, cache, attention_mask, base, max_new_tokens, stats, attention)
            return StaticStep(model, cache, attention_mask, base, max_new_tokens, attention)
        stats.fallbacks.append(f"{backend} -> dynamic: {why}")
    stats.backend, stats.step_attention = "dynamic", None
    return DynamicStep(model, cache, attention_mask, base)


def describe(backend: str) -> dict[str, Any]:
    return {"decoder": backend}
