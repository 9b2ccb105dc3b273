"""Video decoding, sampling, timestamps, checks and prefetching on real mp4 files written in the test."""

from __future__ import annotations

import math
import random
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tempbench.errors import TempbenchError
from tempbench.video import (
    Clip,
    Prefetcher,
    VideoSettings,
    check_videos,
    decode_video,
    find_video,
    probe_video,
)

av = pytest.importorskip("av", reason="PyAV is needed to decode videos (extra: video)")

from tempbench.synthetic import make_corrupt_video, render_video, write_video  # noqa: E402


def _write(path: Path, n_frames: int, fps: int, size=(64, 48), seed=0) -> Path:
    frames = render_video(np.random.default_rng(seed), n_frames, size, (0, 0), "red", "square")
    # stamp the frame number into two top-left blocks (k // 16 and k % 16, 15 grey levels apart) so decoded
    # frames can be identified despite lossy compression
    for k in range(n_frames):
        frames[k, :16, :16] = 15 * (k // 16)
        frames[k, :16, 16:32] = 15 * (k % 16)
    write_video(path, frames, fps)
    return path


def _frame_number(frame: np.ndarray) -> int:
    hi = int(round(float(frame[4:12, 4:12].mean()) / 15))
    lo = int(round(float(frame[4:12, 20:28].mean()) / 15))
    return 16 * hi + lo


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("videos")
    return {
        "v105": _write(d / "v105.mp4", 105, 8),  # 13.125 s at 8 fps
        "v30": _write(d / "v30.mp4", 30, 30, seed=1),  # 1 s at 30 fps
        "one": _write(d / "one.mp4", 1, 8, seed=2),
        "dir": d,
    }


# ----------------------------------------------------------------------------------------- decode


def test_decode_real_mp4_sampling_and_timestamps(videos):
    clip = decode_video(videos["v105"], VideoSettings())
    assert isinstance(clip, Clip)
    # 105 frames at 8 fps = 13.125 s; 2 fps -> 26.25 -> 26 frames (even)
    assert clip.frames.shape == (26, 48, 64, 3) and clip.frames.dtype == np.uint8
    assert clip.n_source_frames == 105 and clip.source_fps == pytest.approx(8.0)
    assert clip.duration == pytest.approx(105 / 8)
    expected_idx = np.rint(np.linspace(0, 104, 26)).astype(int)
    assert clip.indices.tolist() == expected_idx.tolist()
    assert clip.timestamps.dtype == np.float64
    np.testing.assert_allclose(clip.timestamps, expected_idx / 8.0, atol=1e-6)
    assert clip.fps == pytest.approx(26 / 105 * 8) and clip.fps == pytest.approx(26 / clip.duration)
    # the decoded frames are the frames at those indices (frame number stamped into the pixels)
    got = [_frame_number(f) for f in clip.frames]
    assert got == expected_idx.tolist()


def test_decode_min_frames_and_max_frames(videos):
    clip = decode_video(videos["v30"], VideoSettings())
    assert clip.num_frames == 4  # 1 s at 2 fps = 2 frames, raised to min_frames=4
    assert clip.fps == pytest.approx(4 / 30 * 30)
    np.testing.assert_allclose(clip.timestamps, np.rint(np.linspace(0, 29, 4)) / 30, atol=1e-6)
    clip = decode_video(videos["v105"], VideoSettings(fps=8.0, max_frames=10))
    assert clip.num_frames == 10
    clip = decode_video(videos["v105"], VideoSettings(fps=8.0))
    assert clip.num_frames == 104  # all 105 frames, floored to an even count
    assert np.all(np.diff(clip.timestamps) > 0)
    assert [_frame_number(f) for f in clip.frames] == clip.indices.tolist()
    np.testing.assert_allclose(clip.timestamps, clip.indices / 8.0, atol=1e-6)


def test_decode_single_frame_video(videos):
    clip = decode_video(videos["one"], VideoSettings())
    assert clip.num_frames == 1 and clip.timestamps.tolist() == [0.0]
    assert clip.duration == pytest.approx(1 / 8)


def test_missing_video_is_reported_with_path(tmp_path):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(TempbenchError, match="nope.mp4") as e:
        decode_video(missing, VideoSettings())
    assert "not found" in e.value.message and e.value.hint
    with pytest.raises(TempbenchError, match="not found"):
        probe_video(missing)


@pytest.mark.parametrize("kind", ["garbage", "truncated", "empty"])
def test_corrupt_video_is_reported_with_path(tmp_path, kind):
    path = make_corrupt_video(tmp_path / f"bad_{kind}.mp4", kind)
    with pytest.raises(TempbenchError, match=f"bad_{kind}.mp4") as e:
        decode_video(path, VideoSettings())
    assert e.value.hint
    with pytest.raises(TempbenchError):
        probe_video(path, verify=True)


def test_probe_video(videos):
    info = probe_video(videos["v105"])
    assert info == {"width": 64, "height": 48, "fps": pytest.approx(8.0), "n_frames": 105,
                    "duration": pytest.approx(105 / 8, abs=0.01)}
    exact = probe_video(videos["v105"], exact=True, verify=True)
    assert exact["n_frames"] == 105 and exact["duration"] == pytest.approx(105 / 8)


def test_video_settings_validation_and_round_trip():
    s = VideoSettings()
    d = s.to_dict()
    assert d["fps"] == 2.0 and d["total_pixels"] == 3584 * 28 * 28 and d["min_pixels"] == 16 * 28 * 28
    assert VideoSettings.from_dict(d) == s
    with pytest.raises(TempbenchError, match="fps"):
        VideoSettings(fps=0)
    with pytest.raises(TempbenchError, match="min_frames"):
        VideoSettings(min_frames=10, max_frames=4)
    with pytest.raises(TempbenchError, match="unknown video setting"):
        VideoSettings.from_dict({"fsp": 2})
    with pytest.raises(TempbenchError, match="resize_mode"):
        VideoSettings(resize_mode="pil")


# ----------------------------------------------------------------------------------------- find / check


def test_find_video_prefixes_and_extensions(tmp_path):
    (tmp_path / "abc.mkv").write_bytes(b"x")
    (tmp_path / "v_XYZ.mp4").write_bytes(b"x")
    (tmp_path / "both.webm").write_bytes(b"x")
    (tmp_path / "both.mp4").write_bytes(b"x")
    assert find_video(tmp_path, "abc") == tmp_path / "abc.mkv"
    assert find_video(tmp_path, "XYZ") == tmp_path / "v_XYZ.mp4"  # ActivityNet id without prefix
    assert find_video(tmp_path, "v_abc") == tmp_path / "abc.mkv"  # with prefix, file without
    assert find_video(tmp_path, "both") == tmp_path / "both.mp4"  # extension order decides
    assert find_video(tmp_path, "abc.mkv") == tmp_path / "abc.mkv"
    assert find_video(tmp_path, "none") is None
    assert find_video(tmp_path / "no_dir", "abc") is None


def test_check_videos_report(tmp_path, videos):
    d = tmp_path / "vids"
    d.mkdir()
    _write(d / "good.mp4", 40, 8)  # 5 s
    _write(d / "v_anet1.mp4", 24, 8)  # 3 s
    _write(d / "long.mp4", 80, 8)  # 10 s, annotated 7 s
    make_corrupt_video(d / "broken.mp4", "garbage")
    vids = ["good", "anet1", "long", "broken", "absent", "good"]
    durations = {"good": 5.4, "anet1": 3.0, "long": 7.0, "broken": 3.0, "absent": 1.0}
    report = check_videos(vids, durations, d)
    assert report["n"] == 5
    assert report["present"] == ["good", "anet1", "long"]
    assert report["missing"] == ["absent"]
    assert [u["vid"] for u in report["undecodable"]] == ["broken"]
    assert "broken.mp4" in report["undecodable"][0]["reason"]
    assert [m["vid"] for m in report["duration_mismatch"]] == ["long"]
    m = report["duration_mismatch"][0]
    assert m["decoded"] == pytest.approx(10.0, abs=0.01) and m["diff"] == pytest.approx(3.0, abs=0.01)
    # tolerance is "more than 1 s": 0.4 s off is fine
    assert check_videos(["good"], {"good": 6.2}, d)["duration_mismatch"][0]["vid"] == "good"
    assert check_videos(["good"], None, d)["present"] == ["good"]


def test_check_videos_missing_dir(tmp_path):
    report = check_videos(["a", "b"], {}, tmp_path / "nowhere")
    assert report["missing"] == ["a", "b"] and report["present"] == []


# ----------------------------------------------------------------------------------------- prefetch


def _slow_square(x):
    time.sleep(random.uniform(0, 0.01))
    if x % 7 == 3:
        raise ValueError(f"bad item {x}")
    if x % 7 == 5:
        raise TempbenchError(f"video {x} not found", "hint")
    return x * x


def test_prefetch_preserves_order_and_delivers_errors():
    out = list(Prefetcher(range(40), fn=_slow_square, workers=4, ahead=6))
    assert [p.index for p in out] == list(range(40)) and [p.item for p in out] == list(range(40))
    for p in out:
        if p.item % 7 == 3:
            assert not p.ok and p.error == f"ValueError: bad item {p.item}" and p.value is None
        elif p.item % 7 == 5:
            assert not p.ok and "not found" in p.error
        else:
            assert p.ok and p.value == p.item ** 2 and p.seconds >= 0


def test_prefetch_is_bounded_and_lazy():
    consumed = []
    lock = threading.Lock()

    def items():
        for i in range(100):
            with lock:
                consumed.append(i)
            yield i

    pre = Prefetcher(items(), fn=lambda x: x, workers=2, ahead=3)
    it = iter(pre)
    first = [next(it).value for _ in range(5)]
    assert first == [0, 1, 2, 3, 4]
    assert len(consumed) <= 5 + 3  # never more than `ahead` items beyond what was handed out
    pre.close()


def test_prefetch_process_pool():
    out = list(Prefetcher(range(10), fn=_slow_square, workers=2, kind="process"))
    assert [p.value for p in out if p.ok] == [x * x for x in range(10) if x % 7 not in (3, 5)]


def test_prefetch_decodes_videos_and_turns_failures_into_rows(tmp_path, videos):
    bad = make_corrupt_video(tmp_path / "bad.mp4", "garbage")
    paths = [videos["v105"], None, tmp_path / "missing.mp4", bad, videos["v30"]]
    with Prefetcher(paths, settings=VideoSettings(), workers=2) as pre:
        rows = list(pre)
    assert [r.ok for r in rows] == [True, False, False, False, True]
    assert rows[0].value.num_frames == 26 and rows[4].value.num_frames == 4
    assert "not found" in rows[1].error and "missing.mp4" in rows[2].error and "not found" in rows[2].error
    assert "bad.mp4" in rows[3].error


def test_prefetch_bad_arguments():
    with pytest.raises(TempbenchError):
        Prefetcher([], fn=lambda x: x, workers=0)
    with pytest.raises(TempbenchError):
        Prefetcher([], fn=lambda x: x, kind="fiber")


def test_budgeted_resize_of_decoded_clip(videos):
    torch = pytest.importorskip("torch")
    from tempbench.models.qwen.processor import process_video, resize_clip

    s = VideoSettings()
    clip = decode_video(videos["v105"], s)
    small = resize_clip(clip, s)
    # 48x64 is below 16*28*28 pixels: scaled up to at least min_pixels, multiples of 28
    h, w = small.frames.shape[1:3]
    assert h % 28 == 0 and w % 28 == 0 and h * w >= s.min_pixels
    out = process_video(small, s)
    assert out["video_grid_thw"].tolist() == [[13, h // 14, w // 14]]
    assert out["second_per_grid_ts"] == [pytest.approx(2 / (26 / 105 * 8))]
    assert torch.equal(out["pixel_values_videos"], process_video(clip, s)["pixel_values_videos"])
    assert math.isclose(out["second_per_grid_ts"][0] * out["video_grid_thw"][0, 0].item(), clip.duration, rel_tol=0.05)


def test_sampling_setting_transformers_rule_and_identity_stability():
    """`sampling="transformers"`: transformers' Qwen3-VL count (int(), no rounding to 2: odd counts) and float64
    linspace; the default is left out of to_dict, so run identities written before the field existed still match."""
    from tempbench.video import frame_plan, transformers_frame_indices, transformers_nframes

    assert "sampling" not in VideoSettings().to_dict()
    s = VideoSettings(sampling="transformers")
    assert s.to_dict()["sampling"] == "transformers" and VideoSettings.from_dict(s.to_dict()) == s
    assert transformers_nframes(299, 29.97, 2.0) == 19  # int(19.95): truncated, odd
    assert transformers_nframes(30, 30.0, 2.0) == 4  # min_frames
    assert transformers_nframes(3, 30.0, 2.0) == 3  # at most the video's frames
    assert transformers_frame_indices(299, 19).tolist() == np.linspace(0, 298, 19).round().astype(int).tolist()
    assert len(frame_plan(299, 29.97, s)) == 19 and len(frame_plan(299, 29.97, VideoSettings())) == 18
    with pytest.raises(TempbenchError, match="sampling"):
        VideoSettings(sampling="decord")
