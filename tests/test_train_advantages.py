"""GRPO advantages and TempSamp-R1 off-policy controls: reference values from the paper's notes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tempbench.train.advantages import (
    AdvantageSettings,
    group_advantages,
    group_normalise,
    on_policy_groups,
    shape_reward,
    skewness,
)

GROUP = [0.6, 0.7, 0.5, 1.0]  # worked example: three on-policy rows, GT row last


@pytest.mark.parametrize(
    "raw, shaped",
    [(0.0, 0.0868), (0.5, 0.5964), (0.7, 0.7388), (0.8, 0.8000), (0.9, 0.8010), (1.0, 0.8018)],
)
def test_shaping_reference_values(raw, shaped):
    assert round(float(shape_reward(raw)), 4) == shaped


def test_worked_example_raw_advantages():
    adv = group_advantages(GROUP, AdvantageSettings(control="none"))
    assert np.round(adv, 2).tolist() == [-0.46, 0.00, -0.93, 1.39]


def test_worked_example_shaped_advantages():
    adv = group_advantages(GROUP, AdvantageSettings(control="shaping"))
    assert np.round(adv, 2).tolist() == [-0.35, 0.42, -1.20, 1.13]
    # the good on-policy sample (0.7) is no longer penalised
    assert adv[1] > 0


def test_unbiased_std_is_used():
    r = np.array(GROUP)
    adv = group_normalise(r, eps=0.0)
    assert np.std(adv, ddof=1) == pytest.approx(1.0)
    assert np.std(adv, ddof=0) != pytest.approx(1.0)


def test_downscale_sets_gt_to_fraction_of_max():
    s = AdvantageSettings(control="downscale")
    adv = group_advantages(GROUP, s)
    expected = group_normalise([0.6, 0.7, 0.5, 0.8], s.eps)
    np.testing.assert_allclose(adv, expected)


def test_anchor_uses_on_policy_statistics():
    s = AdvantageSettings(control="anchor", eps=0.0)
    adv = group_advantages(GROUP, s)
    np.testing.assert_allclose(adv[:3], [0.0, 1.0, -1.0], atol=1e-12)  # mean 0.6, std 0.1 of on-policy rows
    assert adv[3] == pytest.approx(1.2)


def test_gt_index_position_and_none_group():
    s = AdvantageSettings(control="anchor", eps=0.0)
    first = group_advantages([1.0, 0.6, 0.7, 0.5], s, gt_index=0)
    assert first[0] == pytest.approx(1.2)
    # no GT row: anchor falls back to plain GRPO
    np.testing.assert_allclose(group_advantages(GROUP, s, gt_index=None), group_normalise(GROUP, 0.0))


def test_shaping_applies_to_accuracy_part_only():
    acc = np.array([0.6, 0.7, 0.5, 1.0])
    fmt = np.array([1.0, 0.0, 1.0, 1.0])
    s = AdvantageSettings(control="shaping")
    got = group_advantages(acc + fmt, s, accuracy=acc)
    np.testing.assert_allclose(got, group_normalise(shape_reward(acc) + fmt, s.eps))


def test_constant_group_gives_zero_and_unknown_control_fails():
    assert np.allclose(group_advantages([0.0, 0.0, 0.0, 0.0], AdvantageSettings("none")), 0.0)
    with pytest.raises(ValueError, match="unknown off-policy control"):
        group_advantages(GROUP, AdvantageSettings("bogus"))


def test_on_policy_groups_counts_all_zero_groups_without_the_gt_row():
    # 3 queries: q0 on-policy 0, 0 + GT 1 (all zero), q1 0, 0.6 + GT 1, q2 0.2, 0.9 + GT 1
    acc = [0.0, 0.0, 1.0, 0.0, 0.6, 1.0, 0.2, 0.9, 1.0]
    rq = [0, 0, 0, 1, 1, 1, 2, 2, 2]
    gt = [False, False, True] * 3
    zero, best = on_policy_groups(acc, rq, gt)
    assert zero == pytest.approx(1 / 3) and best == pytest.approx((0.0 + 0.6 + 0.9) / 3)
    # GRPO (no GT row): the same counts over all rows
    assert on_policy_groups([0.0, 0.0, 0.5, 0.0], [0, 0, 1, 1], [False] * 4) == (0.5, 0.25)
    assert on_policy_groups([1.0], [0], [True]) == (None, None)  # SFT-like: no on-policy row


def test_skewness():
    assert skewness([1, 1, 1]) == 0.0
    assert skewness([0, 0, 0, 10]) > 0
    assert skewness([0, 10, 10, 10]) < 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=2, max_size=10))
def test_normalised_advantages_have_zero_mean(rs):
    adv = group_advantages(rs, AdvantageSettings("none"))
    assert abs(adv.mean()) < 1e-9
    assert np.all(np.isfinite(adv))


@settings(max_examples=60, deadline=None)
@given(st.floats(0, 1), st.floats(0, 1))
def test_shaping_is_monotone_and_continuous_at_tau(a, b):
    lo, hi = min(a, b), max(a, b)
    assert shape_reward(lo) <= shape_reward(hi) + 1e-12
    assert float(shape_reward(0.8 - 1e-9)) == pytest.approx(float(shape_reward(0.8)), abs=1e-8)
