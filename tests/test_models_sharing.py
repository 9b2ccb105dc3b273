"""tempbench's own token loop and per-video prefix sharing against transformers' `generate`, token for token, on the
three tiny float32 Qwen families (Qwen2.5-VL, Qwen3-VL, Qwen3.5 with its linear-attention states).

The reference is `HFQwenVL.generate_stock`: the whole left-padded batch, every query with its own copy of its video,
through `model.generate`. The batches mix videos of different lengths and sizes, videos with 1, 2 and many queries,
queries of different lengths and a text-only query."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from clip_helpers import make_clip  # noqa: E402

from tempbench.models.base import GenerationSettings, ModelInput  # noqa: E402
from tempbench.models.qwen import decoding, prefix  # noqa: E402
from tempbench.models.qwen.adapter import HFQwenVL  # noqa: E402
from tempbench.video import VideoSettings  # noqa: E402

FAMILIES = ("qwen2_5_vl", "qwen3_vl", "qwen3_5")
SETTINGS = {
    "qwen2_5_vl": VideoSettings(min_pixels=28 * 28, max_pixels=56 * 84, min_frames=2),
    "qwen3_vl": VideoSettings(min_pixels=32 * 32, max_pixels=64 * 96, min_frames=2, total_pixels=64 * 96 * 100),
}
SETTINGS["qwen3_5"] = SETTINGS["qwen3_vl"]
QUERIES = ["where is it?", "find the person opening the door now, then closing it again", "a",
           "when does the dog run across the yard?", "zz top", "the second thing", "someone laughs"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    from tempbench.models.qwen.tiny import build_tiny_qwen2_5_vl
    from tempbench.models.qwen.tiny3 import build_tiny_qwen3

    root = tmp_path_factory.mktemp("tiny-share")
    out = {"qwen2_5_vl": build_tiny_qwen2_5_vl(root / "q25", seed=0)}
    for fam in ("qwen3_vl", "qwen3_5"):
        out[fam] = build_tiny_qwen3(root / fam, fam, seed=0)
    return out


@pytest.fixture(scope="module")
def adapters(folders):
    out = {fam: HFQwenVL(str(path), generation=GenerationSettings(max_new_tokens=10), video_settings=SETTINGS[fam])
           for fam, path in folders.items()}
    yield out
    for a in out.values():
        a.close()


def mixed_batch(adapter) -> list[ModelInput]:
    """Video A (6 frames) with 4 queries, B (10 frames, 2 queries), C (4 frames, another size, 1 query), one
    text-only query; queries of a video are not adjacent."""
    a = adapter.prepare_video(make_clip(t=6, seed=0))
    b = adapter.prepare_video(make_clip(t=10, seed=1, total=601))
    c = adapter.prepare_video(make_clip(t=4, h=96, w=64, seed=2, total=120))
    layout = [(a, 0), (b, 1), (a, 2), (None, 3), (a, 3), (c, 4), (b, 5), (a, 6)]
    return [ModelInput(v, QUERIES[q], qid=i) for i, (v, q) in enumerate(layout)]


def with_decoder(adapter, decoder, share=True, generation=None):
    adapter.decoder, adapter.share_prefix = decoder, share
    if generation is not None:
        adapter.generation = generation
    return adapter


@pytest.fixture
def restore(adapters):
    saved = {f: (a.decoder, a.share_prefix, a.generation) for f, a in adapters.items()}
    yield
    for f, (d, s, g) in saved.items():
        adapters[f].decoder, adapters[f].share_prefix, adapters[f].generation = d, s, g


@pytest.mark.parametrize("family", FAMILIES)
def test_shared_prefix_equals_unshared_generate(adapters, family, restore):
    a = adapters[family]
    batch = mixed_batch(a)
    reference = a.generate_stock(batch)
    assert len(set(reference)) > 2  # the inputs matter
    for decoder in ("dynamic", "static"):
        for share in (True, False):
            assert with_decoder(a, decoder, share).generate(batch) == reference, (family, decoder, share)
    # one query at a time, through the shared path, gives the same answers too (batch composition changes nothing)
    with_decoder(a, "dynamic", True)
    assert [a.generate([x])[0] for x in batch] == reference


@pytest.mark.parametrize("family", FAMILIES)
def test_shared_token_ids_equal_generate_ids(adapters, family, restore):
    """Token ids, not only text (most ids of a random model decode to little)."""
    a = with_decoder(adapters[family], "dynamic", True)
    batch = mixed_batch(a)
    inputs = a.build_inputs(batch)
    with torch.inference_mode():
        ref = a.model.generate(**inputs, generation_config=a.generation.transformers_config(a.eos_token_id, a.pad_token_id))[:, inputs["input_ids"].shape[1]:]
    got = a.generate_ids(batch)
    assert got.shape == ref.shape and torch.equal(got, ref)


def test_plan_groups_by_video_and_prefix(adapters):
    a = adapters["qwen3_vl"]
    batch = mixed_batch(a)
    p = prefix.plan(a, batch, share=True)
    # videos A, B, C, and the text-only row on its own
    assert sorted(map(sorted, p.groups)) == [[0, 2, 4, 7], [1, 6], [3], [5]]
    for rows, n in zip(p.groups, p.prefix):
        ids = [p.rows[r] for r in rows]
        assert all(x[:n] == ids[0][:n] for x in ids) and all(len(x) > n for x in ids)
        if batch[rows[0]].clip is not None:  # the prefix ends right after the video
            assert a.video_token_id in ids[0][:n] and a.video_token_id not in ids[0][n:]
    unshared = prefix.plan(a, batch, share=False)
    assert len(unshared.groups) == len(batch)


@pytest.mark.parametrize("family", FAMILIES)
def test_prefixes_right_padded_without_a_mask_for_attention_only_models(adapters, family, monkeypatch, restore):
    """All-attention families prefill their prefixes right padded with no mask (the causal kernel); Qwen3.5, whose
    linear-attention layers must not see padding after a row's tokens, left padded under the mask. The answers are
    the stock ones either way (test_shared_prefix_equals_unshared_generate)."""
    a = with_decoder(adapters[family], "dynamic", True)
    seen = []
    original = a.model.forward

    def spy(*args, **kwargs):
        if "pixel_values_videos" in kwargs:  # the prefix pass: the only one with the videos
            seen.append((kwargs.get("attention_mask"), kwargs["input_ids"].clone()))
        return original(*args, **kwargs)

    monkeypatch.setattr(a.model, "forward", spy)
    a.generate(mixed_batch(a))
    assert len(seen) == 1
    mask, ids = seen[0]
    lengths = set()
    for row in ids.tolist():  # prefixes of different lengths in the pass: some rows are padded
        lengths.add(len(row) - sum(t == a.pad_token_id for t in row))
    assert len(lengths) > 1
    if family == "qwen3_5":
        assert prefix.attention_only(a.model) is False and mask is not None and bool((mask[:, -1] == 1).all())
    else:
        assert prefix.attention_only(a.model) is True and mask is None
        assert all(row[0] != a.pad_token_id for row in ids.tolist())  # padding only after each row's tokens


def test_vision_tower_runs_once_per_video(adapters, monkeypatch, restore):
    a = with_decoder(adapters["qwen2_5_vl"], "dynamic", True)
    calls = []
    inner = a.model.model
    original = inner.get_video_features

    def spy(pixel_values_videos, video_grid_thw, *args, **kwargs):
        calls.append(video_grid_thw.shape[0])
        return original(pixel_values_videos, video_grid_thw, *args, **kwargs)

    monkeypatch.setattr(inner, "get_video_features", spy)
    a.generate(mixed_batch(a))
    assert calls == [3]  # one call, three distinct videos for seven video queries


@pytest.mark.parametrize("family", FAMILIES)
def test_eos_stops_rows_and_the_loop(adapters, family, restore):
    """Rows end at different steps (an EOS id taken from the answers themselves); finished rows get the pad id and
    the loop stops when all have ended, as generate."""
    a = with_decoder(adapters[family], "transformers")
    batch = mixed_batch(a)[:4]
    inputs = a.build_inputs(batch)
    with torch.inference_mode():
        free = a.model.generate(**inputs, generation_config=a.generation.transformers_config(a.eos_token_id, a.pad_token_id))[:, inputs["input_ids"].shape[1]:]
    saved = a.eos_token_id
    try:
        a.eos_token_id = saved + [int(free[0, 2]), int(free[1, 4])]
        ref = a.generate_stock(batch)
        cfg = a.generation.transformers_config(a.eos_token_id, a.pad_token_id)
        with torch.inference_mode():
            ref_ids = a.model.generate(**inputs, generation_config=cfg)[:, inputs["input_ids"].shape[1]:]
        for decoder in ("dynamic", "static"):
            with_decoder(a, decoder, True)
            assert a.generate(batch) == ref
            assert torch.equal(a.generate_ids(batch), ref_ids)
    finally:
        a.eos_token_id = saved


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_5"])
def test_sampling_min_new_tokens_and_top_p_equal_generate(adapters, family, restore):
    a = adapters[family]
    batch = mixed_batch(a)[:5]
    for gen in (GenerationSettings(max_new_tokens=8, do_sample=True, temperature=1.3, top_p=0.9, seed=5),
                GenerationSettings(max_new_tokens=8, min_new_tokens=8, do_sample=True, temperature=0.7, seed=1),
                GenerationSettings(max_new_tokens=6, min_new_tokens=3)):
        ref = with_decoder(a, "transformers", generation=gen).generate(batch)
        assert with_decoder(a, "dynamic", False, gen).generate(batch) == ref, gen
        assert with_decoder(a, "dynamic", True, gen).generate(batch) == ref, gen


@pytest.mark.parametrize("family", FAMILIES)
def test_repetition_penalty_equals_generate_at_batch_one(adapters, family, restore):
    """The penalty counts each row's own tokens (transformers 5.17 also counts the pad id of padded rows; 5.24 does
    not): equal to generate query by query."""
    a = adapters[family]
    gen = GenerationSettings(max_new_tokens=8, repetition_penalty=1.5)
    for item in mixed_batch(a)[:3]:
        ref = with_decoder(a, "transformers", generation=gen).generate([item])
        assert with_decoder(a, "dynamic", True, gen).generate([item]) == ref


def test_static_backend_falls_back_where_it_cannot_run(adapters, restore):
    a = with_decoder(adapters["qwen3_5"], "cuda-graph")
    a.generate(mixed_batch(a)[:2])
    assert a.decode_stats.backend == "dynamic"
    assert any("linear-attention" in f for f in a.decode_stats.fallbacks)
    b = with_decoder(adapters["qwen2_5_vl"], "cuda-graph")
    b.generate(mixed_batch(b)[:2])  # CPU: no CUDA device
    assert any("no CUDA device" in f for f in b.decode_stats.fallbacks)
    info = b.identity().info["decoding"]
    assert info["decoder"] == "cuda-graph" and info["share_prefix"] is True and info["steps"] > 0


def test_decoder_is_provenance_not_identity(folders):
    kw = dict(generation=GenerationSettings(max_new_tokens=4), video_settings=SETTINGS["qwen2_5_vl"])
    x = HFQwenVL(str(folders["qwen2_5_vl"]), decoder="transformers", share_prefix=False, **kw)
    y = HFQwenVL(str(folders["qwen2_5_vl"]), decoder="static", **kw)
    assert x.identity().identity() == y.identity().identity()
    assert x.identity().info["decoding"] != y.identity().info["decoding"]
    from tempbench.errors import TempbenchError

    with pytest.raises(TempbenchError, match="decoder='fast' is unknown"):
        HFQwenVL(str(folders["qwen2_5_vl"]), decoder="fast", **kw)
    # the default, auto: the graph step on a GPU, the dynamic loop on a CPU; the one used is what is recorded
    z = HFQwenVL(str(folders["qwen2_5_vl"]), **kw)
    assert z.decoder == "dynamic" and z.identity().info["decoding"]["decoder"] == "dynamic"
    assert HFQwenVL(str(folders["qwen2_5_vl"]), decoder="auto", **kw).decoder == "dynamic"


def test_cache_surgery_rows_and_left_padding():
    """select_rows / merge_rows on a transformers DynamicCache: rows picked (with repeats) and stacked with the
    shorter rows' K/V padded on the left."""
    from transformers import DynamicCache

    def cache_of(batch, length, seed):
        c = DynamicCache()
        g = torch.Generator().manual_seed(seed)
        for layer in range(2):
            c.update(torch.randn(batch, 2, length, 4, generator=g), torch.randn(batch, 2, length, 4, generator=g),
                     layer)
        return c

    a, b = cache_of(2, 5, 0), cache_of(1, 3, 1)
    picked = decoding.select_rows(a, torch.tensor([1, 1, 0]))
    assert torch.equal(picked.layers[0].keys, a.layers[0].keys[[1, 1, 0]])
    assert a.layers[0].keys.shape[0] == 2  # the source is unchanged
    merged = decoding.merge_rows([a, b], torch.tensor([2, 0, 1]))
    keys = merged.layers[1].keys
    assert keys.shape == (3, 2, 5, 4) and decoding.cache_width(merged) == 5
    assert torch.equal(keys[0, :, 2:], b.layers[1].keys[0]) and not keys[0, :, :2].any()
    assert torch.equal(keys[1:], a.layers[1].keys)


