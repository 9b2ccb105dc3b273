"""The prediction reader and `schemas/prediction.json` agree: a row is accepted by one iff by the other."""

from __future__ import annotations

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tempbench.errors import TempbenchError
from tempbench.predictions import validate_row
from tempbench.results import load_schema

VALIDATOR = jsonschema.Draft202012Validator(load_schema("prediction"))
finite = st.floats(allow_nan=False, allow_infinity=False, width=32)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), finite, st.text(max_size=5))
number = st.one_of(st.integers(-100, 10**4), finite)
window = st.one_of(st.lists(number, min_size=2, max_size=2), st.lists(number, min_size=3, max_size=3),
                   st.lists(st.one_of(number, scalars), min_size=0, max_size=4))
value = st.one_of(scalars, st.lists(window, max_size=4), st.lists(number, max_size=4),
                  st.lists(scalars, max_size=3), st.dictionaries(st.text(max_size=3), scalars, max_size=2))
keys = st.sampled_from(["qid", "vid", "query", "output", "error", "windows", "pred_relevant_windows", "saliency",
                        "pred_saliency_scores", "extra"])
rows = st.one_of(st.dictionaries(keys, value, max_size=6), scalars, st.lists(scalars, max_size=2))


def reader_accepts(row) -> bool:
    try:
        validate_row(row, "p.jsonl", 1)
    except TempbenchError:
        return False
    return True


@settings(max_examples=3000, deadline=None)
@given(rows)
def test_reader_and_schema_agree(row):
    assert reader_accepts(row) == VALIDATOR.is_valid(row), row


@pytest.mark.parametrize("row, ok", [
    ({"qid": 1, "windows": [[1, 2], [3, 4]]}, True),
    ({"qid": "7", "output": "1 to 2", "error": None}, True),
    ({"vid": "v", "query": "q", "output": "x"}, True),
    ({"qid": 1, "windows": [["1", "2"]]}, False),
    ({"qid": 1, "windows": [[True, False]]}, False),
    ({"qid": 1, "pred_relevant_windows": [[1, 2, 0.5], [1, 2]]}, False),
    ({"qid": 1, "pred_saliency_scores": [1, True]}, False),
    ({"qid": 2.5}, False),
    ({"output": "1 to 2"}, False),
    ({"qid": 1, "windows": [[1, 2]] * 10_000}, True),
    ({"qid": 1, "windows": [[1, 2]] * 10_001}, False),  # no metric reads past the 10th window
    ({"qid": 1, "pred_relevant_windows": [[1, 2, 0.5]] * 10_001}, False),
    ({"qid": 1, "saliency": [0.5] * 100_000}, True),
    ({"qid": 1, "pred_saliency_scores": [0.5] * 100_001}, False),
    ({"qid": 1, "pred_relevant_windows": [["1", "2", "0.5"]]}, False),  # strings are not numbers (item 4)
    ({"qid": 1, "pred_relevant_windows": [[True, False, True]]}, False),
    ({"qid": 1, "saliency": ["0.5"]}, False),
])
def test_examples(row, ok):
    assert reader_accepts(row) is ok and VALIDATOR.is_valid(row) is ok
