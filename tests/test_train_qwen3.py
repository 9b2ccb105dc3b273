"""The trainer on tiny float32 Qwen3-VL and Qwen3.5 models built locally (CPU): the policy forward equals the stock
forward, the vision features (DeepStack included) reach every row of a query, rollouts, and the learning checks
(SFT loss falls, TempSamp-R1 raises the log-prob of the ground-truth answer)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from clip_helpers import make_clip  # noqa: E402

from tempbench.models.base import ModelInput  # noqa: E402
from tempbench.train.config import load_config  # noqa: E402
from tempbench.train.loss import VideoPolicy, policy_logprobs  # noqa: E402
from tempbench.train.rollout import (  # noqa: E402
    QueryItem,
    SamplingSettings,
    VideoInputs,
    collate_rows,
    completion_ids,
    eos_ids,
    mm_token_type_ids,
    sample_completions,
    sample_completions_batch,
)
from tempbench.video import VideoSettings  # noqa: E402

FAMILIES = ("qwen3_vl", "qwen3_5")
SMALL_VIDEO = VideoSettings(fps=2.0, min_frames=2, max_frames=8, min_pixels=32 * 32, max_pixels=64 * 64,
                            total_pixels=4 * 64 * 64 * 4)
SMALL_CFG = {"video.total_pixels": 4 * 64 * 64 * 4, "video.min_pixels": 32 * 32, "video.max_pixels": 64 * 64,
             "video.max_frames": 8, "video.min_frames": 2, "log.progress": False}


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    from tempbench.models.qwen.tiny3 import build_tiny_qwen3

    root = tmp_path_factory.mktemp("tiny3-train")
    return {fam: str(build_tiny_qwen3(root / fam, fam, seed=0)) for fam in FAMILIES}


@pytest.fixture(scope="module")
def adapters(paths):
    from tempbench.models.qwen.adapter import HFQwenVL

    return {fam: HFQwenVL(p, device="cpu", dtype="float32", video_settings=SMALL_VIDEO) for fam, p in paths.items()}


def make_item(adapter, clip, query, qid=0):
    inputs = adapter.build_inputs([ModelInput(clip, f'Find "{query}". Answer in <answer> </answer>.', qid)])
    rec = {"qid": qid, "vid": f"v{qid}", "query": query, "duration": clip.duration, "windows": [[1.0, 2.5]]}
    return QueryItem(inputs["input_ids"][0].tolist(), VideoInputs.from_dict(inputs), rec), inputs


def _two_queries(a):
    tok = a.tokenizer
    qa, inp_a = make_item(a, make_clip(4, 64, 64, src_fps=30.0, total=120, seed=1), "the door opens", 0)
    qb, inp_b = make_item(a, make_clip(6, 64, 96, src_fps=25.0, total=300, seed=2), "a person sits down", 1)
    comps = [completion_ids(tok, "<answer> 1.00 to 2.00 </answer>", tok.eos_token_id),
             completion_ids(tok, "<answer> 1.00 to 2.00 </answer>", tok.eos_token_id),
             tok(" the door", add_special_tokens=False)["input_ids"],
             completion_ids(tok, "<answer> 0.50 to 3.25 </answer>", tok.eos_token_id)]
    rows = [(qa, inp_a), (qa, inp_a), (qa, inp_a), (qb, inp_b)]
    batch = collate_rows([r[0].prompt_ids for r in rows], comps, a.pad_token_id, [0, 0, 0, 1],
                         videos=[qa.video, qb.video])
    return batch, rows, comps


@pytest.mark.parametrize("family", FAMILIES)
def test_policy_logprobs_equal_the_stock_forward(adapters, family):
    """Video encoded once per query, features scattered into every row, our position ids: equals the stock
    forward (pixel values + mm_token_type_ids, per row, unpadded) to 2e-5."""
    a = adapters[family]
    model = a.model
    assert a.video_preprocessor is not None and VideoInputs.from_dict(
        a.build_inputs([ModelInput(make_clip(4, 64, 64, src_fps=30.0, total=120), "x", 0)])).second_per_grid_ts is None
    batch, rows, comps = _two_queries(a)
    with torch.no_grad():
        lp = policy_logprobs(VideoPolicy(model), batch)
        for r, ((item, inp), comp) in enumerate(zip(rows, comps)):
            ids = torch.tensor([item.prompt_ids + comp])
            out = model(input_ids=ids, attention_mask=torch.ones_like(ids),
                        pixel_values_videos=inp["pixel_values_videos"], video_grid_thw=inp["video_grid_thw"],
                        mm_token_type_ids=mm_token_type_ids(ids, model.config))
            p = len(item.prompt_ids)
            ref = torch.log_softmax(out.logits[0, p - 1:-1].float(), -1).gather(-1, ids[0, p:, None])[:, 0]
            torch.testing.assert_close(lp[r, :len(comp)], ref, atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(lp[0], lp[1], atol=0, rtol=0)  # two rows of one query, same completion


@pytest.mark.parametrize("family", FAMILIES)
def test_vision_features_and_deepstack_reach_every_row(adapters, family):
    """Changing the merger (the features placed at the video tokens) or, for Qwen3-VL, a DeepStack merger (the
    features added inside the first decoder layers) changes the log-probs of every row of the query."""
    a = adapters[family]
    visual = a.model.model.visual
    batch, _, _ = _two_queries(a)
    targets = [visual.merger]
    if family == "qwen3_vl":
        assert len(visual.deepstack_merger_list) == 2
        targets += list(visual.deepstack_merger_list)
    with torch.no_grad():
        base = policy_logprobs(VideoPolicy(a.model), batch)
        for module in targets:
            saved = [p.detach().clone() for p in module.parameters()]
            try:
                for p in module.parameters():
                    p.add_(torch.randn_like(p) * 0.5)
                changed = policy_logprobs(VideoPolicy(a.model), batch)
            finally:
                for p, s in zip(module.parameters(), saved):
                    p.copy_(s)
            diff = (changed - base).abs().amax(-1)
            assert bool((diff > 1e-4).all()), (type(module).__name__, diff.tolist())


def test_deepstack_gradients_in_the_loss_step(adapters):
    a = adapters["qwen3_vl"]  # Qwen3.5 has no DeepStack
    batch, _, _ = _two_queries(a)
    a.model.zero_grad(set_to_none=True)
    policy_logprobs(VideoPolicy(a.model), batch).sum().backward()
    for m in a.model.model.visual.deepstack_merger_list:
        assert sum(float(p.grad.abs().sum()) for p in m.parameters()) > 0
    a.model.zero_grad(set_to_none=True)


@pytest.mark.parametrize("family", FAMILIES)
def test_encode_once_and_repeated_pixels_sample_the_same(adapters, family):
    import inspect

    a = adapters[family]
    if "mm_encoder_outputs" not in inspect.signature(a.model.forward).parameters:
        pytest.skip("this transformers version cannot hand encoder outputs to generate (5.17)")
    eos = eos_ids(a.model, a.tokenizer)
    item, _ = make_item(a, make_clip(4, 64, 64, src_fps=30.0, total=120, seed=4), "the door opens")
    s = SamplingSettings(max_new_tokens=6)
    torch.manual_seed(7)
    once = sample_completions(a.model, item.prompt_ids, item.video, 3, s, eos, a.pad_token_id, encode_once=True)
    torch.manual_seed(7)
    rep = sample_completions(a.model, item.prompt_ids, item.video, 3, s, eos, a.pad_token_id, encode_once=False)
    assert once == rep and len(once) == 3
    assert not any(t in (a.video_token_id, a.image_token_id) for c in once for t in c)


@pytest.mark.parametrize("family", FAMILIES)
def test_batched_sampling_equals_one_call_per_query(adapters, family):
    """`rollout.batch_generate` on Qwen3-VL / Qwen3.5 (no second_per_grid_ts; Qwen3-VL's DeepStack taps): two
    left-padded queries in one generate call answer greedily as one call per query does."""
    a = adapters[family]
    eos = eos_ids(a.model, a.tokenizer)
    qa, _ = make_item(a, make_clip(4, 64, 64, src_fps=30.0, total=120, seed=1), "the door opens", 0)
    qb, _ = make_item(a, make_clip(6, 64, 96, src_fps=25.0, total=300, seed=2), "a person sits down on the chair", 1)
    assert len(qa.prompt_ids) != len(qb.prompt_ids)
    greedy = SamplingSettings(max_new_tokens=6, do_sample=False)
    one = [sample_completions(a.model, it.prompt_ids, it.video, 2, greedy, eos, a.pad_token_id) for it in (qa, qb)]
    assert sample_completions_batch(a.model, [qa, qb], 2, greedy, eos, a.pad_token_id) == one


def _trainer(path, **over):
    from tempbench.train.loop import Trainer

    cfg = load_config(None, {"model": path, "task": "synthetic", "rollout.max_new_tokens": 6, "optim.grad_accum": 1,
                             "model_opts.gradient_checkpointing": False, **SMALL_CFG, **over})
    torch.manual_seed(0)
    return Trainer(cfg)


def _fixed(tr, cot=False):
    rec = {"qid": 0, "vid": "fixed", "query": "the door opens", "duration": 4.0, "windows": [[0.5, 1.5]]}
    return tr.make_item(rec, "grounding", cot, clip=make_clip(4, 64, 64, src_fps=30.0, total=120, seed=0))


@pytest.mark.parametrize("family", FAMILIES)
def test_sft_loss_falls(paths, family):
    tr = _trainer(paths[family], method="sft", **{"optim.lr": 1e-3})
    item = _fixed(tr)
    assert " seconds>" in tr.tokenizer.decode(item.prompt_ids)  # the prompt carries the times
    losses = [tr.step([item], "grounding", False)["loss"] for _ in range(5)]
    assert losses[-1] < losses[0] - 0.5


@pytest.mark.parametrize("family", FAMILIES)
def test_tempsamp_raises_log_prob_of_gt_answer(paths, family):
    tr = _trainer(paths[family], method="tempsamp", **{"optim.lr": 1e-3, "rollout.group_size": 3})
    item = _fixed(tr, cot=True)
    recs = [tr.step([item], "grounding", True) for _ in range(5)]
    gt = [r["gt_logp"] for r in recs]
    assert gt[-1] > gt[0] + 0.3
    assert all(r["reward_gt"] == pytest.approx(2.0) for r in recs)
    assert recs[-1]["kl"] > 0 and tr.ref_model is not None
