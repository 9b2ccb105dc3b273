"""Rollout, policy forward, loss and SFT pieces on a tiny float32 Qwen2.5-VL built locally (CPU)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tempbench.models.base import ModelInput  # noqa: E402
from tempbench.train.loss import LossSettings, VideoPolicy, aggregate, policy_logprobs, policy_loss  # noqa: E402
from tempbench.train.rollout import (  # noqa: E402
    QueryItem,
    SamplingSettings,
    VideoInputs,
    build_rollout,
    collate_rows,
    completion_ids,
    cut_at_eos,
    eos_ids,
    gt_answer_text,
    mm_token_type_ids,
    sample_completions,
    sample_completions_batch,
)
from tempbench.train.sft import sft_batch, sft_loss  # noqa: E402
from tempbench.video import Clip, VideoSettings  # noqa: E402

SMALL_VIDEO = VideoSettings(fps=2.0, min_frames=2, max_frames=8, min_pixels=4 * 28 * 28, max_pixels=16 * 28 * 28,
                            total_pixels=4 * 16 * 28 * 28)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from tempbench.models.qwen.adapter import HFQwenVL
    from tempbench.models.qwen.tiny import build_tiny_qwen2_5_vl

    path = build_tiny_qwen2_5_vl(tmp_path_factory.mktemp("tiny") / "model", seed=0)
    return HFQwenVL(str(path), device="cpu", dtype="float32", video_settings=SMALL_VIDEO)


def make_clip(n_frames: int, h: int, w: int, seed: int = 0) -> Clip:
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (n_frames, h, w, 3), dtype=np.uint8)
    return Clip(frames=frames, timestamps=np.arange(n_frames) / 2.0, fps=2.0, duration=n_frames / 2.0,
                source_fps=2.0, path=f"synthetic-{seed}")


def make_item(adapter, clip: Clip, query: str, window=(1.0, 2.5), qid: int = 0) -> QueryItem:
    inputs = adapter.build_inputs([ModelInput(clip, f'Find "{query}". Answer in <answer> </answer>.', qid)])
    rec = {"qid": qid, "vid": f"v{qid}", "query": query, "duration": clip.duration, "windows": [list(window)]}
    return QueryItem(inputs["input_ids"][0].tolist(), VideoInputs.from_dict(inputs), rec), inputs


# ------------------------------------------------------------------------------------------------ pure pieces


def test_gt_answer_text_formats():
    rec = {"windows": [[13.9, 22.4]]}
    assert gt_answer_text(rec) == "<answer> 13.90 to 22.40 </answer>"
    assert gt_answer_text(rec, cot=True) == "<think></think><answer> 13.90 to 22.40 </answer>"
    assert gt_answer_text(rec, cot=True, think="at 13.90") == "<think>at 13.90</think><answer> 13.90 to 22.40 </answer>"


def test_collate_left_pads_prompts_right_pads_completions():
    b = collate_rows([[5, 6], [7, 8, 9, 10]], [[1, 2, 3], [4]], pad_id=0, row_query=[0, 1], is_gt=[False, True])
    assert b.prompt_len == 4 and b.completion_len == 3
    assert b.input_ids.tolist() == [[0, 0, 5, 6, 1, 2, 3], [7, 8, 9, 10, 4, 0, 0]]
    assert b.attention_mask.tolist() == [[0, 0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 0]]
    assert b.completion_mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert b.completion_ids.tolist() == [[1, 2, 3], [4, 0, 0]]


def test_cut_at_eos():
    assert cut_at_eos([4, 5, 9, 6, 9], eos=[9]) == [4, 5, 9]
    assert cut_at_eos([4, 5, 0, 0], eos=[9], pad_id=0) == [4, 5]


def test_policy_loss_math():
    logp = torch.tensor([[-1.0, -2.0, -3.0], [-1.0, -1.0, 0.0]], requires_grad=True)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    adv = torch.tensor([1.0, -2.0])
    loss, st = policy_loss(logp, adv, mask, settings=LossSettings(beta=0.0))
    # ratio 1: per-token -A, sequence-mean then mean over rows: -(1 + -2) / 2
    assert float(loss.detach()) == pytest.approx(0.5)
    loss.backward()
    # d/dlogp = -A / n_tokens(row) / n_rows
    np.testing.assert_allclose(logp.grad.numpy(), [[-1 / 6, -1 / 6, -1 / 6], [0.5, 0.5, 0.0]], atol=1e-6)
    # token aggregation: mean over the 5 real tokens
    loss_t, _ = policy_loss(logp, adv, mask, settings=LossSettings(beta=0.0, aggregation="token"))
    assert float(loss_t.detach()) == pytest.approx(-(3 * 1.0 + 2 * -2.0) / 5)


def test_policy_loss_clipping_and_kl():
    logp = torch.zeros(1, 2, requires_grad=True)
    old = torch.log(torch.tensor([[0.5, 1.0]]))  # ratio 2 on token 0 (clipped for A > 0), 1 on token 1
    mask = torch.ones(1, 2)
    loss, st = policy_loss(logp, torch.tensor([1.0]), mask, old_logp=old, settings=LossSettings(beta=0.0))
    loss.backward()
    assert logp.grad[0, 0] == 0.0 and logp.grad[0, 1] != 0.0
    assert st["clip_frac"] == pytest.approx(0.5)
    lp = torch.zeros(1, 2)
    _, st0 = policy_loss(lp, torch.tensor([0.0]), mask, ref_logp=lp.clone(), settings=LossSettings(beta=0.04))
    assert st0["kl"] == pytest.approx(0.0)
    _, st1 = policy_loss(lp, torch.tensor([0.0]), mask, ref_logp=lp - 0.5, settings=LossSettings(beta=0.04))
    d = -0.5
    assert st1["kl"] == pytest.approx(np.exp(d) - d - 1)
    with pytest.raises(ValueError):
        aggregate(lp, mask, "bogus")


# ------------------------------------------------------------------------------------------------ tiny model


def test_gt_row_tokens_and_masks_with_left_padding(tiny):
    tok = tiny.tokenizer
    eos = eos_ids(tiny.model, tok)
    a, _ = make_item(tiny, make_clip(4, 56, 56, 1), "the door opens", (1.0, 1.5), qid=0)
    b, _ = make_item(tiny, make_clip(8, 56, 84, 2), "a person sits down on the chair", (0.5, 3.25), qid=1)
    assert len(a.prompt_ids) != len(b.prompt_ids)
    gts = [gt_answer_text(a.record), gt_answer_text(b.record)]
    torch.manual_seed(0)
    batch = build_rollout(tiny.model, tok, [a, b], 2, True, gts, SamplingSettings(max_new_tokens=6),
                          tiny.pad_token_id, eos)
    assert batch.input_ids.shape[0] == 6
    assert batch.is_gt.tolist() == [False, False, True, False, False, True]
    assert batch.row_query.tolist() == [0, 0, 0, 1, 1, 1]
    P = batch.prompt_len
    assert P == max(len(a.prompt_ids), len(b.prompt_ids))
    for row, item, gt in ((2, a, gts[0]), (5, b, gts[1])):
        want = tok(gt, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        n = len(want)
        assert batch.input_ids[row, P : P + n].tolist() == want
        assert batch.completion_mask[row].tolist() == [1] * n + [0] * (batch.completion_len - n)
        assert batch.input_ids[row, P - len(item.prompt_ids) : P].tolist() == item.prompt_ids
        am = batch.attention_mask[row].tolist()
        assert am == [0] * (P - len(item.prompt_ids)) + [1] * (len(item.prompt_ids) + n) + [0] * (
            batch.completion_len - n)
        assert tok.decode(want[:-1]) == gt
    assert completion_ids(tok, gts[0], tok.eos_token_id)[-1] == tok.eos_token_id


def test_policy_logprobs_match_plain_hf_forward(tiny):
    """The once-per-query video path equals the stock forward (pixel values + mm_token_type_ids) row by row."""
    tok = tiny.tokenizer
    model = tiny.model
    a, inp_a = make_item(tiny, make_clip(4, 56, 56, 1), "the door opens", qid=0)
    b, inp_b = make_item(tiny, make_clip(8, 56, 84, 2), "a person sits down", qid=1)
    comps = [completion_ids(tok, "<answer> 1.00 to 2.00 </answer>", tok.eos_token_id), tok(" the door", add_special_tokens=False)["input_ids"],
             completion_ids(tok, "<answer> 0.50 to 3.25 </answer>", tok.eos_token_id)]
    batch = collate_rows([a.prompt_ids, a.prompt_ids, b.prompt_ids], comps, tiny.pad_token_id, [0, 0, 1],
                         videos=[a.video, b.video])
    with torch.no_grad():
        lp = policy_logprobs(VideoPolicy(model), batch)
        for row, (item, inp) in enumerate(((a, inp_a), (a, inp_a), (b, inp_b))):
            ids = torch.tensor([item.prompt_ids + comps[row]])
            out = model(input_ids=ids, attention_mask=torch.ones_like(ids),
                        pixel_values_videos=inp["pixel_values_videos"], video_grid_thw=inp["video_grid_thw"],
                        second_per_grid_ts=inp["second_per_grid_ts"], mm_token_type_ids=mm_token_type_ids(ids, model.config))
            P = len(item.prompt_ids)
            ref = torch.log_softmax(out.logits[0, P - 1 : -1].float(), -1).gather(-1, ids[0, P:, None])[:, 0]
            n = len(comps[row])
            torch.testing.assert_close(lp[row, :n], ref, atol=2e-5, rtol=1e-5)


def test_position_ids_depend_on_second_per_grid_ts(tiny):
    """A different sampled fps changes the log-probs (temporal M-RoPE spacing is used)."""
    tok = tiny.tokenizer
    a, _ = make_item(tiny, make_clip(8, 56, 56, 3), "the door opens")
    comp = completion_ids(tok, "<answer> 1.00 to 2.00 </answer>", tok.eos_token_id)
    v2 = VideoInputs(a.video.pixel_values_videos, a.video.video_grid_thw, a.video.second_per_grid_ts * 4)
    with torch.no_grad():
        l1 = policy_logprobs(VideoPolicy(tiny.model), collate_rows([a.prompt_ids], [comp], 0, videos=[a.video]))
        l2 = policy_logprobs(VideoPolicy(tiny.model), collate_rows([a.prompt_ids], [comp], 0, videos=[v2]))
    assert not torch.allclose(l1, l2)


def test_encode_once_and_repeated_pixels_sample_the_same(tiny):
    tok = tiny.tokenizer
    eos = eos_ids(tiny.model, tok)
    a, _ = make_item(tiny, make_clip(4, 56, 56, 4), "the door opens")
    s = SamplingSettings(max_new_tokens=8)
    torch.manual_seed(123)
    once = sample_completions(tiny.model, a.prompt_ids, a.video, 3, s, eos, tiny.pad_token_id, encode_once=True)
    torch.manual_seed(123)
    rep = sample_completions(tiny.model, a.prompt_ids, a.video, 3, s, eos, tiny.pad_token_id, encode_once=False)
    assert once == rep
    assert len(once) == 3 and all(0 < len(c) <= 8 for c in once)
    # vision placeholders are never sampled
    assert not any(t in (tiny.model.config.video_token_id, tiny.model.config.image_token_id) for c in once for t in c)


@pytest.mark.parametrize("encode_once", [True, False])
def test_batched_sampling_equals_one_call_per_query(tiny, encode_once):
    """`rollout.batch_generate`: the queries of a micro-step in one generate call (left-padded prompts of
    different lengths, different videos; the vision tower once per query, or pixel values per row) answer
    greedily exactly as one call per query does."""
    tok = tiny.tokenizer
    eos = eos_ids(tiny.model, tok)
    a, _ = make_item(tiny, make_clip(4, 56, 56, 6), "the door opens", qid=0)
    b, _ = make_item(tiny, make_clip(8, 56, 84, 7), "a person sits down on the chair", qid=1)
    c, _ = make_item(tiny, make_clip(6, 84, 56, 8), "someone laughs", qid=2)
    assert len({len(a.prompt_ids), len(b.prompt_ids), len(c.prompt_ids)}) == 3
    greedy = SamplingSettings(max_new_tokens=8, do_sample=False)
    one = [sample_completions(tiny.model, it.prompt_ids, it.video, 2, greedy, eos, tiny.pad_token_id)
           for it in (a, b, c)]
    together = sample_completions_batch(tiny.model, [a, b, c], 2, greedy, eos, tiny.pad_token_id,
                                        encode_once=encode_once)
    assert together == one and all(len(rows) == 2 for rows in together)
    assert len({tuple(rows[0]) for rows in together}) > 1  # the answers depend on the query and video
    # sampling: n rows per query, cut after EOS, never a vision placeholder; the rollout keeps its layout
    s = SamplingSettings(max_new_tokens=6)
    torch.manual_seed(0)
    sampled = sample_completions_batch(tiny.model, [a, b], 3, s, eos, tiny.pad_token_id, encode_once=encode_once)
    assert [len(rows) for rows in sampled] == [3, 3]
    assert all(0 < len(r) <= 6 for rows in sampled for r in rows)
    assert not any(t in (tiny.model.config.video_token_id, tiny.model.config.image_token_id)
                   for rows in sampled for r in rows for t in r)
    gts = [gt_answer_text(a.record), gt_answer_text(b.record)]
    torch.manual_seed(0)
    batch = build_rollout(tiny.model, tok, [a, b], 3, True, gts, s, tiny.pad_token_id, eos, batch_generate=True)
    assert batch.row_query.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert batch.is_gt.tolist() == [False, False, False, True] * 2
    assert batch.texts[3] == gts[0] and batch.texts[7] == gts[1]
    assert [batch.completion_ids[i, : len(sampled[i // 4][i % 4])].tolist() for i in (0, 1, 2, 4, 5, 6)] == [
        sampled[0][0], sampled[0][1], sampled[0][2], sampled[1][0], sampled[1][1], sampled[1][2]]


@pytest.mark.parametrize("freeze", [False, True])
def test_vision_tower_gets_gradients_in_the_loss_step(tiny, freeze):
    model = tiny.model
    tok = tiny.tokenizer
    a, _ = make_item(tiny, make_clip(4, 56, 56, 5), "the door opens")
    gts = [gt_answer_text(a.record)]
    batch = build_rollout(model, tok, [a], 2, True, gts, SamplingSettings(max_new_tokens=5), tiny.pad_token_id,
                          eos_ids(model, tok))
    seen = {}

    def hook(module, args, output):
        out = getattr(output, "pooler_output", output)
        out = out[0] if isinstance(out, (tuple, list)) else out
        seen["calls"] = seen.get("calls", 0) + 1
        seen["requires_grad"] = out.requires_grad
        if out.requires_grad:
            out.register_hook(lambda g: seen.__setitem__("grad", g.detach().abs().sum().item()))

    visual = model.model.visual
    for p in visual.parameters():
        p.requires_grad_(not freeze)
    h = visual.register_forward_hook(hook)
    try:
        model.zero_grad(set_to_none=True)
        logp = policy_logprobs(VideoPolicy(model), batch)
        loss, _ = policy_loss(logp, torch.tensor([-1.0, 0.5, 1.5]), batch.completion_mask,
                              ref_logp=logp.detach() - 0.1)
        loss.backward()
    finally:
        h.remove()
        for p in visual.parameters():
            p.requires_grad_(True)
    assert seen["calls"] == 1  # one video, one vision-tower call for the 3 rows
    grads = [p.grad for p in visual.parameters()]
    if freeze:
        assert all(g is None for g in grads)
    else:
        assert seen["grad"] > 0
        assert sum(float(g.abs().sum()) for g in grads if g is not None) > 0
    model.zero_grad(set_to_none=True)


def test_sft_batch_masks_prompt(tiny):
    tok = tiny.tokenizer
    a, _ = make_item(tiny, make_clip(4, 56, 56, 6), "the door opens")
    gt = gt_answer_text(a.record)
    batch = sft_batch(tok, [a], [gt], tiny.pad_token_id)
    want = tok(gt, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert batch.completion_ids[0].tolist() == want
    assert int(batch.completion_mask.sum()) == len(want)
    lp = torch.tensor([[-1.0] * len(want)])
    assert float(sft_loss(lp, batch.completion_mask)) == pytest.approx(1.0)
