"""Generated videos rendered without their mp4 files (`data.frames = "render"`): `render_scene` with `indices`,
`yuv420_round_trip`, `scene_clip` against `decode_video` on the files `write_scene_video` writes, `parse_vid`,
`tasks.synthetic.rendered_clip`, and the runner's `RenderedLoader`."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from tempbench.errors import TempbenchError
from tempbench.synthetic import (
    COLOURS,
    draw_scene,
    parse_vid,
    render_scene,
    scene_clip,
    write_scene_video,
    yuv420_round_trip,
)
from tempbench.tasks import synthetic as tasks_synthetic
from tempbench.video import VideoSettings, decode_video

# (task card, its train seed, video indices): a few videos of each generator
VIDEOS = [("synthetic-hard", 11, i) for i in (0, 3, 7)] + [("synthetic", 1, i) for i in (0, 5)]
SETTINGS = {"default": VideoSettings(), "fps1": VideoSettings(fps=1.0), "max6": VideoSettings(max_frames=6),
            "transformers": VideoSettings(sampling="transformers")}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The real mp4 files of VIDEOS (as `generate_scenes` writes them): {(name, seed, i): path}."""
    pytest.importorskip("av")
    folder = tmp_path_factory.mktemp("written")
    out = {}
    for name, seed, i in VIDEOS:
        settings = tasks_synthetic.settings(name)
        write_scene_video((settings, seed, i, str(folder), None))
        out[(name, seed, i)] = folder / f"{draw_scene(settings, seed, i)[0].vid}.mp4"
    assert all(p.is_file() for p in out.values())
    return out


def _raw(name, seed, i, indices=None):
    scene, rng = draw_scene(tasks_synthetic.settings(name), seed, i)
    return render_scene(rng, scene.n_frames, scene.size, scene.objects, indices)


# ------------------------------------------------------------------------------------------------ render_scene


@pytest.mark.parametrize("name,seed,i", [VIDEOS[1], VIDEOS[3]])
def test_render_scene_indices_are_rows_of_the_full_render(name, seed, i):
    full = _raw(name, seed, i)
    n = full.shape[0]
    assert n > 40
    for indices in ([0], [n - 1], list(range(0, n, 5)), [n - 1, 3, 17, 0, 9], [4, 4, 4, 1, 1],
                    np.array([30, 2, n - 2, 11], dtype=np.int64), range(n)):
        part = _raw(name, seed, i, indices)
        idx = [int(k) for k in indices]
        assert part.shape == (len(idx),) + full.shape[1:] and part.dtype == np.uint8
        assert part.tobytes() == full[idx].tobytes(), indices
    assert _raw(name, seed, i, []).shape == (0,) + full.shape[1:]


def test_render_scene_indices_do_not_change_the_random_draws():
    """Rendering some frames draws what rendering all of them draws (the generator ends in the same state)."""
    settings = tasks_synthetic.settings("synthetic-hard")
    ends = []
    for indices in (None, [5, 2]):
        scene, rng = draw_scene(settings, 11, 3)
        render_scene(rng, scene.n_frames, scene.size, scene.objects, indices)
        ends.append(rng.integers(0, 2**62, size=4).tolist())
    assert ends[0] == ends[1]


# ------------------------------------------------------------------------------------------------ yuv420


def test_yuv420_round_trip_keeps_flat_colours():
    greys = (np.arange(256).reshape(256, 1, 1, 1) * np.ones((1, 2, 2, 3))).astype(np.uint8)
    out = yuv420_round_trip(greys)
    assert out.shape == greys.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - greys).max() <= 1
    palette = np.array(list(COLOURS.values()), dtype=np.uint8).reshape(-1, 1, 1, 3) * np.ones((1, 4, 6, 3), np.uint8)
    out = yuv420_round_trip(palette.astype(np.uint8))
    assert out.shape == palette.shape
    assert np.abs(out.astype(int) - palette).max() <= 2


def test_yuv420_round_trip_averages_chroma_over_2x2_blocks():
    """Two colours in one 2x2 block share a chroma sample: they come back far from themselves, while the same
    colours in separate blocks come back close."""
    red, blue = COLOURS["red"], COLOURS["blue"]
    mixed = np.zeros((1, 2, 4, 3), np.uint8)
    mixed[0, :, 0], mixed[0, :, 1] = red, blue  # one block: red | blue columns
    mixed[0, :, 2:] = red  # the next block: all red
    out = yuv420_round_trip(mixed).astype(int)
    assert np.abs(out[0, :, 2:] - np.array(red)).max() <= 2
    assert np.abs(out[0, 0, 0] - np.array(red)).max() > 40  # chroma shared with blue
    assert np.array_equal(out[0, 0], out[0, 1])  # the block's two rows are the same pixels in, the same out


