"""One-token attention for the static / CUDA-graph decode step: each KV head read once for its group of query heads.

In a decode step every row has one query token. With grouped-query attention (Qwen2.5-VL-7B: 28 query heads, 4 KV
heads) the query heads of a group all attend to the same K and V, so the step's attention is

    (R, H_kv, G, D) queries  x  (R, H_kv, L, D) keys and values,  mask (R, 1, 1, L) broadcast over heads and group,

the query (R, H_q, 1, D) reshaped so that head h = kv * G + g (transformers' `repeat_kv` order: query head h reads
KV head h // G). This is the stock attention, rewritten: no K/V is expanded to the query heads. transformers 5.17's
SDPA integration instead expands K and V with `repeat_kv` whenever a mask is passed on CUDA (for ~3,400 cached tokens
at batch 16, about 0.8 GB written and read again per layer and step); 5.24 packs the query the same way as here for
a single token (`pack_gqa`). This function does it on either version.

It is registered in transformers' attention registry under :data:`NAME` and switched on by :func:`grouped_step`
around the step's forward only (the language model's attention configs name it for the duration of the call; prefill
and the `dynamic` / `transformers` backends keep the model's own attention). What it does not cover (more than one
query token, dropout, per-head masks, sliding windows, soft-capping, attention sinks or a position bias, no grouping)
goes to the registry's stock `sdpa` function unchanged, so it is exact everywhere.

CUDA graphs: the grouped path is a view (reshape of the query), one `scaled_dot_product_attention` and one copy; its
branch depends only on shapes and arguments that are the same at every step, so nothing syncs with the host and a
captured graph replays the same kernels.
"""

from __future__ import annotations

from contextlib import contextmanager

NAME = "tempbench_grouped_step"
# keyword arguments the grouped path does not implement: any of them set sends the call to stock sdpa
_UNSUPPORTED = ("sliding_window", "softcap", "position_bias", "s_aux", "sinks", "output_attentions")


def _stock(module, query, key, value, attention_mask, **kwargs):
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    return ALL_ATTENTION_FUNCTIONS["sdpa"](module, query, key, value, attention_mask, **kwargs)


def grouped_applies(module, query, key, attention_mask, kwargs: dict) -> bool:
    """Whether :func:`grouped_step_attention` takes its grouped path for this call (else: stock sdpa)."""
    rows, heads, q_len, _ = query.shape
    kv_heads = key.shape[1]
    groups = int(getattr(module, "num_key_value_groups", 1) or 1)
    if q_len != 1 or groups <= 1 or heads != kv_heads * groups:
        return False
    if float(kwargs.get("dropout", 0.0) or 0.0) != 0.0:
        return False
    if any(kwargs.get(k) is not None and kwargs.get(k) is not False for k in _UNSUPPORTED):
        return False
    if attention_mask is not None and not (
            hasattr(attention_mask, "ndim") and attention_mask.ndim == 4 and attention_mask.shape[1] == 1
            and attention_mask.shape[2] == 1 and attention_mask.shape[0] in (1, rows)):
        return False
    return True


def grouped_step_attention(module, query, key, value, attention_mask, **kwargs):
    """transformers attention-interface function: (R, H_q, 1, D) query, (R, H_kv, L, D) K/V, mask None or
    (R | 1, 1, 1, L) (bool: True = attend, or additive) -> ((R, 1, H_q, D_v) output, None), as stock sdpa."""
    import torch

    if not grouped_applies(module, query, key, attention_mask, kwargs):
        return _stock(module, query, key, value, attention_mask, **kwargs)
    rows, heads, _, dim = query.shape
    kv_heads = key.shape[1]
    q = query.reshape(rows, kv_heads, heads // kv_heads, dim)
    out = torch.nn.functional.scaled_dot_product_attention(q, key, value, attn_mask=attention_mask,
                                                           scale=kwargs.get("scaling"))
    # (R, H_kv, G, D_v) -> (R, H_q, 1, D_v) -> (R, 1, H_q, D_v): the layout stock sdpa returns
    return out.reshape(rows, heads, 1, value.shape[-1]).transpose(1, 2).contiguous(), None


def register() -> str:
    """Register :func:`grouped_step_attention` in transformers' attention registry (idempotent); returns its name."""
    from transformers import AttentionInterface

    AttentionInterface.register(NAME, grouped_step_attention)
    return NAME


def attention_configs(model) -> list:
    """The distinct configs the language model's attention layers read `_attn_implementation` from."""
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else model
    out, seen = [], set()
    for m in decoder.modules():
        cfg = getattr(m, "config", None)
        if hasattr(m, "num_key_value_groups") and cfg is not None and id(cfg) not in seen:
            seen.add(id(cfg))
            out.append(cfg)
    return out


@contextmanager
def grouped_step(configs: list):
    """Inside the block the attention layers of `configs` (from :func:`attention_configs`) run
    :func:`grouped_step_attention`; their own implementation is restored on leaving, also on an error. Not
    thread-safe for one model shared by threads that run forward passes at the same time."""
    register()
    saved = [c._attn_implementation for c in configs]
    try:
        for c in configs:
            c._attn_implementation = NAME
        yield
    finally:
        for c, s in zip(configs, saved):
            c._attn_implementation = s
