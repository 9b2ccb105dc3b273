"""Per-video prefix sharing for the Qwen adapter: one vision pass and one prefill per video, however many queries
ask about it.

In the Qwen chat templates everything before the query text is the same for every query of a video: the system
prompt (if the template has one), the user turn's opening and the video's tokens (Qwen3: with their `<t seconds>`
markers). For a batch of queries (`HFQwenVL.generate` with `share_prefix`):

1. each query's full token row is built as in the unshared path (`HFQwenVL.row`), and its 3-D position ids come
   from the model's own `get_rope_index` over the full rows (the reference definition unless
   `rope_index="transformers"`), so every token gets the position it has without sharing;
2. rows are grouped by (video object, prefix ids); the prefix ends after the video's last token (and the
   `<|vision_end|>` that closes it);
3. the prefixes of the batch's distinct videos are prefilled together, with the pixel values of each video once:
   the vision tower runs once per video. When every layer is attention they are right padded and run with no
   mask (causal attention keeps each real token from the padding after it, so SDPA uses its causal kernel and skips
   the masked half); Qwen3.5 keeps them left padded under the mask;
4. each query's cache starts as a copy of its video's row (`decoding.select_rows`: attention K/V and, for Qwen3.5's
   linear-attention layers, the conv and recurrent states too); the query suffixes (query text + assistant header)
   are prefilled in one pass when every layer is attention (suffixes left padded: the padding sits between a
   prefix and its suffix, hidden by the attention mask for the rest of the answer), or by suffix length when the
   model has linear-attention layers (no padding may pass through a recurrent state), whose rows are then stacked
   with their padding on the left (`decoding.merge_rows`);
5. the answer is decoded by `decoding.decode` with the chosen step backend.

A query's computation is the unshared one with the work on its prefix done once: in float32 the token ids are
identical to `generate` on the unshared batch (tests/test_models_sharing.py, all three tiny Qwen families).
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch

from tempbench.models.qwen import decoding
from tempbench.models.qwen.vision_attention import sdpa_without_plans


@dataclass
class Plan:
    """The rows of a batch and how they share: `groups[g]` = rows of group g; `prefix[g]` its prefix length."""

    rows: list[list[int]]
    group_of: list[int]
    groups: list[list[int]]
    prefix: list[int]
    videos: list  # per group: the processed video dict or None


def split_point(ids: list[int], video_token: int, vision_end: int | None) -> int:
    """Where a row's shared prefix ends: after its last video token and the `<|vision_end|>` right after it; a
    text-only row shares nothing but its last token is always its own (a suffix is never empty)."""
    last = max((i for i, t in enumerate(ids) if t == video_token), default=None)
    if last is None:
        return len(ids) - 1
    end = last + 1
    while end < len(ids) - 1 and vision_end is not None and ids[end] == vision_end:
        end += 1
    return min(end, len(ids) - 1)


def plan(adapter, batch, share: bool = True) -> Plan:
    videos = adapter.videos_of(batch)
    rows, group_of, groups, prefix, gvideos = [], [], [], [], []
    keys: dict = {}
    vision_end = adapter.vision_end_token_id
    for r, (item, v) in enumerate(zip(batch, videos)):
        ids, _grid, _sp = adapter.row(item, v)
        p = split_point(ids, adapter.video_token_id, vision_end)
        key = (id(v), tuple(ids[:p])) if share and v is not None else ("row", r)
        if key not in keys:
            keys[key] = len(groups)
            groups.append([])
            prefix.append(p)
            gvideos.append(v)
        g = keys[key]
        groups[g].append(r)
        group_of.append(g)
        rows.append(ids)
    return Plan(rows, group_of, groups, prefix, gvideos)


def _positions(adapter, plan: Plan, videos_per_row: list) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Per row: (4, n) position ids (text row, then the three M-RoPE rows) of its real tokens; and the (2, R)
    positions of the first answer token (text, M-RoPE)."""
    grids, seconds = [], []
    for v in videos_per_row:
        if v is None:
            continue
        grids.append(torch.as_tensor(v["video_grid_thw"]).reshape(-1, 3).long())
        if adapter.model_type == "qwen2_5_vl":
            sp = v.get("second_per_grid_ts")
            seconds.append(torch.as_tensor(sp, dtype=torch.float32).reshape(-1))
    full = adapter.pad_rows(plan.rows, [], [], [])
    kw = {"input_ids": full["input_ids"], "mm_token_type_ids": full["mm_token_type_ids"],
          "attention_mask": full["attention_mask"]}
    if grids:
        kw["video_grid_thw"] = torch.cat(grids, 0)
        if seconds:
            kw["second_per_grid_ts"] = torch.cat(seconds, 0)
    width = full["input_ids"].shape[1]
    if grids:
        pos, _ = adapter.model.model.get_rope_index(**kw)
    else:
        pos = (full["attention_mask"].long().cumsum(-1) - 1).clamp(min=0).unsqueeze(0).expand(3, -1, -1)
    pos = pos.cpu()
    per_row, base = [], []
    for r, ids in enumerate(plan.rows):
        n = len(ids)
        mrope = pos[:, r, width - n:]
        text = torch.arange(n, dtype=torch.long).unsqueeze(0)
        per_row.append(torch.cat([text, mrope.long()], 0))
        base.append([n, int(mrope.max()) + 1])
    return per_row, torch.tensor(base, dtype=torch.long).T.contiguous()


