"""Decoding only the sampled frames: seeks to keyframes past frames nobody wants give exactly the frames (and times)
of a decode of every frame, on real H.264 mp4 files with several GOPs, B-frames and odd frame rates."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

av = pytest.importorskip("av")

import tempbench.video as video  # noqa: E402
from tempbench.video import VideoSettings, decode_video, seek_plan  # noqa: E402


def write_mp4(path, n, rate=30, gop=12, bframes=2, size=(96, 64), codec="libx264"):
    """A moving-noise video (every frame differs) with a keyframe every `gop` frames."""
    if codec not in av.codecs_available:
        pytest.skip(f"{codec} encoder not available")
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=rate)
        s.width, s.height, s.pix_fmt = size[0], size[1], "yuv420p"
        s.codec_context.gop_size = gop
        s.codec_context.thread_count = 1
        if codec == "libx264":
            s.codec_context.options = {"bf": str(bframes), "keyint_min": str(gop), "sc_threshold": "0"}
        base = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        for k in range(n):
            f = av.VideoFrame.from_ndarray(np.roll(base, 3 * k, axis=1), format="rgb24")
            f.pts = k
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def keyframes(path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for p in c.demux(c.streams.video[0]) if p.size and p.is_keyframe)


CASES = [  # (frames, rate, gop, bframes, sampling fps)
    (600, 30, 12, 2, 0.5),
    (600, 30, 5, 0, 1.0),
    (450, Fraction(30000, 1001), 25, 3, 0.25),
    (300, 25, 30, 2, 2.0),  # 2 fps: a wanted frame every 12.5 frames, keyframes every 30: few seeks
    (240, 24, 250, 2, 0.5),  # one GOP: no seek at all
]


@pytest.mark.parametrize("n,rate,gop,bframes,fps", CASES)
def test_seeking_gives_the_frames_of_a_full_decode(tmp_path, monkeypatch, n, rate, gop, bframes, fps):
    path = write_mp4(tmp_path / "v.mp4", n, rate=rate, gop=gop, bframes=bframes)
    settings = VideoSettings(fps=fps, min_frames=2)
    full = decode_video(path, settings, seek=False)
    calls = []
    real = video._decode_indices
    monkeypatch.setattr(video, "_decode_indices", lambda *a: calls.append(1) or real(*a))
    fast = decode_video(path, settings)
    assert np.array_equal(fast.frames, full.frames)
    assert np.array_equal(fast.timestamps, full.timestamps) and np.array_equal(fast.indices, full.indices)
    assert (fast.fps, fast.duration, fast.n_source_frames) == (full.fps, full.duration, full.n_source_frames)
    index_keys = np.zeros(n, dtype=bool)
    index_keys[::gop] = True
    will_seek = any(k >= 0 for k in seek_plan(np.unique(full.indices), index_keys))
    if will_seek:
        assert keyframes(path) > 1 and not calls  # the frames came from the seeking decoder, not the fallback
    else:
        assert calls  # nothing to skip: the frame-by-frame decoder ran


def test_seek_plan_rules():
    keys = np.zeros(100, dtype=bool)
    keys[::10] = True
    # wanted 3 (keyframe 0, nothing skipped), 55 (keyframe 50: skips 4..49), 58 (same GOP, no seek), 95 (90)
    assert seek_plan(np.array([3, 55, 58, 95]), keys, min_skip=8) == [-1, 50, -1, 90]
    assert seek_plan(np.array([3, 12, 25, 40]), keys, min_skip=8) == [-1, -1, -1, 40]  # 20 would skip only 7
    assert seek_plan(np.array([5]), np.zeros(10, dtype=bool)) == [-1]


def test_decode_threads_setting():
    video.set_decode_threads(1)
    try:
        assert video._DECODE_THREADS == 1
        with pytest.raises(Exception, match="threads"):
            video.set_decode_threads(0)
    finally:
        video.set_decode_threads(None)