def test_split_point():
    v, e = 9, 8
    assert prefix.split_point([1, 2, v, v, e, 5, 6], v, e) == 5
    assert prefix.split_point([1, 2, v, v, 5, 6], v, e) == 4
    assert prefix.split_point([1, 2, 3], v, e) == 2  # text only: the last token is the suffix
    assert prefix.split_point([1, v, e], v, e) == 2  # never an empty suffix
    assert Path(prefix.__file__).name == "prefix.py"


def test_recorded_batch_shapes_and_stage_times(adapters, restore):
    a = with_decoder(adapters["qwen3_vl"], "static", True)
    a.decode_stats.record = True
    try:
        batch = mixed_batch(a)
        a.generate(batch)
        rec = a.decode_stats.batches[-1]
    finally:
        a.decode_stats.record = False
    assert rec["rows"] == len(batch) and rec["videos"] == 4 and len(rec["suffix_tokens"]) == len(batch)
    assert rec["patches"].count(0) == 1 and all(s > 0 for s in rec["suffix_tokens"])
    assert set(rec["seconds"]) == {"plan", "prefix_prefill", "vision", "suffix_prefill", "decode", "capture"}
    assert 0 < rec["seconds"]["vision"] < rec["seconds"]["prefix_prefill"]  # the tower's part of the prefix stage
    tower = a.model.model.visual
    assert not tower._forward_hooks and not tower._forward_pre_hooks  # the timing hooks are gone
    assert rec["backend"] == "static" and rec["new_tokens"] <= 10
    # each row's video: rows of one video share its prefix (the group ids follow first appearance)
    assert len(rec["group_of"]) == len(batch) and sorted(set(rec["group_of"])) == list(range(rec["videos"]))
    vids = [id(item.clip) for item in batch]
    assert all((vids[i] == vids[j]) == (rec["group_of"][i] == rec["group_of"][j])
               for i in range(len(batch)) for j in range(len(batch)) if batch[i].clip is not None)
