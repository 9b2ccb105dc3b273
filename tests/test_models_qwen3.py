"""Qwen3-VL and Qwen3.5 on tiny float32 models built locally: time as `<t seconds>` text, token layouts, position
ids, batching with Qwen3.5's recurrent cache. Each `test_bug_*` would have caught one of the harness bugs of issue 13."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from clip_helpers import make_clip  # noqa: E402

from tempbench.errors import TempbenchError  # noqa: E402
from tempbench.models.base import GenerationSettings, ModelInput  # noqa: E402
from tempbench.models.qwen.adapter import HFQwenVL  # noqa: E402
from tempbench.models.qwen.layout import expand_video  # noqa: E402
from tempbench.models.qwen.rope3 import qwen3_vl_rope_index  # noqa: E402
from tempbench.models.qwen.timestamps import clip_timestamps, index_timestamps, patch_times  # noqa: E402
from tempbench.models.qwen.tiny3 import build_tiny_qwen3  # noqa: E402
from tempbench.video import Clip, VideoSettings, decode_video  # noqa: E402

SMALL = VideoSettings(min_pixels=32 * 32, max_pixels=64 * 96, min_frames=2, total_pixels=64 * 96 * 100)
FAMILIES = ("qwen3_vl", "qwen3_5")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny3")
    return {fam: build_tiny_qwen3(root / fam, fam, seed=0) for fam in FAMILIES}


@pytest.fixture(scope="module")
def adapters(folders):
    out = {fam: HFQwenVL(str(p), generation=GenerationSettings(max_new_tokens=8), video_settings=SMALL)
           for fam, p in folders.items()}
    yield out
    for a in out.values():
        a.close()


def markers(adapter, ids) -> list[str]:
    import re

    return re.findall(r"<[0-9.]+ seconds>", adapter.tokenizer.decode(ids))


# ------------------------------------------------------------------------------------------------ timestamps


def test_stock_formula_by_hand():
    # patches (0, 15), (30, 45), (60, 60: an odd count repeats the last index); 29.97 fps
    got = index_timestamps([0, 15, 30, 45, 60], 29.97)
    assert got == [(0 / 29.97 + 15 / 29.97) / 2, (30 / 29.97 + 45 / 29.97) / 2, 60 / 29.97]
    assert [f"{t:.1f}" for t in got] == ["0.3", "1.3", "2.0"]
    assert patch_times([0.0, 0.5, 1.1]) == [0.25, 1.1]


def test_formula_equals_transformers_calculate_timestamps():
    from transformers.models.qwen3_vl.processing_qwen3_vl import Qwen3VLProcessor

    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(1, 40))
        idx = sorted(rng.integers(0, 5000, n).tolist())
        fps = float(rng.choice([23.976, 24.0, 25.0, 29.97, 30.0, 59.94, 14.516]))
        ref = Qwen3VLProcessor._calculate_timestamps(None, list(idx), fps, 2)
        assert index_timestamps(idx, fps) == ref  # bit for bit, same float operations


def test_bug_fps_truncated_to_an_int():
    """A 29.97-fps clip: frame 899 is at 30.0 s, not at 31.0 s (899 / 29)."""
    clip = make_clip(t=4, src_fps=30000 / 1001, total=900)
    assert clip.indices[-1] == 899
    last = clip_timestamps(clip)[-1]
    assert abs(last - (clip.indices[-2] / clip.source_fps + 899 / clip.source_fps) / 2) < 1e-12
    assert f"{last:.1f}" == "25.0" and f"{last * clip.source_fps / 29:.1f}" != "25.0"


def test_bug_timestamps_from_a_nominal_or_sampled_fps():
    """Times come from source indices / source fps, not from the sampled fps or a default 2 (or 24) fps."""
    clip = make_clip(t=8, src_fps=25.0, total=1500)  # 60 s, 8 frames: sampled fps 0.133
    times = clip_timestamps(clip)
    assert clip.indices[-2:].tolist() == [1285, 1499]
    assert f"{times[-1]:.1f}" == "55.7"  # (1285 / 25 + 1499 / 25) / 2
    nominal = patch_times([k / 2.0 for k in range(8)])  # frames at a nominal 2 fps
    sampled = patch_times([k / clip.fps for k in range(8)])  # index k of the sampled frames / the sampled fps
    assert nominal[-1] < 4 and f"{sampled[-1]:.1f}" == "48.8" and times != sampled


def test_bug_metadata_lost_is_refused_not_guessed():
    """Frames without their sampled indices: transformers falls back to 0..T-1 at 24 fps (a 30-s clip ends at
    `<0.3 seconds>` here); tempbench refuses instead."""
    from transformers.models.qwen3_vl.processing_qwen3_vl import Qwen3VLProcessor

    clip = make_clip(t=8, src_fps=30.0, total=900)
    bare = Clip(frames=clip.frames, timestamps=clip.timestamps, fps=clip.fps, duration=clip.duration,
                source_fps=clip.source_fps, path="no-metadata")
    with pytest.raises(TempbenchError, match="no sampled frame indices"):
        clip_timestamps(bare)
    stock_fallback = Qwen3VLProcessor._calculate_timestamps(None, list(range(8)), 24, 2)
    assert f"{stock_fallback[-1]:.1f}" == "0.3" and f"{clip_timestamps(clip)[-1]:.1f}" == "27.8"
    for bad in (None, 0.0, float("nan")):
        with pytest.raises(TempbenchError, match="source fps"):
            index_timestamps([0, 1], bad)


def _write_mp4(path, n=None, rate=None, pts_ms=None, size=(64, 48)):
    av = pytest.importorskip("av")
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=rate or 30)
        s.width, s.height, s.pix_fmt = size[0], size[1], "yuv420p"
        s.codec_context.thread_count = 1
        if pts_ms is not None:
            s.time_base = Fraction(1, 1000)
        count = n if pts_ms is None else len(pts_ms)
        for k in range(count):
            f = av.VideoFrame.from_ndarray(np.full((size[1], size[0], 3), (k * 4) % 256, np.uint8), format="rgb24")
            f.pts = k if pts_ms is None else pts_ms[k]
            if pts_ms is not None:
                f.time_base = Fraction(1, 1000)
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def test_real_ntsc_mp4_markers_in_the_prompt(adapters, tmp_path):
    pytest.importorskip("av")
    path = _write_mp4(tmp_path / "ntsc.mp4", n=300, rate=Fraction(30000, 1001))  # 10.01 s at 29.97 fps
    settings = VideoSettings(fps=1.0, min_frames=2, min_pixels=32 * 32, max_pixels=64 * 64, total_pixels=64 * 64 * 50)
    clip = decode_video(path, settings)
    assert clip.source_fps == pytest.approx(30000 / 1001) and clip.n_source_frames == 300
    a = adapters["qwen3_vl"]
    ids = a.build_inputs([ModelInput(clip, "when?", 0)])["input_ids"][0]
    want = [f"<{t:.1f} seconds>" for t in index_timestamps(clip.indices, 30000 / 1001)]
    assert markers(a, ids) == want and want[-1] == "<9.4 seconds>"


def test_vfr_file_frame_indices_versus_pts(tmp_path):
    """A variable-frame-rate file: 30 frames at 10 fps then 30 at 30 fps. Index / average fps misplaces the second
    half; `timestamps="pts"` uses the decoded presentation times."""
    pytest.importorskip("av")
    pts = [k * 100 for k in range(30)] + [3000 + k * 33 for k in range(30)]
    clip = decode_video(_write_mp4(tmp_path / "vfr.mp4", pts_ms=pts), VideoSettings(fps=2.0, min_frames=2))
    by_index = clip_timestamps(clip, "frame-indices")
    by_pts = clip_timestamps(clip, "pts")
    assert by_pts == patch_times(list(clip.timestamps))
    # the decoded times are the written ones up to the muxer's rounding
    assert by_pts == pytest.approx(patch_times([p / 1000 for p in np.asarray(pts)[clip.indices]]), abs=0.02)
    # index / average fps (14.5) puts the patch at frames 25 and 34 at 2.0 s; it was shown at 2.8 s
    assert max(abs(a - b) for a, b in zip(by_index, by_pts)) > 0.5


# ------------------------------------------------------------------------------------------------ layouts


def test_bug_layout_drift_both_layouts_pinned(adapters):
    a = adapters["qwen3_vl"]
    chat = a.chat_text("find it", with_video=True)
    times = [0.25, 1.3]
    rel = expand_video(chat, times, 2, "release")
    tf = expand_video(chat, times, 2, "transformers")
    block = ("<0.2 seconds><|vision_start|><|video_pad|><|video_pad|><|vision_end|>"
             "<1.3 seconds><|vision_start|><|video_pad|><|video_pad|><|vision_end|>")
    assert rel == "<|im_start|>user\n" + block + "find it<|im_end|>\n<|im_start|>assistant\n"
    assert tf == "<|im_start|>user\n<|vision_start|>" + block + "<|vision_end|>find it<|im_end|>\n" \
                 "<|im_start|>assistant\n"
    r_ids, t_ids = (a.tokenizer(x, add_special_tokens=False)["input_ids"] for x in (rel, tf))
    assert len(t_ids) == len(r_ids) + 2
    vs, ve = a.tokenizer.convert_tokens_to_ids(["<|vision_start|>", "<|vision_end|>"])
    k = r_ids.index(a.tokenizer.convert_tokens_to_ids("<"))  # where the first marker starts
    assert t_ids[k] == vs and t_ids[:k] + t_ids[k + 1:] != r_ids  # the extra outer tokens ...
    outer_end = len(t_ids) - 1 - t_ids[::-1].index(ve)
    assert t_ids[:k] + t_ids[k + 1:outer_end] + t_ids[outer_end + 1:] == r_ids  # ... are the only difference


def _release_rope(ids, image_token, video_token, vision_start, grids, merge=2):
    """The Qwen3-VL release `get_rope_index` (transformers 4.57.0), restated independently for one unpadded row:
    find each vision block from its `<|vision_start|>`, text before it counts on, the block gets (0, i, j) offsets."""
    grids = [g for t, h, w in grids for g in [(1, h, w)] * t]
    tokens, pos, st, nxt = list(ids), [], 0, 0
    for _t, h, w in grids:
        ed = tokens.index(video_token, st)
        lh, lw = h // merge, w // merge
        for k in range(ed - st):
            pos.append([nxt + k] * 3)
        base = nxt + (ed - st)
        block = [[base, base + i, base + j] for i in range(lh) for j in range(lw)]
        pos.extend(block)
        nxt = max(max(p) for p in block) + 1
        st = ed + lh * lw
    for k in range(len(tokens) - st):
        pos.append([nxt + k] * 3)
    return torch.tensor(pos).T


@pytest.mark.parametrize("layout", ["release", "transformers"])
def test_rope_index_release_definition_and_transformers(adapters, layout):
    a = adapters["qwen3_vl"]
    a.layout = layout
    try:
        clips = [make_clip(t=6, seed=1), make_clip(t=3, h=96, w=64, seed=2)]
        inp = a.build_inputs([ModelInput(c, p, i) for i, (c, p) in enumerate(zip(clips, ["a", "a longer one"]))])
    finally:
        a.layout = "release"
    ids, mask, mm, grid = inp["input_ids"], inp["attention_mask"], inp["mm_token_type_ids"], inp["video_grid_thw"]
    ours, d_ours = qwen3_vl_rope_index(ids, mm, video_grid_thw=grid, attention_mask=mask)
    stock, d_stock = _stock_rope(a.model, ids, mm, grid, mask)
    assert torch.equal(ours, stock) and torch.equal(d_ours, d_stock)
    for b in range(2):
        keep = mask[b].bool()
        ref = _release_rope(ids[b][keep].tolist(), a.image_token_id, a.video_token_id, None, [grid[b].tolist()])
        assert torch.equal(ours[:, b, keep], ref)
        assert (ours[:, b, ~keep] == 0).all()


def _stock_rope(model, ids, mm, grid, mask):
    """transformers' own Qwen3-VL get_rope_index (the class method, not the installed reference)."""
    inner = model.model
    return type(inner).get_rope_index(inner, ids, mm, video_grid_thw=grid.clone(), attention_mask=mask)


