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


# ---------------------------------------------------------------------------------------------------------------
# synthetic-hard: several objects, the query names one


def _hard_settings():
    from tempbench.tasks import synthetic

    return synthetic.settings("synthetic-hard")


def _named(query: str) -> tuple[str | None, str | None]:
    words = query.split()
    assert words[0] == "the" and words[-1] == "appears", query
    if len(words) == 4 and words[2] == "object":
        return words[1], None
    if len(words) == 4:
        return words[1], words[2]
    return None, words[1]


def test_hard_scenes_follow_their_rules():
    from tempbench.synthetic import QUERY_MODES, draw_scene

    settings = _hard_settings()
    fps = settings.fps
    combos = set()
    for i in range(180):
        scene, _ = draw_scene(settings, 11, i)
        objs = scene.objects
        assert 2 <= len(objs) <= 3 and scene.target == 0
        spans = sorted((o.start, o.end) for o in objs)
        assert spans[0][0] >= 0 and spans[-1][1] <= scene.n_frames
        for (_, e0), (s1, _) in zip(spans, spans[1:]):
            assert s1 - e0 >= fps // 2, (i, spans)  # disjoint, half a second apart
        assert all(o.end - o.start >= 1.5 * fps for o in objs)
        colour, shape = _named(scene.query)
        matches = [o for o in objs if (colour is None or o.colour == colour) and (shape is None or o.shape == shape)]
        assert matches == [objs[0]], (i, scene.query, objs)  # the query names exactly the target
        if colour and shape:  # both words are needed: another object shares one of them
            assert any(o.colour == colour or o.shape == shape for o in objs[1:]), (i, scene.query, objs)
        mode = "both" if colour and shape else ("colour" if colour else "shape")
        combos.add((objs[0].colour, mode))
        r = scene.record(i)
        assert r["windows"] == [[objs[0].start / fps, objs[0].end / fps]] and r["duration"] == scene.n_frames / fps
    assert len(combos) == len(COLOURS) * len(QUERY_MODES)


def test_hard_videos_show_each_object_exactly_in_its_window(tmp_path):
    from tempbench.synthetic import draw_scene, generate_scenes

    settings = _hard_settings()
    out = generate_scenes(tmp_path, settings, 4, seed=11)
    for i, r in enumerate(out["records"]):
        scene, _ = draw_scene(settings, 11, i)
        clip = decode_video(out["videos"][r["vid"]], VideoSettings(fps=8.0))
        k = np.rint(clip.timestamps * 8).astype(int)
        for f, frame in zip(k, clip.frames):
            shown = {o.colour for o in scene.objects if o.start <= f < o.end}
            seen = {c for c in COLOURS if _object_pixels(frame, c) > 150}
            assert seen == shown, (r["vid"], int(f), seen, shown)


def test_annotations_alone_parallel_and_partial_generation_agree(tmp_path):
    import hashlib

    from tempbench.synthetic import generate_scenes

    settings = _hard_settings()
    full = generate_scenes(tmp_path / "full", settings, 5, seed=3)
    alone = generate_scenes(tmp_path / "alone", settings, 5, seed=3, videos=False)
    assert alone["records"] == full["records"] and alone["videos"] == {}
    assert not list((tmp_path / "alone").glob("*.mp4"))
    assert (tmp_path / "alone" / "annotations.jsonl").read_text() == (tmp_path / "full" / "annotations.jsonl").read_text()
    part = generate_scenes(tmp_path / "part", settings, 5, seed=3, indices=[1, 3], workers=2)
    assert part["records"] == full["records"]
    made = sorted(p.name for p in (tmp_path / "part").glob("*.mp4"))
    assert made == sorted(f"{full['records'][i]['vid']}.mp4" for i in (1, 3))

    def sha(p):
        return hashlib.sha256(p.read_bytes()).hexdigest()

    for name in made:  # the same bytes from a worker process as from this one
        assert sha(tmp_path / "part" / name) == sha(tmp_path / "full" / name)
