"""Synthetic videos: real mp4 files, exact windows, determinism, annotation format."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tempbench.errors import TempbenchError

av = pytest.importorskip("av", reason="PyAV is needed to write and decode videos (extra: video)")

from tempbench.synthetic import COLOURS, SHAPES, generate_synthetic, make_corrupt_video  # noqa: E402
from tempbench.video import VideoSettings, decode_video, probe_video  # noqa: E402

N = 4


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return generate_synthetic(tmp_path_factory.mktemp("synth_a"), n_videos=N, seed=0)


def _object_pixels(frame: np.ndarray, colour: str) -> int:
    """Pixels within a colour distance of the named colour (compression moves colours a little)."""
    d = np.abs(frame.astype(np.int32) - np.array(COLOURS[colour])[None, None, :]).sum(-1)
    return int((d < 90).sum())


def test_annotations_file_and_format(synth):
    lines = open(synth["annotations"]).read().splitlines()
    records = [json.loads(x) for x in lines]
    assert records == synth["records"] and len(records) == N
    assert [r["qid"] for r in records] == list(range(N))
    assert len({r["vid"] for r in records}) == N
    for r in records:
        assert set(r) == {"qid", "vid", "query", "duration", "windows"}
        assert isinstance(r["duration"], float) and 8 <= r["duration"] <= 16
        (s, e), = r["windows"]
        assert 0 <= s < e <= r["duration"] and e - s >= 1.0
        assert (s * 8).is_integer() and (e * 8).is_integer()  # frame-aligned at 8 fps
        words = r["query"].split()
        assert words[0] == "the" and words[1] in COLOURS and words[2] in SHAPES and words[3] == "appears"
        assert synth["videos"][r["vid"]].endswith(f"{r['vid']}.mp4")
    assert synth["codec"] in ("libx264", "mpeg4")


def test_videos_are_real_mp4_with_annotated_duration(synth):
    for r in synth["records"]:
        info = probe_video(synth["videos"][r["vid"]], exact=True, verify=True)
        assert (info["width"], info["height"]) == (128, 96)
        assert info["fps"] == pytest.approx(8.0)
        assert info["duration"] == pytest.approx(r["duration"])
        assert info["n_frames"] == round(r["duration"] * 8)


def test_object_visible_exactly_during_window(synth):
    for r in synth["records"]:
        colour = r["query"].split()[1]
        (s, e), = r["windows"]
        clip = decode_video(synth["videos"][r["vid"]], VideoSettings(fps=8.0))  # every frame (even count)
        visible = np.array([_object_pixels(f, colour) > 60 for f in clip.frames])
        inside = (clip.timestamps >= s - 1e-6) & (clip.timestamps < e - 1e-6)
        assert inside.any() and (~inside).any()
        assert np.array_equal(visible, inside), r["vid"]
        # other colours never appear as an object
        for other in COLOURS:
            if other != colour:
                assert max(_object_pixels(f, other) for f in clip.frames) < 60, (r["vid"], other)


def test_deterministic_same_seed(tmp_path, synth):
    again = generate_synthetic(tmp_path / "b", n_videos=N, seed=0)
    assert again["records"] == synth["records"]
    for r in synth["records"]:
        a = decode_video(synth["videos"][r["vid"]], VideoSettings())
        b = decode_video(again["videos"][r["vid"]], VideoSettings())
        assert np.array_equal(a.frames, b.frames) and np.array_equal(a.timestamps, b.timestamps)
    # a prefix of a larger set is the same set (video i depends on (seed, i) only)
    assert generate_synthetic(tmp_path / "c", n_videos=2, seed=0)["records"] == synth["records"][:2]


def test_different_seed_differs(tmp_path, synth):
    other = generate_synthetic(tmp_path / "d", n_videos=N, seed=1)
    assert [r["windows"] for r in other["records"]] != [r["windows"] for r in synth["records"]]
    assert not set(other["videos"]) & set(synth["videos"])


def test_colours_are_balanced(tmp_path):
    recs = generate_synthetic(tmp_path / "e", n_videos=6, seed=3, duration_range=(2, 3), size=(32, 32))["records"]
    assert sorted(r["query"].split()[1] for r in recs) == sorted(COLOURS)


def test_bad_settings(tmp_path):
    with pytest.raises(TempbenchError):
        generate_synthetic(tmp_path, n_videos=1, duration_range=(5, 2))
    with pytest.raises(TempbenchError, match="even"):
        generate_synthetic(tmp_path, n_videos=1, size=(33, 32), duration_range=(2, 3))
    with pytest.raises(TempbenchError):
        make_corrupt_video(tmp_path / "x.mp4", "weird")


def test_mpeg4_fallback_codec(tmp_path):
    out = generate_synthetic(tmp_path / "m", n_videos=1, seed=0, duration_range=(2, 3), codec="mpeg4")
    clip = decode_video(next(iter(out["videos"].values())), VideoSettings())
    assert out["codec"] == "mpeg4" and clip.frames.shape[1:] == (96, 128, 3)