# ------------------------------------------------------------------------------------------------ scene_clip


@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize("video", VIDEOS, ids=[f"{n}-{s}-{i}" for n, s, i in VIDEOS])
def test_scene_clip_fields_equal_decode_video(written, video, setting):
    name, seed, i = video
    vs = SETTINGS[setting]
    dec = decode_video(written[video], vs)
    clip = scene_clip(tasks_synthetic.settings(name), seed, i, vs)
    assert np.array_equal(clip.indices, dec.indices) and clip.indices.dtype == dec.indices.dtype
    assert np.array_equal(clip.timestamps, dec.timestamps) and clip.timestamps.dtype == dec.timestamps.dtype
    assert clip.fps == dec.fps
    assert clip.duration == dec.duration
    assert clip.source_fps == dec.source_fps
    assert clip.n_source_frames == dec.n_source_frames
    assert clip.resized_from == dec.resized_from is None
    assert clip.num_frames == dec.num_frames == len(dec.indices)
    assert clip.frames.shape == dec.frames.shape and clip.frames.dtype == np.uint8
    assert clip.path == f"rendered:{written[video].stem}"
    if setting == "max6":
        assert clip.num_frames == 6
    if setting == "fps1":
        assert clip.num_frames < scene_clip(tasks_synthetic.settings(name), seed, i, VideoSettings()).num_frames


@pytest.mark.parametrize("setting", ["default", "fps1"])
@pytest.mark.parametrize("video", VIDEOS, ids=[f"{n}-{s}-{i}" for n, s, i in VIDEOS])
def test_scene_clip_frames_are_close_to_the_decoded_ones(written, video, setting):
    name, seed, i = video
    vs = SETTINGS[setting]
    dec = decode_video(written[video], vs).frames.astype(np.int16)
    clip = scene_clip(tasks_synthetic.settings(name), seed, i, vs)
    raw = _raw(name, seed, i, clip.indices)
    assert np.array_equal(clip.frames, yuv420_round_trip(raw))  # the sampled frames, rendered, then 4:2:0
    diff = np.abs(clip.frames.astype(np.int16) - dec)
    diff_raw = np.abs(raw.astype(np.int16) - dec)
    assert diff.mean() < 3.0
    assert np.percentile(diff, 99) <= 8
    # the round trip removes most of the colour error at objects' edges (the raw render's worst pixels)
    assert 1.5 * diff.max() < diff_raw.max()
    assert np.percentile(diff, 99.9) < np.percentile(diff_raw, 99.9)
    # and each frame is its own decoded frame, not a neighbour (the background scrolls every frame)
    if clip.num_frames > 1:
        shifted = np.abs(clip.frames[1:].astype(np.int16) - dec[:-1]).mean()
        assert shifted > 2 * diff.mean()


# ------------------------------------------------------------------------------------------------ ids


@pytest.mark.parametrize("vid,expected", [
    ("synth_1_0005", ("single", 1, 5)),
    ("synth_0_0000", ("single", 0, 0)),
    ("synthhard_11_0003", ("multi", 11, 3)),
    ("synthhard_12_0255", ("multi", 12, 255)),
    ("synth_1234_12345", ("single", 1234, 12345)),
])
def test_parse_vid_good(vid, expected):
    assert parse_vid(vid) == expected


@pytest.mark.parametrize("vid", ["video_0001", "synth_x_0001", "synth_1", "synth_1_0001_2", "synth__0001",
                                 "synthhard_11_", "Synth_1_0001", "synth_1_0001.mp4", "synth_-1_0001",
                                 "v_synth_1_0001", "synthetic_1_0001", "", "not_generated"])
def test_parse_vid_bad(vid):
    assert parse_vid(vid) is None


def test_generated_records_parse_to_their_own_video():
    for name in tasks_synthetic.NAMES:
        seed = tasks_synthetic.TASKS[name]["splits"]["train"]["seed"]
        settings = tasks_synthetic.settings(name)
        for i in (0, 1, 17):
            vid = draw_scene(settings, seed, i)[0].vid
            assert parse_vid(vid) == (settings.kind, seed, i)


