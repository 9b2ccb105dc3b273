"""The grouped one-token attention of the static / CUDA-graph decode step (tempbench/models/qwen/step_attention.py):
equal to transformers' stock sdpa attention and to the textbook definition on random GQA tensors with a padding
mask, and, through the static step, token ids identical to `generate` and to the dynamic step on the tiny float32
Qwen2.5-VL and Qwen3-VL models, on left-padded batches whose rows have different lengths."""

from __future__ import annotations

import types

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from clip_helpers import make_clip  # noqa: E402

from tempbench.models.base import GenerationSettings, ModelInput  # noqa: E402
from tempbench.models.qwen import decoding, step_attention  # noqa: E402
from tempbench.models.qwen.adapter import HFQwenVL  # noqa: E402
from tempbench.video import VideoSettings  # noqa: E402

FAMILIES = ("qwen2_5_vl", "qwen3_vl")
SETTINGS = {
    "qwen2_5_vl": VideoSettings(min_pixels=28 * 28, max_pixels=56 * 84, min_frames=2),
    "qwen3_vl": VideoSettings(min_pixels=32 * 32, max_pixels=64 * 96, min_frames=2, total_pixels=64 * 96 * 100),
}
TEXTS = ["a", "where is the dog now?", "find the person opening the door, then closing it again and leaving",
         "zz top", "when does someone laugh at the cat on the sofa?"]


def _module(groups: int):
    return types.SimpleNamespace(num_key_value_groups=groups, is_causal=True, training=False)


def _reference(query, key, value, mask, scale):
    """softmax(q k^T * scale + mask) v with K/V repeated to the query heads (query head h reads KV head h // G)."""
    groups = query.shape[1] // key.shape[1]
    k = key.repeat_interleave(groups, dim=1)
    v = value.repeat_interleave(groups, dim=1)
    scores = (query @ k.transpose(-1, -2)) * scale
    scores = scores.masked_fill(~mask, -float("inf")) if mask.dtype == torch.bool else scores + mask
    return (scores.softmax(-1) @ v).transpose(1, 2)


