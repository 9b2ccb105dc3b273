"""Rewards: IoU, format and highlight rewards of the TempSamp-R1 trainer."""

from __future__ import annotations

import pytest

from tempbench.train.rewards import (
    clip_to_timestamp,
    f_beta,
    format_reward,
    highlight_answer_text,
    highlight_reward,
    iou_reward,
    score_completion,
    timestamp_to_clip,
    weighted_mse,
)


@pytest.mark.parametrize(
    "text, ok",
    [
        ("<think>the door opens at 12</think><answer>12.00 to 15.00</answer>", 1.0),
        ("  <think></think>\n<answer> 1.00 to 2.00 </answer>\n", 1.0),
        ("<answer>1 to 2</answer>", 0.0),  # no think
        ("<answer>1 to 2</answer><think>x</think>", 0.0),  # wrong order
        ("<think>x</think> so <answer>1 to 2</answer>", 0.0),  # text between
        ("<think>x</think><answer>1 to 2</answer> extra", 0.0),  # trailing text
        ("<think>a</think><think>b</think><answer>1 to 2</answer>", 0.0),  # two thinks
        ("<think>x<answer>1</answer></think><answer>1 to 2</answer>", 0.0),  # nested tags
        ("", 0.0),
    ],
)
def test_format_reward(text, ok):
    assert format_reward(text) == ok


def test_iou_reward_values():
    assert iou_reward("<answer> 10.00 to 20.00 </answer>", (10.0, 20.0)) == pytest.approx(1.0)
    assert iou_reward("<answer> 10.00 to 20.00 </answer>", (15.0, 25.0)) == pytest.approx(5 / 15)
    assert iou_reward("<answer> 0.00 to 5.00 </answer>", (10.0, 20.0)) == 0.0  # disjoint: clamped at 0
    assert iou_reward("no numbers here", (10.0, 20.0)) == 0.0  # parse failure
    assert iou_reward("<think>maybe 3 to 4</think><answer>13.90 to 22.40</answer>", (13.9, 22.4)) == pytest.approx(1.0)


def test_score_completion_grounding_and_cot():
    rec = {"qid": 0, "vid": "v", "query": "q", "duration": 30.0, "windows": [[13.9, 22.4]]}
    plain = score_completion("<answer> 13.90 to 22.40 </answer>", rec, "grounding", cot=False)
    assert plain.accuracy == pytest.approx(1.0) and plain.format is None and plain.total == pytest.approx(1.0)
    cot = score_completion("<think></think><answer> 13.90 to 22.40 </answer>", rec, "grounding", cot=True)
    assert cot.format == 1.0 and cot.total == pytest.approx(2.0)


def test_clip_mapping_round_trip():
    for c in range(0, 80):
        assert timestamp_to_clip(clip_to_timestamp(c)) == c
    assert timestamp_to_clip(82) == 40 and timestamp_to_clip(0.5) == 0


def test_f_beta_and_wmse():
    assert f_beta({1, 2}, {1, 2}) == 1.0
    assert f_beta(set(), {1}) == 0.0
    # recall-weighted: missing GT clips costs more than extra clips
    assert f_beta({1, 2, 3, 4}, {1, 2}) > f_beta({1}, {1, 2})
    assert f_beta({1}, {1, 2}) == pytest.approx(5 * 1.0 * 0.5 / (4 * 1.0 + 0.5))
    assert weighted_mse({1: 2.0, 2: 4.0}, {1: 2.0, 2: 4.0}) == 0.0
    # error on a high-saliency clip weighs more than the same error on a low-saliency clip
    assert weighted_mse({1: 1.0, 2: 4.0}, {1: 2.0, 2: 4.0}) < weighted_mse({1: 2.0, 2: 3.0}, {1: 2.0, 2: 4.0})
    assert weighted_mse({}, {1: 2.0, 2: 4.0}) == pytest.approx((4 * 4 + 16 * 16) / 20)


def test_highlight_reward_perfect_partial_and_failed():
    clip_ids = [3, 4, 5]
    scores = [[2, 3, 4], [4, 4, 4], [1, 1, 1]]
    gt = highlight_answer_text(clip_ids, scores)
    assert gt == "The highlight timestamps are in the 8, 10, 12 seconds. Their saliency scores are 3.0, 4.0, 1.0"
    assert highlight_reward(f"<answer> {gt} </answer>", clip_ids, scores, duration=30.0) == pytest.approx(1.0)
    partial = highlight_reward(
        "<answer>The highlight timestamps are in the 10 seconds. Their saliency scores are 4.0</answer>",
        clip_ids, scores, duration=30.0,
    )
    f2 = f_beta({4}, {3, 4, 5})
    wmse = weighted_mse({4: 4.0}, {3: 3.0, 4: 4.0, 5: 1.0})
    assert partial == pytest.approx(0.6 * f2 + 0.4 / (1 + wmse))
    assert 0 < partial < 1
    assert highlight_reward("I do not know", clip_ids, scores, duration=30.0) == 0.0


def test_score_completion_highlights():
    rec = {"qid": 1, "vid": "v", "query": "q", "duration": 150.0, "windows": [[80, 84]],
           "saliency": {"clip_ids": [40, 41], "scores": [[4, 4, 4], [2, 2, 2]]}}
    text = "<answer>" + highlight_answer_text([40, 41], [[4, 4, 4], [2, 2, 2]]) + "</answer>"
    assert score_completion(text, rec, "highlights", cot=False).accuracy == pytest.approx(1.0)