def test_rope_index_errors():
    ids = torch.zeros(1, 5, dtype=torch.long)
    mm = torch.tensor([[0, 2, 2, 2, 0]], dtype=torch.int32)
    with pytest.raises(TempbenchError, match="does not match grid"):
        qwen3_vl_rope_index(ids, mm, video_grid_thw=torch.tensor([[1, 4, 4]]))
    with pytest.raises(TempbenchError, match="more video tokens than grids"):
        qwen3_vl_rope_index(ids, mm, video_grid_thw=None)


# ------------------------------------------------------------------------------------------------ the adapter


def test_bug_second_video_in_a_batch_gets_its_own_times(adapters):
    a = adapters["qwen3_vl"]
    c1, c2 = make_clip(t=4, src_fps=25.0, total=250, seed=1), make_clip(t=6, src_fps=29.97, total=2997, seed=2)
    inp = a.build_inputs([ModelInput(c1, "first", 0), ModelInput(c2, "second", 1)])
    m1, m2 = (markers(a, inp["input_ids"][b][inp["attention_mask"][b].bool()]) for b in range(2))
    assert m1 == [f"<{t:.1f} seconds>" for t in clip_timestamps(c1)] == ["<1.7 seconds>", "<8.3 seconds>"]
    assert m2 == [f"<{t:.1f} seconds>" for t in clip_timestamps(c2)] and m2[-1] == "<90.0 seconds>"
    # the same holds for pre-processed videos handed over by the prefetch workers
    pre = [a.prepare_video(c) for c in (c1, c2)]
    inp2 = a.build_inputs([ModelInput(pre[0], "first", 0), ModelInput(pre[1], "second", 1)])
    assert torch.equal(inp2["input_ids"], inp["input_ids"])