def _random(rows=4, heads=8, kv_heads=2, dim=16, length=23, pads=(0, 3, 9, 17), future=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    # the query laid out as the attention layers make it: (R, 1, H, D) projected, then transposed
    query = torch.randn(rows, 1, heads, dim, generator=g).transpose(1, 2)
    key = torch.randn(rows, kv_heads, length, dim, generator=g)
    value = torch.randn(rows, kv_heads, length, dim, generator=g)
    mask = torch.ones(rows, 1, 1, length, dtype=torch.bool)
    for r, p in enumerate(pads):
        mask[r, ..., :p] = False  # left padding
    mask[..., length - future:] = False  # slots of later steps, not written yet
    return query, key, value, mask


def test_grouped_attention_equals_stock_sdpa_and_the_definition():
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    query, key, value, mask = _random()
    module, scale = _module(4), 16**-0.5
    assert step_attention.grouped_applies(module, query, key, mask, {"scaling": scale})
    got, weights = step_attention.grouped_step_attention(module, query, key, value, mask, dropout=0.0, scaling=scale)
    stock, _ = ALL_ATTENTION_FUNCTIONS["sdpa"](module, query, key, value, mask, dropout=0.0, scaling=scale)
    ref = _reference(query, key, value, mask, scale)
    assert weights is None and got.shape == stock.shape == (4, 1, 8, 16) and got.is_contiguous()
    torch.testing.assert_close(got, stock, atol=1e-6, rtol=0)
    torch.testing.assert_close(got, ref, atol=1e-6, rtol=0)
    # an additive mask (0 / -inf) gives the same; a batch-shared mask too
    additive = torch.zeros(mask.shape).masked_fill(~mask, -float("inf"))
    torch.testing.assert_close(step_attention.grouped_step_attention(module, query, key, value, additive,
                                                                     scaling=scale)[0], ref, atol=1e-6, rtol=0)
    shared = mask[3:4]
    torch.testing.assert_close(step_attention.grouped_step_attention(module, query, key, value, shared,
                                                                     scaling=scale)[0],
                               _reference(query, key, value, shared.expand_as(mask), scale), atol=1e-6, rtol=0)


def test_grouped_attention_hands_what_it_does_not_cover_to_stock_sdpa():
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    query, key, value, mask = _random(rows=2, pads=(0, 4))
    module = _module(4)
    applies = step_attention.grouped_applies
    assert not applies(module, query.expand(2, 8, 3, 16), key, mask, {})  # prefill: several query tokens
    assert not applies(module, query, key, mask, {"dropout": 0.1})
    assert not applies(module, query, key, mask.expand(2, 8, 1, 23), {})  # a mask per head
    assert not applies(module, query, key, mask, {"sliding_window": 4})
    assert not applies(module, query, key, mask, {"position_bias": torch.zeros(1)})
    assert not applies(_module(1), query, key, mask, {})  # no grouping
    assert applies(module, query, key, None, {}) and applies(module, query, key, mask, {"sliding_window": None})
    # three query tokens with a causal 4-D mask: exactly the stock function's output
    q3 = torch.randn(2, 8, 3, 16, generator=torch.Generator().manual_seed(1))
    m3 = mask.expand(2, 1, 3, 23).clone()
    m3[:, :, 0, -2:] = False
    got = step_attention.grouped_step_attention(module, q3, key, value, m3, scaling=0.25)[0]
    assert torch.equal(got, ALL_ATTENTION_FUNCTIONS["sdpa"](module, q3, key, value, m3, scaling=0.25)[0])


# --------------------------------------------------------------------------------------------------- models


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    from tempbench.models.qwen.tiny import build_tiny_qwen2_5_vl
    from tempbench.models.qwen.tiny3 import build_tiny_qwen3

    root = tmp_path_factory.mktemp("tiny-step-attention")
    folders = {"qwen2_5_vl": build_tiny_qwen2_5_vl(root / "q25", seed=0),
               "qwen3_vl": build_tiny_qwen3(root / "q3", "qwen3_vl", seed=0)}
    out = {fam: HFQwenVL(str(path), generation=GenerationSettings(max_new_tokens=12), video_settings=SETTINGS[fam])
           for fam, path in folders.items()}
    yield out
    for a in out.values():
        a.close()


def _batch(adapter) -> list[ModelInput]:
    """Text-only rows of five lengths and a video with two queries: left padding of 0 to dozens of tokens."""
    clip = adapter.prepare_video(make_clip(t=6, seed=3))
    items = [(None, t) for t in TEXTS] + [(clip, "where is it?"), (clip, TEXTS[2])]
    order = [5, 0, 2, 6, 1, 4, 3]
    return [ModelInput(items[i][0], items[i][1], qid=n) for n, i in enumerate(order)]


def _ids(adapter, batch, decoder, attention="grouped", share=True):
    saved = adapter.decoder, adapter.share_prefix, adapter.step_attention
    adapter.decoder, adapter.share_prefix, adapter.step_attention = decoder, share, attention
    try:
        return adapter.generate_ids(batch)
    finally:
        adapter.decoder, adapter.share_prefix, adapter.step_attention = saved


@pytest.mark.parametrize("family", FAMILIES)
def test_static_step_with_grouped_attention_equals_generate(adapters, family, monkeypatch):
    a = adapters[family]
    batch = _batch(a)
    inputs = a.build_inputs(batch)
    assert len(set(inputs["attention_mask"].sum(1).tolist())) >= 5  # rows of different lengths, left padded
    with torch.inference_mode():
        ref = a.model.generate(**inputs, generation_config=a.generation.transformers_config(
            a.eos_token_id, a.pad_token_id))[:, inputs["input_ids"].shape[1]:]
    assert ref.shape[1] > 4 and len({tuple(r) for r in ref.tolist()}) > 3  # the inputs matter

    calls = []
    original = step_attention.grouped_applies

    def spy(module, query, key, mask, kwargs):
        took = original(module, query, key, mask, kwargs)
        calls.append((query.shape[2], took))
        return took

    monkeypatch.setattr(step_attention, "grouped_applies", spy)
    for share in (True, False):
        calls.clear()
        got = _ids(a, batch, "static", "grouped", share)
        assert got.shape == ref.shape and torch.equal(got, ref), (family, share)
        assert a.decode_stats.backend == "static" and a.decode_stats.step_attention == "grouped"
        # every attention call of the steps took the grouped path (one per layer and step), none in prefill
        layers = a.model.config.get_text_config().num_hidden_layers
        assert calls and all(took and q == 1 for q, took in calls) and len(calls) == layers * (ref.shape[1] - 1)
        assert a.model.config.get_text_config()._attn_implementation == "sdpa"  # restored after the step
    calls.clear()
    assert torch.equal(_ids(a, batch, "static", "stock"), ref) and not calls
    assert torch.equal(_ids(a, batch, "dynamic"), ref) and not calls
    assert a.identity().info["decoding"].get("step_attention") is None  # the dynamic step ran last
    _ids(a, batch[:2], "static")
    assert a.identity().info["decoding"]["step_attention"] == "grouped"


def test_grouped_step_restores_the_attention_after_an_error(adapters):
    a = adapters["qwen2_5_vl"]
    configs = step_attention.attention_configs(a.model)
    assert len(configs) == 1 and configs[0] is a.model.config.get_text_config()
    with pytest.raises(RuntimeError, match="boom"), step_attention.grouped_step(configs):
        assert configs[0]._attn_implementation == step_attention.NAME
        raise RuntimeError("boom")
    assert configs[0]._attn_implementation == "sdpa"
    with pytest.raises(ValueError, match="attention='fast'"):
        decoding.StaticStep(a.model, None, torch.ones(1, 2), torch.zeros(2, 1, dtype=torch.long), 2, attention="fast")
