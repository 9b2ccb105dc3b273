"""The torch-only Qwen2-VL video processor against independent expectations (shapes, budgets, patch layout)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tempbench import video as vs
from tempbench.models.qwen import processor as qv
from tempbench.video import Clip, VideoSettings

torch = pytest.importorskip("torch", reason="torch is needed for the video processor (extra: hf)")


def make_clip(t=5, h=60, w=90, fps=2.0, seed=0) -> Clip:
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, size=(t, h, w, 3), dtype=np.uint8)
    return Clip(frames=frames, timestamps=np.arange(t) / fps, fps=fps, duration=t / fps, source_fps=fps,
                path="mem.mp4")


# ----------------------------------------------------------------------------------------- smart_resize


def test_smart_resize_known_values():
    # 1080p under the 768*28*28 per-frame cap: beta = sqrt(1080*1920/602112), floor to multiples of 28
    assert qv.smart_resize(1080, 1920, 28, 16 * 784, 768 * 784) == (560, 1008)
    # 96x128 is below 16*28*28 pixels: ceil branch
    assert qv.smart_resize(96, 128, 28, 16 * 784, 768 * 784) == (112, 140)
    # already a multiple of 28 inside the bounds: unchanged
    assert qv.smart_resize(224, 336, 28, 16 * 784, 768 * 784) == (224, 336)
    # sides below factor/2 keep at least one factor (qwen-vl-utils)
    assert qv.smart_resize(10, 600, 28, 1, 10**9) == (28, 588)


def test_smart_resize_refuses_extreme_aspect():
    with pytest.raises(ValueError, match="aspect ratio"):
        qv.smart_resize(10, 2100)


@settings(max_examples=300, deadline=None)
@given(h=st.integers(20, 4000), w=st.integers(20, 4000), lo=st.integers(4, 256), hi_extra=st.integers(0, 2000))
def test_smart_resize_properties(h, w, lo, hi_extra):
    if max(h, w) / min(h, w) > 200:
        return
    min_px, max_px = lo * 784, (lo + hi_extra + 4) * 784
    rh, rw = qv.smart_resize(h, w, 28, min_px, max_px)
    assert rh % 28 == 0 and rw % 28 == 0 and rh >= 28 and rw >= 28
    round_h, round_w = max(28, round(h / 28) * 28), max(28, round(w / 28) * 28)
    if round_h * round_w > max_px:
        assert rh * rw <= max_px or min(rh, rw) == 28  # a side is never shrunk below one factor
    elif round_h * round_w < min_px:
        assert rh * rw >= min_px
    else:
        assert (rh, rw) == (round_h, round_w)
    # aspect ratio kept up to one factor of rounding on each side
    assert abs(rh / rw - h / w) <= (28 / min(rh, rw)) * (h / w + 1) + 1e-9


# ----------------------------------------------------------------------------------------- frame sampling


@pytest.mark.parametrize(
    "total,video_fps,expected",
    [
        (105, 8.0, 26),  # 13.125 s * 2 fps = 26.25 -> 26
        (30, 30.0, 4),  # 1 s -> 2 frames -> min_frames 4
        (3, 30.0, 2),  # clamped to the frames that exist, floored to an even number
        (1, 30.0, 1),  # a single frame is kept (qwen-vl-utils would raise)
        (30 * 3600, 30.0, 768),  # one hour -> max_frames
        (901, 29.97, 60),  # 30.06 s * 2 = 60.1 -> 60
    ],
)
def test_smart_nframes(total, video_fps, expected):
    assert vs.smart_nframes(total, video_fps, 2.0, 4, 768, 2) == expected


def test_smart_nframes_bad_input():
    with pytest.raises(ValueError):
        vs.smart_nframes(0, 30.0)
    with pytest.raises(ValueError):
        vs.smart_nframes(10, 0.0)


def test_sample_frame_indices_matches_torch_linspace():
    """qwen-vl-utils: torch.linspace(0, total - 1, n).round().long() (float32, half to even)."""
    cases = [(t, n) for t in list(range(2, 400)) + [901, 1799, 2999, 5400, 10_001, 54_000]
             for n in (2, 3, 4, 6, 16, 31, 32, 100, 255, 256, 767, 768, t // 2, t) if 2 <= n <= t]
    for total, n in cases:
        expected = torch.linspace(0, total - 1, n).round().long().numpy()
        got = vs.sample_frame_indices(total, n)
        assert np.array_equal(got, expected), (total, n)
        assert np.array_equal(vs._linspace_f32(0, total - 1, n), torch.linspace(0, total - 1, n).numpy()), (total, n)
    assert vs.sample_frame_indices(1, 1).tolist() == [0]
    assert vs.sample_frame_indices(10, 0).tolist() == []


@settings(max_examples=300, deadline=None)
@given(total=st.integers(1, 200_000), video_fps=st.floats(1.0, 120.0), fps=st.floats(0.1, 8.0),
       min_frames=st.integers(1, 16), max_frames=st.integers(16, 1024))
def test_sampling_invariants(total, video_fps, fps, min_frames, max_frames):
    n = vs.smart_nframes(total, video_fps, fps, min_frames, max_frames, 2)
    assert 1 <= n <= min(total, max_frames)
    if total >= 2:
        assert n % 2 == 0
        assert n >= min(math.ceil(min_frames / 2) * 2, total // 2 * 2, max_frames // 2 * 2)
    idx = vs.sample_frame_indices(total, n)
    assert len(idx) == n and idx[0] == 0 and idx[-1] == (total - 1 if n > 1 else 0)
    assert np.all(np.diff(idx) >= 1)  # strictly increasing: n <= total
    assert vs.sampled_fps(n, total, video_fps) == pytest.approx(n / (total / video_fps))


def test_sampled_fps_and_second_per_grid():
    assert vs.sampled_fps(26, 105, 8.0) == pytest.approx(26 / 105 * 8)
    clip = make_clip(t=4, fps=26 / 105 * 8)
    out = qv.process_video(clip, VideoSettings())
    assert out["second_per_grid_ts"] == [pytest.approx(2 / (26 / 105 * 8))]


# ----------------------------------------------------------------------------------------- pixel budget


def test_frame_pixel_budget_values():
    s = VideoSettings()
    assert qv.frame_pixel_budget(32, s.min_pixels, s.max_pixels, s.total_pixels) == pytest.approx(3584 * 784 / 16)
    assert qv.frame_pixel_budget(768, s.min_pixels, s.max_pixels, s.total_pixels) == int(16 * 784 * 1.05)
    assert qv.frame_pixel_budget(4, s.min_pixels, s.max_pixels, s.total_pixels) == 768 * 784


@pytest.mark.parametrize("hw", [(240, 320), (360, 640), (720, 1280), (1080, 1920), (96, 128), (480, 272)])
@pytest.mark.parametrize("t", [4, 16, 60, 256, 768])
def test_pixel_budget_respected(hw, t):
    s = VideoSettings()
    rh, rw = qv.target_size(*hw, t, s)
    assert rh % 28 == 0 and rw % 28 == 0
    per_frame_cap = max(min(s.max_pixels, s.total_pixels / t * 2), int(s.min_pixels * 1.05))
    assert rh * rw <= max(per_frame_cap, s.min_pixels + 28 * (rh + rw))  # ceil branch may overshoot min_pixels
    assert rh * rw >= s.min_pixels or rh * rw >= 28 * 28
    if s.total_pixels / t * 2 >= 1.05 * s.min_pixels:  # the budget binds before the floor
        assert math.ceil(t / 2) * rh * rw <= s.total_pixels
    tokens = qv.num_video_tokens([[math.ceil(t / 2), rh // 14, rw // 14]])
    assert tokens == math.ceil(t / 2) * rh * rw // (28 * 28)


# ----------------------------------------------------------------------------------------- processor output


def test_process_video_shapes_and_grid():
    clip = make_clip(t=5, h=60, w=90)
    s = VideoSettings(min_pixels=4 * 784, max_pixels=16 * 784, total_pixels=10**9)
    out = qv.process_video(clip, s)
    rh, rw = qv.smart_resize(60, 90, 28, 4 * 784, 16 * 784)
    assert (rh, rw) == (56, 84)
    grid = out["video_grid_thw"]
    assert grid.dtype == torch.int64 and grid.tolist() == [[3, rh // 14, rw // 14]]  # 5 frames padded to 6
    pv = out["pixel_values_videos"]
    assert pv.dtype == torch.float32 and tuple(pv.shape) == (3 * (rh // 14) * (rw // 14), 3 * 2 * 14 * 14)
    assert out["second_per_grid_ts"] == [1.0]


def _unpatchify(pv, grid, ps=14, tp=2, m=2, c=3):
    gt, gh, gw = grid
    x = pv.reshape(gt, gh // m, gw // m, m, m, c, tp, ps, ps)
    # (gt, bh, bw, ih, iw, c, tp, ph, pw) -> (gt, tp, c, bh, ih, ph, bw, iw, pw)
    x = x.permute(0, 6, 5, 1, 3, 7, 2, 4, 8)
    return x.reshape(gt * tp, c, gh * ps, gw * ps)


def test_patch_layout_by_explicit_loops():
    """Row r of pixel_values_videos holds patch (t, y, x) where r enumerates t, then 2x2 merge blocks in raster
    order, then the 4 patches of a block in raster order; values in (channel, time, row, col) order."""
    t, h, w, ps, m, tp = 4, 56, 84, 14, 2, 2
    video = torch.arange(t * 3 * h * w, dtype=torch.float32).reshape(t, 3, h, w)
    pv, (gt, gh, gw) = qv.patchify(video, ps, tp, m)
    assert (gt, gh, gw) == (2, 4, 6)
    r = 0
    for ti in range(gt):
        for bh in range(gh // m):
            for bw in range(gw // m):
                for ih in range(m):
                    for iw in range(m):
                        y, x = (bh * m + ih) * ps, (bw * m + iw) * ps
                        expected = video[ti * tp:(ti + 1) * tp, :, y:y + ps, x:x + ps].permute(1, 0, 2, 3)
                        assert torch.equal(pv[r], expected.reshape(-1)), r
                        r += 1
    assert r == pv.shape[0]


def test_frames_reconstructed_from_patches():
    clip = make_clip(t=5, h=100, w=150, seed=3)
    s = VideoSettings(min_pixels=8 * 784, max_pixels=20 * 784, total_pixels=10**9)
    out = qv.process_video(clip, s)
    gt, gh, gw = out["video_grid_thw"][0].tolist()
    frames = _unpatchify(out["pixel_values_videos"], (gt, gh, gw))
    mean = torch.tensor(qv.OPENAI_CLIP_MEAN).view(1, 3, 1, 1) * 255
    std = torch.tensor(qv.OPENAI_CLIP_STD).view(1, 3, 1, 1) * 255
    pixels = frames * std + mean
    resized = qv.resize_frames(clip.frames, (gh * 14, gw * 14), mode=s.resize_mode).to(torch.float32)
    assert torch.allclose(pixels[:5], resized, atol=2e-3)
    assert torch.equal(frames[5], frames[4])  # temporal padding repeats the last frame


def test_normalize_values():
    x = torch.tensor([0, 255, 128], dtype=torch.uint8).view(3, 1, 1, 1).expand(3, 3, 1, 1).contiguous()
    y = qv.normalize(x)  # frames of constant value 0, 255, 128
    assert y.dtype == torch.float32 and y.shape == (3, 3, 1, 1)
    for c in range(3):
        m, s = qv.OPENAI_CLIP_MEAN[c], qv.OPENAI_CLIP_STD[c]
        for f, v in enumerate((0, 255, 128)):
            assert y[f, c, 0, 0].item() == pytest.approx((v / 255 - m) / s, abs=1e-5)


def test_resize_modes_follow_torchvision_paths():
    clip = make_clip(t=2, h=96, w=128, seed=5)
    x = torch.from_numpy(clip.frames).permute(0, 3, 1, 2).contiguous()
    kw = dict(size=[112, 140], mode="bicubic", align_corners=False, antialias=True)
    # transformers (torchvision v2 on CPU): torch's native uint8 kernel
    tf = qv.resize_frames(clip.frames, (112, 140), mode="transformers")
    assert tf.dtype == torch.uint8 and tuple(tf.shape) == (2, 3, 112, 140)
    assert torch.equal(tf, torch.nn.functional.interpolate(x, **kw))
    # qwen-vl-utils (torchvision v1): float32 -> interpolate -> clamp -> round
    qvu = qv.resize_frames(clip.frames, (112, 140), mode="qwen-vl-utils")
    ref = torch.nn.functional.interpolate(x.float(), **kw).clamp(0, 255).round().to(torch.uint8)
    assert torch.equal(qvu, ref)
    assert not torch.equal(tf, qvu)  # the two reference pipelines really differ on noise
    assert (tf.int() - qvu.int()).abs().max() <= 32
    # same size: returned untouched (torchvision skips interpolation)
    for mode in qv.RESIZE_MODES:
        assert torch.equal(qv.resize_frames(clip.frames, (96, 128), mode=mode), x)
    with pytest.raises(ValueError, match="resize mode"):
        qv.resize_frames(clip.frames, (112, 140), mode="pil")


def test_float_path_chunking_changes_nothing(monkeypatch):
    clip = make_clip(t=7, h=50, w=70, seed=8)
    whole = qv.resize_frames(clip.frames, (56, 84), mode="qwen-vl-utils")
    monkeypatch.setattr(qv, "_FLOAT_CHUNK_ELEMENTS", 2 * 3 * 50 * 70)  # 2 frames per chunk
    assert torch.equal(qv.resize_frames(clip.frames, (56, 84), mode="qwen-vl-utils"), whole)


def test_process_video_uses_settings_resize_mode():
    clip = make_clip(t=2, h=96, w=128, seed=6)
    a = qv.process_video(clip, VideoSettings())
    b = qv.process_video(clip, VideoSettings(resize_mode="transformers"))
    assert torch.equal(a["video_grid_thw"], b["video_grid_thw"])
    assert not torch.equal(a["pixel_values_videos"], b["pixel_values_videos"])


def test_resize_clip_gives_same_output():
    clip = make_clip(t=6, h=120, w=200, seed=7)
    s = VideoSettings()
    small = qv.resize_clip(clip, s)
    assert small.resized_from == (120, 200) and small.frames.shape[1:3] == qv.target_size(120, 200, 6, s)
    a, b = qv.process_video(clip, s), qv.process_video(small, s)
    assert torch.equal(a["pixel_values_videos"], b["pixel_values_videos"])
    assert torch.equal(a["video_grid_thw"], b["video_grid_thw"])
    with pytest.raises(ValueError, match="resize it again"):
        qv.process_video(small, VideoSettings(max_pixels=20 * 784, min_pixels=4 * 784))


def test_single_frame_and_errors():
    out = qv.process_video(make_clip(t=1, h=56, w=56), VideoSettings(min_pixels=4 * 784))
    assert out["video_grid_thw"].tolist() == [[1, 4, 4]]
    with pytest.raises(ValueError, match="fps"):
        qv.process_video(dataclasses.replace(make_clip(t=2), fps=0.0), VideoSettings())
    with pytest.raises(ValueError, match="uint8"):
        qv.resize_frames(np.zeros((2, 8, 8, 3), dtype=np.float32), (28, 28))
