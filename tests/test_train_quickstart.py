"""`tempbench train` as the docs write it (a zoo alias as --model, a generated task's own train videos, no
--videos), the data pipeline options (`data.workers`: prefetch in processes; `data.cache`: prepared inputs kept
across epochs) and the `schedule.max_seconds` guard. Tiny float32 model, CPU."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tempbench.cli import main
from tempbench.errors import TempbenchError
from tempbench.train.config import load_config

pytest.importorskip("torch")
pytest.importorskip("av")

SMALL = {"video.total_pixels": 4 * 16 * 28 * 28, "video.min_pixels": 4 * 28 * 28, "video.max_pixels": 16 * 28 * 28,
         "video.max_frames": 8, "video.min_frames": 2, "log.progress": False}


@pytest.fixture
def home(tb_home, tiny_model):
    (tb_home / "models").mkdir(parents=True)
    (tb_home / "models" / tiny_model.name).symlink_to(tiny_model, target_is_directory=True)
    return tb_home


def test_quick_start_as_written(home, tmp_path):
    """`tempbench train --method sft --model tiny-qwen2.5-vl --task synthetic --out DIR`, then
    `tempbench run --model DIR/checkpoint-N --task synthetic` (with --limit to stay small)."""
    out = tmp_path / "sft"
    res = CliRunner().invoke(main, ["train", "--method", "sft", "--model", "tiny-qwen2.5-vl", "--task", "synthetic",
                                    "--out", str(out), "--limit", "4"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output[res.output.index("{"):])
    assert summary["checkpoints"] == [str(out / "checkpoint-2"), str(out / "checkpoint-4")]  # batch 1, accum 2
    assert summary["stopped_early"] is None
    train = home / "synthetic" / "train"  # the generated train split: its first 4 videos only
    assert len(list(train.glob("*.mp4"))) == 4
    res = CliRunner().invoke(main, ["run", "--model", str(out / "checkpoint-4"), "--task", "synthetic", "--limit",
                                    "2", "--gen", "max_new_tokens=4", "--out", str(tmp_path / "run"),
                                    "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "2 predictions" in res.output


def test_prefetch_and_cache_train_the_same_model(home, tmp_path, tiny_model):
    """Videos prepared in a worker process and kept across epochs give bit-identical weights."""
    import torch
    from safetensors.torch import load_file

    from tempbench.train.loop import train

    base = {"method": "sft", "model": "tiny-qwen2.5-vl", "task": "synthetic", "limit": 4, "optim.lr": 1e-3,
            "optim.grad_accum": 1, "optim.batch_size": 2, "model_opts.gradient_checkpointing": False, **SMALL}
    plain = train(None, {**base, "out": str(tmp_path / "plain")})
    fast = train(None, {**base, "out": str(tmp_path / "fast"), "data.workers": 1, "data.cache": True,
                        "data.cache_on_device": True})
    assert plain["global_step"] == fast["global_step"] == 4
    a = load_file(tmp_path / "plain" / "checkpoint-4" / "model.safetensors")
    b = load_file(tmp_path / "fast" / "checkpoint-4" / "model.safetensors")
    start = load_file(tiny_model / "model.safetensors")
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], start[k]) for k in a)  # and it did train
    la = [json.loads(x)["loss"] for x in (tmp_path / "plain" / "train_log.jsonl").read_text().splitlines()]
    lb = [json.loads(x)["loss"] for x in (tmp_path / "fast" / "train_log.jsonl").read_text().splitlines()]
    assert la == lb


def test_max_seconds_stops_with_a_checkpoint(home, tmp_path):
    from tempbench.train.loop import train

    res = train(None, {"method": "sft", "model": "tiny-qwen2.5-vl", "task": "synthetic", "limit": 4,
                       "optim.grad_accum": 1, "schedule.max_seconds": 1e-6, "out": str(tmp_path / "o"), **SMALL})
    assert res["global_step"] == 1 and res["checkpoints"] == [str(tmp_path / "o" / "checkpoint-1")]
    assert "schedule.max_seconds" in res["stopped_early"]
    state = json.loads((tmp_path / "o" / "checkpoint-1" / "trainer_state.json").read_text())
    assert (state["epoch"], state["position"]) == (0, 1)  # resumable where it stopped


def test_data_options_are_checked():
    assert load_config(None, {"data.workers": 4})["data"] == {"workers": 4, "cache": False, "cache_on_device": False,
                                                              "frames": "decode"}
    with pytest.raises(TempbenchError, match="data.workers"):
        load_config(None, {"data.workers": -1})
    with pytest.raises(TempbenchError, match="schedule.max_seconds"):
        load_config(None, {"schedule.max_seconds": -1.0})


def test_unknown_model_alias_is_one_line(home, tmp_path):
    res = CliRunner().invoke(main, ["train", "--method", "sft", "--model", "no-such-model", "--task", "synthetic",
                                    "--out", str(tmp_path / "x"), "--limit", "2"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert res.output.startswith("error: model 'no-such-model' is neither a local folder nor a Hugging Face hub id")
