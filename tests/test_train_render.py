"""Training on rendered frames (`data.frames = "render"`): generated tasks' train videos drawn without any mp4 file,
in-process (data.workers = 0) or in prefetch worker processes (data.workers = 1) with the same frames and losses;
records of other videos refused up front with one line; the config key checked. Tiny float32 model, CPU."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from tempbench.errors import TempbenchError
from tempbench.train.config import load_config

pytest.importorskip("torch")
pytest.importorskip("transformers")

SMALL = {"video.total_pixels": 4 * 16 * 28 * 28, "video.min_pixels": 4 * 28 * 28, "video.max_pixels": 16 * 28 * 28,
         "video.max_frames": 8, "video.min_frames": 2, "log.progress": False}
N_RECORDS = 3


@pytest.fixture(scope="module")
def hard_train(tmp_path_factory):
    """The first N_RECORDS `synthetic-hard` train records, annotations only (no mp4 file anywhere)."""
    from tempbench.tasks import synthetic

    folder = tmp_path_factory.mktemp("hard-train")
    info = synthetic.generate(folder, "train", "synthetic-hard", n_videos=N_RECORDS, videos=False)
    assert [p.name for p in folder.iterdir()] == ["annotations.jsonl"]
    assert [r["vid"] for r in info["records"]] == [f"synthhard_11_{i:04d}" for i in range(N_RECORDS)]
    return info


@pytest.fixture(scope="module")
def no_videos(tmp_path_factory):
    return tmp_path_factory.mktemp("no-videos")  # an empty folder: decoding would find nothing


def _base(tiny_model, annotations, videos, **over):
    return {"method": "sft", "model": str(tiny_model), "task": "synthetic-hard", "annotations": str(annotations),
            "videos": str(videos), "data.frames": "render", "optim.lr": 1e-3, "optim.grad_accum": 1,
            "optim.batch_size": 1, "schedule.epochs": 1, "model_opts.gradient_checkpointing": False, "seed": 3,
            **SMALL, **over}


def _log(out):
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


def test_render_trains_without_files_and_workers_change_nothing(tiny_model, hard_train, no_videos, tmp_path):
    from tempbench.train.loop import train

    logs = {}
    for workers in (0, 1):
        out = tmp_path / f"w{workers}"
        res = train(None, _base(tiny_model, hard_train["annotations"], no_videos, **{"data.workers": workers,
                                                                                     "out": str(out)}))
        assert res["global_step"] == res["micro_steps"] == N_RECORDS and res["stopped_early"] is None
        logs[workers] = _log(out)
        assert len(logs[workers]) == N_RECORDS
        assert sorted(q for r in logs[workers] for q in r["qids"]) == list(range(N_RECORDS))
        assert all(math.isfinite(r["loss"]) and r["loss"] > 0 for r in logs[workers])
        assert (out / f"checkpoint-{N_RECORDS}" / "model.safetensors").is_file()
    assert [r["loss"] for r in logs[0]] == [r["loss"] for r in logs[1]]  # the same frames either way
    assert [r["qids"] for r in logs[0]] == [r["qids"] for r in logs[1]]
    assert logs[0][-1]["loss"] < logs[0][0]["loss"]  # lr 1e-3 on the GT answers: it learns
    assert list(no_videos.iterdir()) == []  # nothing was written where the videos would be
    # and decoding the same records finds no file: the frames above were rendered
    with pytest.raises(TempbenchError, match="not found"):
        train(None, _base(tiny_model, hard_train["annotations"], no_videos,
                          **{"data.frames": "decode", "out": str(tmp_path / "decode")}))


def test_render_item_is_the_rendered_clip(tiny_model, hard_train, no_videos):
    """A render-mode query item holds the video inputs of `rendered_clip`'s frames (preprocessed on the
    accelerator, here the CPU): the same as the decode path fed that clip."""
    import torch

    from tempbench.tasks.synthetic import rendered_clip
    from tempbench.train.loop import Trainer

    rec = hard_train["records"][1]
    render = Trainer(load_config(None, _base(tiny_model, hard_train["annotations"], no_videos)))
    decode = Trainer(load_config(None, _base(tiny_model, hard_train["annotations"], no_videos,
                                             **{"data.frames": "decode"})))
    got = render.make_item(rec, "grounding", False)
    clip = rendered_clip(rec["vid"], decode.video_settings)
    want = decode.make_item(rec, "grounding", False, clip=clip)
    assert got.prompt_ids == want.prompt_ids and got.record is rec
    for key in ("pixel_values_videos", "video_grid_thw", "second_per_grid_ts"):
        a, b = getattr(got.video, key), getattr(want.video, key)
        assert torch.equal(torch.as_tensor(a), torch.as_tensor(b)), key
    # a clip handed in (from a prefetch worker) is preprocessed the same way
    again = render.make_item(rec, "grounding", False, clip=rendered_clip(rec["vid"], render.video_settings))
    assert torch.equal(again.video.pixel_values_videos, got.video.pixel_values_videos)
    other = render.make_item(hard_train["records"][0], "grounding", False)
    assert other.video.pixel_values_videos.shape != got.video.pixel_values_videos.shape or \
        not torch.equal(other.video.pixel_values_videos, got.video.pixel_values_videos)


def _with_foreign_record(path, records):
    bad = {"qid": len(records), "vid": "not_generated", "query": "the red circle appears", "duration": 10.0,
           "windows": [[1.0, 2.0]]}
    path.write_text("".join(json.dumps(r) + "\n" for r in [*records, bad]))
    return path, len(records) + 1


@pytest.mark.parametrize("workers", [0, 1])
def test_foreign_vid_is_refused_up_front(tiny_model, hard_train, no_videos, tmp_path, workers):
    from tempbench.train.loop import train

    ann, number = _with_foreign_record(tmp_path / "mixed.jsonl", hard_train["records"])
    out = tmp_path / "out"
    with pytest.raises(TempbenchError) as e:
        train(None, _base(tiny_model, ann, no_videos, **{"out": str(out), "data.workers": workers}))
    msg = e.value.message
    assert str(ann) in msg and f"record {number}" in msg and "'vid'" in msg and "'not_generated'" in msg
    assert "\n" not in str(e.value) and e.value.hint
    assert not (out / "train_log.jsonl").exists()  # refused before the first step
    assert not list(out.glob("checkpoint-*"))


def test_foreign_vid_cli_is_one_line(tiny_model, hard_train, tmp_path, tb_home):
    from tempbench.cli import main

    ann, number = _with_foreign_record(tmp_path / "mixed.jsonl", hard_train["records"])
    cfg = tmp_path / "render.toml"
    cfg.write_text(f'annotations = "{ann}"\n[data]\nframes = "render"\n[log]\nprogress = false\n'
                   '[video]\nmax_frames = 4\nmin_frames = 2\nmax_pixels = 12544\ntotal_pixels = 50176\n')
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["train", "--method", "sft", "--model", str(tiny_model), "--task",
                                    "synthetic-hard", "--out", str(out), "--config", str(cfg)])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and not isinstance(res.exception, (AssertionError, TypeError))
    lines = [line for line in res.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, res.output
    tail = lines[lines.index(errors[0]) + 1:]  # (before it: the model's loading progress bar)
    assert all(line.startswith("hint: ") for line in tail), res.output
    assert str(ann) in errors[0] and f"record {number}" in errors[0] and "'vid'" in errors[0]
    assert not (out / "train_log.jsonl").exists()


def test_data_frames_is_checked(tmp_path):
    assert load_config(None)["data"]["frames"] == "decode"
    assert load_config(None, {"data.frames": "render"})["data"]["frames"] == "render"
    with pytest.raises(TempbenchError, match="data.frames"):
        load_config(None, {"data.frames": "files"})
    f = tmp_path / "c.toml"
    f.write_text('[data]\nframes = "Render"\n')
    with pytest.raises(TempbenchError, match="data.frames"):
        load_config(f)
    with pytest.raises(TempbenchError, match="data.frames"):
        load_config(None, {"data.frames": 1})


def test_records_from_other_videos_pass_in_decode_mode(tiny_model, no_videos, tmp_path):
    """The check belongs to render mode: with data.frames = "decode" a foreign id fails only where its file is
    looked for (here: not found), not with the render-mode refusal."""
    from tempbench.train.loop import train

    ann = tmp_path / "ann.jsonl"
    ann.write_text(json.dumps({"qid": 0, "vid": "not_generated", "query": "q", "duration": 4.0,
                               "windows": [[1.0, 2.0]]}) + "\n")
    with pytest.raises(TempbenchError) as e:
        train(None, _base(tiny_model, ann, no_videos, **{"data.frames": "decode", "out": str(tmp_path / "o")}))
    assert "not found" in e.value.message and "not a generated video" not in e.value.message


def _with_think(path, records, missing_at=None):
    from tempbench.synthetic import draw_scene
    from tempbench.tasks import synthetic

    seed = synthetic.TASKS["synthetic-hard"]["splits"]["train"]["seed"]
    rows = []
    for k, r in enumerate(records):
        scene = draw_scene(synthetic.settings("synthetic-hard"), seed, k)[0]
        rows.append(r if k == missing_at else {**r, "think": f" {scene.description(named=scene.target)} "})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, rows


def test_gt_think_field_puts_each_records_description_in_its_target(tiny_model, hard_train, no_videos, tmp_path):
    """rollout.gt_think_field = "think": the CoT phase's GT row is <think>{record's think}</think><answer>...,
    and such records train."""
    from tempbench.train.loop import Trainer, train

    ann, rows = _with_think(tmp_path / "think.jsonl", hard_train["records"])
    over = {"schedule.cot": "cot", "rollout.gt_think_field": "think", "out": str(tmp_path / "out"),
            "data.workers": 0}
    cfg = load_config(None, _base(tiny_model, ann, no_videos, **over))
    trainer = Trainer.__new__(Trainer)
    trainer.cfg = cfg
    for r in rows:
        s, e = r["windows"][0]
        assert trainer.gt_text(r, "grounding", True) == f"<think>{r['think']}</think><answer> {s:.2f} to {e:.2f} </answer>"
    res = train(None, _base(tiny_model, ann, no_videos, **over))
    assert res["global_step"] == N_RECORDS
    assert load_config(None, {})["rollout"]["gt_think_field"] == ""  # off unless asked for


def test_gt_think_field_missing_in_a_record_is_refused_up_front(tiny_model, hard_train, no_videos, tmp_path):
    from tempbench.train.loop import train

    ann, _ = _with_think(tmp_path / "think.jsonl", hard_train["records"], missing_at=1)
    out = tmp_path / "out"
    with pytest.raises(TempbenchError) as e:
        train(None, _base(tiny_model, ann, no_videos, **{"schedule.cot": "cot", "rollout.gt_think_field": "think",
                                                          "out": str(out)}))
    assert str(ann) in e.value.message and "record 2" in e.value.message and "'think'" in e.value.message
    assert "missing" in e.value.message and "\n" not in str(e.value) and e.value.hint
    assert not (out / "train_log.jsonl").exists()