@pytest.mark.parametrize("vid", ["video_0001", "synth_x_0001", "not_generated", "synthhard_11"])
def test_rendered_clip_refuses_other_videos(vid):
    with pytest.raises(TempbenchError, match="not a generated video") as e:
        tasks_synthetic.rendered_clip(vid, VideoSettings())
    assert repr(vid) in e.value.message and "\n" not in str(e.value)
    assert e.value.hint and "decode" in e.value.hint


@pytest.mark.parametrize("name,seed,i", [("synthetic-hard", 11, 3), ("synthetic", 1, 5), ("synthetic", 7, 2),
                                          ("synthetic-hard", 12, 40)])
def test_rendered_clip_is_the_scene_clip_of_its_card(name, seed, i):
    """Any seed of either card: the generator follows the id's prefix."""
    settings = tasks_synthetic.settings(name)
    vid = draw_scene(settings, seed, i)[0].vid
    vs = VideoSettings(max_frames=8)
    got = tasks_synthetic.rendered_clip(vid, vs)
    want = scene_clip(settings, seed, i, vs)
    assert got.path == want.path == f"rendered:{vid}"
    assert np.array_equal(got.frames, want.frames) and np.array_equal(got.indices, want.indices)
    assert (got.fps, got.duration, got.n_source_frames) == (want.fps, want.duration, want.n_source_frames)


# ------------------------------------------------------------------------------------------------ runner transport


def test_rendered_loader_pickles_and_renders():
    from tempbench.runner import RenderedLoader

    vs = VideoSettings(fps=1.0, max_frames=6)
    loader = pickle.loads(pickle.dumps(RenderedLoader(vs)))
    assert loader.settings == vs
    rec = {"qid": 3, "vid": "synthhard_11_0003", "query": "q", "duration": 1.0}
    clip = loader(rec)
    want = scene_clip(tasks_synthetic.settings("synthetic-hard"), 11, 3, vs)
    assert clip.frames.dtype == np.uint8 and np.array_equal(clip.frames, want.frames)
    assert np.array_equal(clip.indices, want.indices) and np.array_equal(clip.timestamps, want.timestamps)
    with pytest.raises(TempbenchError, match="not a generated video"):
        loader({"qid": 0, "vid": "video_0001"})


def test_rendered_loader_in_a_worker_process():
    """Through the Prefetcher's spawned processes, as the trainer runs it: the same frames, in order."""
    from tempbench.runner import RenderedLoader
    from tempbench.video import Prefetcher

    vs = VideoSettings(max_frames=4)
    recs = [{"vid": "synthhard_11_0000"}, {"vid": "synth_1_0005"}, {"vid": "video_0001"}]
    with Prefetcher(recs, fn=RenderedLoader(vs), workers=1, kind="process") as pool:
        got = list(pool)
    assert [g.index for g in got] == [0, 1, 2]
    assert np.array_equal(got[0].value.frames, scene_clip(tasks_synthetic.settings("synthetic-hard"), 11, 0, vs).frames)
    assert np.array_equal(got[1].value.frames, scene_clip(tasks_synthetic.settings("synthetic"), 1, 5, vs).frames)
    assert got[2].value is None and "not a generated video" in got[2].error


@pytest.mark.parametrize("name, seed", [("synthetic-hard", 11), ("synthetic", 1)])
def test_torch_render_equals_numpy_render(name, seed):
    """`scene_clip(..., device=...)` (torch, all frames at once: the trainer's in-process path) gives numpy's bytes
    on a CPU, for every video of a range (objects entering and leaving, squares and circles, both card kinds)."""
    torch = pytest.importorskip("torch")
    settings = tasks_synthetic.settings(name)
    for vs in (VideoSettings(), VideoSettings(fps=1.0)):
        for i in range(12):
            a = scene_clip(settings, seed, i, vs)
            b = scene_clip(settings, seed, i, vs, device="cpu")
            assert isinstance(b.frames, torch.Tensor) and b.frames.dtype == torch.uint8
            assert np.array_equal(a.frames, b.frames.numpy()), (name, i)
            assert np.array_equal(a.indices, b.indices) and a.fps == b.fps and a.duration == b.duration


def test_yuv_round_trip_same_in_torch():
    torch = pytest.importorskip("torch")
    frames = np.random.default_rng(3).integers(0, 256, size=(6, 32, 48, 3), dtype=np.uint8)
    got = yuv420_round_trip(torch.from_numpy(frames))
    assert isinstance(got, torch.Tensor) and got.dtype == torch.uint8 and tuple(got.shape) == frames.shape
    assert np.array_equal(got.numpy(), yuv420_round_trip(frames))