@pytest.mark.parametrize("family", FAMILIES)
def test_batched_left_padded_generation_equals_batch_of_one(adapters, family):
    """Qwen3.5 keeps conv + recurrent states in its linear-attention layers: left padding must not leak into them."""
    a = adapters[family]
    batch = [ModelInput(make_clip(t=6, seed=3), "a", 0),
             ModelInput(make_clip(t=2, h=32, w=32, seed=4), "a much longer prompt than the first one, with words "
                        "to pad the other rows of the batch on the left", 1),
             ModelInput(make_clip(t=5, h=96, w=64, src_fps=25.0, total=500, seed=5), "where?", 2),
             ModelInput(None, "text only", 3)]
    together = a.generate(batch)
    alone = [a.generate([x])[0] for x in batch]
    assert together == alone and len(set(together)) > 1
    widths = a.build_inputs(batch)["attention_mask"].sum(1).tolist()
    assert max(widths) - min(widths) > 20  # real left padding


def test_qwen3_5_generation_uses_linear_attention_states(adapters):
    a = adapters["qwen3_5"]
    types = a.model.config.text_config.layer_types
    assert types.count("linear_attention") == 3 and types[-1] == "full_attention"
    inp = a.build_inputs([ModelInput(make_clip(t=2, h=32, w=32), "x", 0)])
    with torch.no_grad():
        out = a.model(**inp, use_cache=True)
    cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
    layer0 = cache.layers[0] if hasattr(cache, "layers") else None
    assert layer0 is not None and any(getattr(layer0, k, None) is not None
                                      for k in ("conv_states", "recurrent_states", "conv_state", "recurrent_state"))


