"""Baselines: prior, random, center."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tempbench.errors import TempbenchError, UsageError
from tempbench.models import load_model
from tempbench.models.base import ModelInput
from tempbench.models.baselines import CenterBaseline, PriorBaseline, RandomBaseline

TRAIN = [
    {"qid": 0, "vid": "a", "query": "q", "duration": 10.0, "windows": [[1.0, 4.0]]},
    {"qid": 1, "vid": "b", "query": "q", "duration": 20.0, "windows": [[4.0, 12.0], [0.0, 2.0]]},
    {"qid": 2, "vid": "c", "query": "q", "duration": 30.0, "windows": [[0.0, 30.0]]},
]
TEST = [{"qid": 7, "vid": "x", "query": "q", "duration": 40.0, "windows": [[0, 1]]},
        {"qid": 8, "vid": "y", "query": "q", "duration": 5.0, "windows": [[0, 1]]}]


def test_prior_is_mean_normalised_window_scaled():
    s = np.mean([0.1, 0.2, 0.0, 0.0])
    e = np.mean([0.4, 0.6, 0.1, 1.0])
    assert np.allclose(PriorBaseline(TRAIN).predict(TEST), [[40 * s, 40 * e], [5 * s, 5 * e]])


def test_center_uses_prior_length_or_half():
    length = np.mean([0.3, 0.4, 0.1, 1.0])
    got = CenterBaseline(TRAIN).predict(TEST)
    assert np.allclose(got[0], [20 - 20 * length, 20 + 20 * length])
    assert CenterBaseline().predict(TEST) == [[10.0, 30.0], [1.25, 3.75]]


def test_random_is_per_qid_deterministic():
    b = RandomBaseline(seed=3)
    one = b.predict(TEST)
    assert b.predict(list(reversed(TEST))) == list(reversed(one))  # order-independent
    assert RandomBaseline(seed=3).predict(TEST[:1]) == one[:1]
    assert RandomBaseline(seed=4).predict(TEST) != one
    for (s, e), r in zip(one, TEST):
        assert 0 <= s <= e <= r["duration"]


@given(st.floats(0.5, 1e4), st.integers(0, 10**9))
def test_random_windows_stay_inside(duration, qid):
    s, e = RandomBaseline().predict([{"qid": qid, "duration": duration}])[0]
    assert 0 <= s <= e <= duration


def test_generate_text_and_protocol():
    b = load_model("baseline:prior", train_records=TRAIN)
    assert b.needs_video is False and b.name == "baseline:prior"
    out = b.generate([ModelInput(None, "p", 7, {"duration": 40.0}), ModelInput(None, "p", 8, {"record": TEST[1]})])
    w = b.predict(TEST)
    assert out == [f"{w[0][0]:.2f} to {w[0][1]:.2f}", f"{w[1][0]:.2f} to {w[1][1]:.2f}"]
    ident = b.identity()
    assert ident.backend == "baseline" and ident.info["train_records"] == 3
    assert ident.options["kind"] == "prior" and len(ident.options["train_sha256"]) == 64
    assert load_model("baseline:random", seed=1).identity().options == {"kind": "random", "seed": 1,
                                                                        "train_sha256": None}


def test_errors():
    with pytest.raises(TempbenchError, match="train split"):
        load_model("baseline:prior")
    with pytest.raises(UsageError, match="unknown baseline"):
        load_model("baseline:median")
    with pytest.raises(TempbenchError, match="duration"):
        PriorBaseline(TRAIN).predict([{"qid": 1, "duration": 0}])
    with pytest.raises(UsageError, match="do not apply"):
        load_model("baseline:random", api_base="http://x")