def _pad_stack(seqs: list[torch.Tensor], value: int, width: int | None = None, right: bool = False) -> torch.Tensor:
    """(k, n_i) or (n_i,) tensors -> a stack on a new axis 1, (k, R, width) / (R, width), left padded (`right`:
    right padded) with `value`."""
    width = width or max(s.shape[-1] for s in seqs)
    shape = (*seqs[0].shape[:-1], len(seqs), width)
    out = torch.full(shape, value, dtype=seqs[0].dtype)
    for i, s in enumerate(seqs):
        if right:
            out[..., i, :s.shape[-1]] = s
        else:
            out[..., i, width - s.shape[-1]:] = s
    return out


def attention_only(model) -> bool:
    """Whether every language-model layer is attention (no Qwen3.5 linear-attention layer with recurrent states),
    from the config's `layer_types`."""
    types = getattr(model.config.get_text_config(), "layer_types", None) or []
    return all("linear" not in str(t) for t in types)


def _mm_types(adapter, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mm = torch.zeros_like(ids, dtype=torch.int32)
    mm[(ids == adapter.image_token_id) & (mask == 1)] = 1
    mm[(ids == adapter.video_token_id) & (mask == 1)] = 2
    return mm


@contextmanager
def _timed_vision(model, sync, on: bool):
    """Inside the block, with `on` (benchmarks: `stats.record`), the vision tower's forward calls are timed,
    synchronised: yields a dict whose "seconds" sums them (None when off); the hooks are removed on leaving."""
    import time

    tower = getattr(model, "visual", None) or getattr(getattr(model, "model", None), "visual", None)
    if not on:
        yield {"seconds": None}
        return
    out = {"seconds": 0.0}
    start: list[float] = []

    def before(_module, _args):
        sync()
        start.append(time.perf_counter())

    def after(_module, _args, _result):
        sync()
        out["seconds"] += time.perf_counter() - start.pop()

    handles = [tower.register_forward_pre_hook(before), tower.register_forward_hook(after)] if tower else []
    try:
        yield out
    finally:
        for h in handles:
            h.remove()


def generate_ids(adapter, batch, *, share: bool, backend: str, stats: decoding.DecodeStats) -> torch.Tensor:
    """(R, T) answer ids for `batch` (pad id after each row's EOS), with per-video prefix sharing when `share`."""
    import time

    from transformers import DynamicCache

    model = adapter.model
    dev = adapter.device
    g = adapter.generation
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    marks = [time.perf_counter()] if stats.record else None

    def mark():
        if marks is not None:
            sync()
            marks.append(time.perf_counter())

    p = plan(adapter, batch, share)
    videos_per_row = [p.videos[gi] for gi in p.group_of]
    positions, base = _positions(adapter, p, videos_per_row)
    kw = decoding.cache_kwarg(model)

    # 1. the prefixes of the distinct videos (vision tower once per video). With attention layers only they are
    # right padded and prefilled with no mask at all: causal attention alone keeps every real token from seeing the
    # padding after it, so SDPA runs its causal kernel (flash / cuDNN: the masked half is skipped) instead of a
    # kernel that takes an explicit (R, 1, L, L) mask and computes every pair; the padded slots are hidden by the
    # mask from then on. With linear-attention layers (Qwen3.5) they are left padded under the mask, as no padding
    # may pass through a recurrent state after a row's tokens.
    right = attention_only(model)
    pre_ids = [torch.tensor(p.rows[rows[0]][:n], dtype=torch.long) for rows, n in zip(p.groups, p.prefix)]
    pre_pos = [positions[rows[0]][:, :n] for rows, n in zip(p.groups, p.prefix)]
    ids = _pad_stack(pre_ids, adapter.pad_token_id, right=right)
    mask = _pad_stack([torch.ones(len(x), dtype=torch.long) for x in pre_ids], 0, right=right)
    pos = _pad_stack(pre_pos, 0, right=right)
    inputs = {"input_ids": ids.to(dev), "attention_mask": None if right else mask.to(dev),
              "position_ids": pos.to(dev), "mm_token_type_ids": _mm_types(adapter, ids, mask).to(dev)}
    vids = [v for v in p.videos if v is not None]
    if vids:
        # each video copied to the device as it is, cast there, then joined there: no host-side copy of the whole
        # batch (about 0.9 GB of float32 patches for 14 Charades-length videos) and no cast on the host
        inputs["pixel_values_videos"] = torch.cat(
            [torch.as_tensor(v["pixel_values_videos"]).to(dev).to(adapter.dtype) for v in vids], 0)
        inputs["video_grid_thw"] = torch.cat([torch.as_tensor(v["video_grid_thw"]).reshape(-1, 3).long()
                                              for v in vids], 0).to(dev)
    cache = DynamicCache(config=model.config.get_text_config())
    mark()
    with _timed_vision(model, sync, marks is not None) as vision, (
            sdpa_without_plans(dev) if right else nullcontext()):  # a new prefix length in every batch
        model(**inputs, use_cache=True, logits_to_keep=1, **{kw: cache})
    pre_mask = mask.to(dev)
    del inputs
    mark()

    # 2. each query's copy of its prefix, then its suffix: with attention layers only, every suffix in one pass, left
    # padded (the padding sits between a prefix and its suffix, hidden by the mask); with linear-attention layers
    # (recurrent states: no padding may pass through them), one pass per suffix length
    by_len: dict[int, list[int]] = {}
    if not decoding.has_linear_layers(cache):
        by_len[max(len(ids_r) - p.prefix[p.group_of[r]] for r, ids_r in enumerate(p.rows))] = list(range(len(p.rows)))
    else:
        for r, ids_r in enumerate(p.rows):
            by_len.setdefault(len(ids_r) - p.prefix[p.group_of[r]], []).append(r)
    parts, logits, masks, stacked = [], [], [], []
    for length, rows in sorted(by_len.items()):
        index = torch.tensor([p.group_of[r] for r in rows], dtype=torch.long, device=dev)
        sub = decoding.select_rows(cache, index)
        suffixes = [torch.tensor(p.rows[r][p.prefix[p.group_of[r]]:], dtype=torch.long) for r in rows]
        suf_ids = _pad_stack(suffixes, adapter.pad_token_id, length)
        suf_pos = torch.stack([torch.nn.functional.pad(positions[r][:, p.prefix[p.group_of[r]]:],
                                                       (length - len(x), 0)) for r, x in zip(rows, suffixes)], 1)
        suf_mask = _pad_stack([torch.ones(len(x), dtype=torch.long) for x in suffixes], 0, length)
        m = torch.cat([pre_mask.index_select(0, index), suf_mask.to(dev)], 1)
        out = model(input_ids=suf_ids.to(dev), attention_mask=m, position_ids=suf_pos.to(dev), use_cache=True,
                    logits_to_keep=1, **{kw: sub})
        parts.append(sub)
        logits.append(out.logits[:, -1])
        masks.append(m)
        stacked.extend(rows)
    del cache
    order = torch.empty(len(stacked), dtype=torch.long)
    order[torch.tensor(stacked)] = torch.arange(len(stacked))
    order = order.to(dev)
    if len(parts) == 1:
        rows_cache, first = parts[0], logits[0]
        attn = masks[0]
        if not bool((order == torch.arange(len(order), device=dev)).all()):  # pragma: no cover - one group, in order
            rows_cache = decoding.select_rows(rows_cache, order)
            first, attn = first.index_select(0, order), attn.index_select(0, order)
    else:
        rows_cache = decoding.merge_rows(parts, order)
        width = max(x.shape[1] for x in masks)
        attn = torch.cat([torch.nn.functional.pad(x, (width - x.shape[1], 0)) for x in masks], 0).index_select(0, order)
        first = torch.cat(logits, 0).index_select(0, order)
    del parts

    # 3. the answers
    mark()
    rule = decoding.TokenRule(g, adapter.eos_token_id, first.shape[-1], dev)
    seen = decoding.seen_matrix(p.rows, first.shape[-1], dev) if float(g.repetition_penalty) != 1.0 else None
    step = decoding.make_step(backend, model, rows_cache, attn, base.to(dev), int(g.max_new_tokens), stats,
                              attention=getattr(adapter, "step_attention", "grouped"))
    captured = stats.capture_seconds
    out = decoding.decode(step, first, rule, max_new_tokens=int(g.max_new_tokens), pad_id=adapter.pad_token_id,
                          seen=seen, stats=stats, sync=sync if dev.type == "cuda" else None)
    mark()
    if marks is not None:
        patches = [int(torch.as_tensor(v["video_grid_thw"]).prod()) if v is not None else 0 for v in p.videos]
        stats.batches.append({
            "rows": len(p.rows), "videos": len(p.groups), "prefix_tokens": list(p.prefix), "patches": patches,
            "group_of": list(p.group_of),
            "suffix_tokens": [len(ids) - p.prefix[gi] for ids, gi in zip(p.rows, p.group_of)],
            "width": int(attn.shape[1]), "new_tokens": int(out.shape[1]), "backend": stats.backend,
            "seconds": {"plan": marks[1] - marks[0], "prefix_prefill": marks[2] - marks[1],
                        "vision": vision["seconds"],  # the vision tower's part of prefix_prefill
                        "suffix_prefill": marks[3] - marks[2], "decode": marks[4] - marks[3],
                        "capture": stats.capture_seconds - captured}})
    return out