@pytest.mark.parametrize("family", FAMILIES)
def test_identity_names_model_type_time_convention_and_layout(adapters, family):
    ident = adapters[family].identity()
    assert ident.model_type == family and ident.info["time_convention"] == "text-timestamps"
    assert ident.options["layout"] == "release" and ident.options["timestamps"] == "frame-indices"
    assert ident.options["rope_index"] == "reference"


def test_options_are_checked(folders):
    with pytest.raises(TempbenchError, match="layout"):
        HFQwenVL(str(folders["qwen3_vl"]), layout="vllm", video_settings=SMALL)
    with pytest.raises(TempbenchError, match="timestamps"):
        HFQwenVL(str(folders["qwen3_vl"]), timestamps="nominal", video_settings=SMALL)


def test_pts_option_changes_the_markers(folders):
    a = HFQwenVL(str(folders["qwen3_vl"]), timestamps="pts", video_settings=SMALL,
                 generation=GenerationSettings(max_new_tokens=2))
    clip = make_clip(t=4, src_fps=25.0, total=250)
    clip.timestamps = clip.timestamps + 0.5  # decoded pts that disagree with index / fps
    ids = a.build_inputs([ModelInput(clip, "x", 0)])["input_ids"][0]
    assert markers(a, ids) == [f"<{t:.1f} seconds>" for t in patch_times(clip.timestamps)]
    assert a.identity().options["timestamps"] == "pts"
    b = HFQwenVL(str(folders["qwen3_vl"]), video_settings=SMALL)
    with pytest.raises(TempbenchError, match="video times from"):  # a dict processed for another adapter
        b.build_inputs([ModelInput(a.prepare_video(clip), "x", 0)])


@pytest.mark.parametrize("family", FAMILIES)
def test_fast_vision_tower_equals_stock(adapters, family):
    from tempbench.models.qwen.vision_attention import (
        install_fast_vision_tower,
        uninstall_fast_vision_tower,
    )

    a = adapters[family]
    v = a.prepare_video(make_clip(t=6, h=96, w=64, seed=9))
    visual = a.model.model.visual
    with torch.no_grad():
        grouped = visual(v["pixel_values_videos"], grid_thw=v["video_grid_thw"])
        assert uninstall_fast_vision_tower(a.model) > 0
        try:
            stock = visual(v["pixel_values_videos"], grid_thw=v["video_grid_thw"])
        finally:
            install_fast_vision_tower(a.model)
    torch.testing.assert_close(grouped.pooler_output, stock.pooler_output, atol=1e-5, rtol=1e-5)
    for x, y in zip(getattr(grouped, "deepstack_features", None) or [], getattr(stock, "deepstack_features", None) or []):
        torch.testing.assert_close(torch.cat(list(x)) if isinstance(x, (list, tuple)) else x,
                                   torch.cat(list(y)) if isinstance(y, (list, tuple)) else y, atol=1e-5, rtol=1e-5)


def test_8b_config_matches_public_checkpoint():
    from transformers import Qwen3VLForConditionalGeneration

    from tempbench.models.qwen.tiny3 import qwen3_vl_8b_config

    with torch.device("meta"):
        m = Qwen3VLForConditionalGeneration(qwen3_vl_8b_config())
    assert sum(p.numel() for p in m.parameters()) == 8_767_123_696  # "8.77B" (Qwen3-VL-8B-Instruct)
