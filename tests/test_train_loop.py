"""Trainer: configuration, learning on a fixed batch (SFT, TempSamp-R1, GRPO), end-to-end run, checkpoints, resume,
plots. Tiny float32 Qwen2.5-VL built locally; CPU."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tomllib

from tempbench.errors import TempbenchError
from tempbench.train.config import defaults, dump_toml, group_size, load_config

SMALL = {"video.total_pixels": 4 * 16 * 28 * 28, "video.min_pixels": 4 * 28 * 28, "video.max_pixels": 16 * 28 * 28,
         "video.max_frames": 8, "video.min_frames": 2, "log.progress": False}


# ------------------------------------------------------------------------------------------------ config


def test_defaults_are_the_paper_values():
    d = defaults()
    assert d["optim"]["lr"] == 1e-6 and d["optim"]["name"] == "adamw"
    assert d["schedule"]["epochs"] == 2 and d["schedule"]["cot"] == "hybrid"
    assert d["optim"]["batch_size"] == 1 and d["optim"]["grad_accum"] == 2
    assert d["rollout"]["max_new_tokens"] == 2048
    assert d["video"]["fps"] == 2.0 and d["video"]["total_pixels"] == 3584 * 28 * 28
    assert d["video"]["min_pixels"] == 16 * 28 * 28
    assert d["advantage"]["control"] == "shaping"
    assert (d["advantage"]["tau"], d["advantage"]["alpha1"], d["advantage"]["alpha2"]) == (0.8, 0.01, 1.0)
    assert d["loss"]["beta"] == 0.04


def test_group_size_auto():
    assert group_size(load_config(None, {"task": "charades"})) == 8
    assert group_size(load_config(None, {"task": "anet"})) == 4
    assert group_size(load_config(None, {"task": "anet", "rollout.group_size": 6})) == 6


def test_overrides_file_and_errors(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('method = "grpo"\n[optim]\nlr = 2e-6\n')
    cfg = load_config(f, {"optim.grad_accum": 4, "videos": "/v"})
    assert cfg["method"] == "grpo" and cfg["optim"]["lr"] == 2e-6 and cfg["optim"]["grad_accum"] == 4
    assert cfg["videos"] == "/v"
    cfg2 = load_config({"loss": {"beta": 0}})  # int accepted for a float key
    assert cfg2["loss"]["beta"] == 0.0 and isinstance(cfg2["loss"]["beta"], float)
    with pytest.raises(TempbenchError, match="unknown config key 'optim.lrr'"):
        load_config(None, {"optim.lrr": 1})
    with pytest.raises(TempbenchError, match="wrong type"):
        load_config(None, {"optim.grad_accum": "two"})
    with pytest.raises(TempbenchError, match="method"):
        load_config(None, {"method": "ppo"})
    bad = tmp_path / "bad.toml"
    bad.write_text("method = \n")
    with pytest.raises(TempbenchError, match="bad.toml"):
        load_config(bad)


def test_dump_toml_round_trip():
    cfg = load_config(None, {"model": 'a "quoted" path', "optim.lr": 3e-7})
    assert tomllib.loads(dump_toml(cfg)) == cfg


# ------------------------------------------------------------------------------------------------ learning


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    pytest.importorskip("torch")
    from tempbench.models.qwen.tiny import build_tiny_qwen2_5_vl

    return str(build_tiny_qwen2_5_vl(tmp_path_factory.mktemp("tiny") / "model", seed=0))


def _trainer(tiny_path, **over):
    import torch

    from tempbench.train.loop import Trainer

    cfg = load_config(None, {"model": tiny_path, "task": "synthetic", "rollout.max_new_tokens": 6,
                             "optim.grad_accum": 1, "model_opts.gradient_checkpointing": False, **SMALL, **over})
    torch.manual_seed(0)
    return Trainer(cfg)


def _fixed_item(tr, cot=False):
    from tempbench.video import Clip

    rng = np.random.default_rng(0)
    clip = Clip(frames=rng.integers(0, 256, (4, 56, 56, 3), dtype=np.uint8), timestamps=np.arange(4) / 2, fps=2.0,
                duration=2.0, source_fps=2.0, path="fixed")
    rec = {"qid": 0, "vid": "fixed", "query": "the door opens", "duration": 2.0, "windows": [[0.5, 1.5]]}
    return tr.make_item(rec, "grounding", cot, clip=clip)


def test_sft_loss_falls(tiny_path):
    tr = _trainer(tiny_path, method="sft", **{"optim.lr": 1e-3})
    item = _fixed_item(tr)
    losses = [tr.step([item], "grounding", False)["loss"] for _ in range(5)]
    assert losses[-1] < losses[0] - 0.5
    assert tr.global_step == 5


def test_tempsamp_raises_log_prob_of_gt_answer(tiny_path):
    tr = _trainer(tiny_path, method="tempsamp", **{"optim.lr": 1e-3, "rollout.group_size": 3})
    item = _fixed_item(tr, cot=True)
    recs = [tr.step([item], "grounding", True) for _ in range(5)]
    gt = [r["gt_logp"] for r in recs]
    assert gt[-1] > gt[0] + 0.3
    # the GT row earns IoU 1 + format 1 and the highest advantage; KL is tracked against the frozen reference
    assert all(r["reward_gt"] == pytest.approx(2.0) for r in recs)
    assert all(r["adv_gt"] > r["adv_mean_on"] for r in recs)
    assert recs[-1]["kl"] > 0 and tr.ref_model is not None


def test_batch_generate_step(tiny_path):
    """`rollout.batch_generate = true`: a micro-step of two queries sampled in one generate call trains as usual."""
    tr = _trainer(tiny_path, method="tempsamp", **{"optim.lr": 1e-3, "rollout.group_size": 3, "optim.batch_size": 2,
                                                   "rollout.batch_generate": True})
    item = _fixed_item(tr)
    other = tr.make_item({**item.record, "qid": 1, "query": "a person sits down on the chair"}, "grounding", False,
                         clip=_clip())
    recs = [tr.step([item, other], "grounding", False) for _ in range(3)]
    assert all(r["gen_tokens"] > 0 and r["reward_gt"] == pytest.approx(1.0) for r in recs)
    assert recs[-1]["gt_logp"] > recs[0]["gt_logp"] and 0.0 <= recs[0]["zero_groups"] <= 1.0
    assert tr.global_step == 3


def _clip():
    from tempbench.video import Clip

    rng = np.random.default_rng(1)
    return Clip(frames=rng.integers(0, 256, (6, 56, 84, 3), dtype=np.uint8), timestamps=np.arange(6) / 2, fps=2.0,
                duration=3.0, source_fps=2.0, path="fixed-2")


def test_grpo_raises_mean_reward(tiny_path):
    """Plain GRPO (no GT row) on a dense synthetic reward: share of completion tokens with id < 300."""
    import torch

    from tempbench.train.rewards import RewardParts
    tr = _trainer(tiny_path, method="grpo", **{"optim.lr": 3e-2, "rollout.group_size": 8, "loss.beta": 0.0})
    item = _fixed_item(tr)

    def share(ids):
        ids = [i for i in ids if i not in tr.eos]
        return float(np.mean([i < 300 for i in ids])) if ids else 0.0

    def rf(text, rec, kind, cot):
        return RewardParts(share(tr.tokenizer(text, add_special_tokens=False)["input_ids"]), None)

    tr.reward_fn = rf

    def expected_first_token_reward():
        """Exact expected reward of the first completion token: policy mass on ids < 300."""
        from tempbench.train.rollout import mm_token_type_ids

        m = tr.unwrapped_model()
        ids = torch.tensor([item.prompt_ids])
        with torch.no_grad():
            out = m(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values_videos=item.video.pixel_values_videos,
                    video_grid_thw=item.video.video_grid_thw, second_per_grid_ts=item.video.second_per_grid_ts,
                    mm_token_type_ids=mm_token_type_ids(ids, m.config))
        return float(torch.softmax(out.logits[0, -1].float(), -1)[:300].sum())

    before = expected_first_token_reward()
    recs = [tr.step([item], "grounding", False) for _ in range(10)]
    after = expected_first_token_reward()
    assert recs[0]["reward_gt"] is None and recs[0]["adv_gt"] is None  # no off-policy row in GRPO
    assert after > before + 0.05
    assert np.mean([r["reward_on_mean"] for r in recs[-3:]]) > np.mean([r["reward_on_mean"] for r in recs[:3]])


# ------------------------------------------------------------------------------------------------ end to end


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    pytest.importorskip("av")
    from tempbench.synthetic import generate_synthetic

    return generate_synthetic(tmp_path_factory.mktemp("syn"), n_videos=2, duration_range=(3, 4), size=(64, 48),
                              fps=4)


def _files(ck):
    return sorted(p.name for p in ck.iterdir())


def test_train_end_to_end_checkpoints_resume_and_plots(tiny_path, synth, tmp_path):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoTokenizer, Qwen2_5_VLForConditionalGeneration

    from tempbench.train.loop import train
    from tempbench.train.plot import plot_run

    base = {"method": "tempsamp", "model": tiny_path, "task": "synthetic", "annotations": synth["annotations"],
            "videos": str(tmp_path.parent / "does-not-matter"), "rollout.max_new_tokens": 5,
            "rollout.group_size": 3, "optim.lr": 1e-4, "optim.grad_accum": 1, "log.save_steps": 1, **SMALL}
    base["videos"] = str(next(iter(synth["videos"].values())).rsplit("/", 1)[0])
    out_a = tmp_path / "a"
    res = train(None, {**base, "out": str(out_a)})
    assert res["global_step"] == 4 and res["micro_steps"] == 4  # 2 queries x 2 epochs, grad_accum 1
    log = [json.loads(line) for line in (out_a / "train_log.jsonl").read_text().splitlines()]
    assert [r["phase"] for r in log] == ["plain", "plain", "cot", "cot"]  # hybrid CoT schedule
    assert all(r["format_rate"] is None for r in log[:2]) and all(r["format_rate"] is not None for r in log[2:])
    for key in ("loss", "kl", "lr", "reward_on_mean", "reward_on_std", "reward_gt", "adv_skew", "top1_iou",
                "zero_groups", "best_on_mean", "tokens_per_s"):
        assert key in log[0]
    assert all(0.0 <= r["zero_groups"] <= 1.0 and 0.0 <= r["best_on_mean"] <= 1.0 for r in log)
    ck2, ck4 = out_a / "checkpoint-2", out_a / "checkpoint-4"
    for ck in (ck2, ck4):
        assert {"config.json", "model.safetensors", "tokenizer.json", "train_config.toml",
                "trainer_state.json", "training_state"} <= set(_files(ck))
    m = Qwen2_5_VLForConditionalGeneration.from_pretrained(ck4)
    AutoTokenizer.from_pretrained(ck4)
    assert tomllib.loads((ck4 / "train_config.toml").read_text())["optim"]["lr"] == 1e-4
    start = load_file(f"{tiny_path}/model.safetensors")
    final = load_file(ck4 / "model.safetensors")
    assert any(not torch.equal(start[k], final[k]) for k in start)  # the weights moved
    del m

    # resume from checkpoint-2 in a fresh folder: same final weights as the uninterrupted run
    import shutil

    out_b = tmp_path / "b"
    out_b.mkdir()
    shutil.copytree(ck2, out_b / "checkpoint-2")
    res_b = train(None, {**base, "out": str(out_b), "resume": "latest"})
    assert res_b["global_step"] == 4
    log_b = [json.loads(line) for line in (out_b / "train_log.jsonl").read_text().splitlines()]
    assert [r["micro_step"] for r in log_b] == [3, 4] and [r["phase"] for r in log_b] == ["cot", "cot"]
    resumed = load_file(out_b / "checkpoint-4" / "model.safetensors")
    for k in final:
        torch.testing.assert_close(resumed[k], final[k])

    pngs = plot_run(out_a)
    names = {p.name for p in pngs}
    assert {"loss.png", "reward.png", "kl.png"} <= names
    assert all(p.stat().st_size > 1000 for p in pngs)


def test_train_errors(tiny_path, tmp_path):
    from tempbench.train.loop import train

    with pytest.raises(TempbenchError, match="no model"):
        train(None, {"out": str(tmp_path)})
    with pytest.raises(TempbenchError, match="annotation file not found"):
        train(None, {"model": tiny_path, "annotations": str(tmp_path / "nope.jsonl"), "out": str(tmp_path), **SMALL})
