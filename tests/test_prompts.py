"""Named prompt templates: verbatim texts, hashes, rendering."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tempbench.errors import UsageError
from tempbench.prompts import PROMPTS, get_prompt, prompt_sha256, render

# TempSamp-R1 appendix prompts (see /work/shared/notes/tempsamp-r1.md), with {query} for the event.
PLAIN = ('To accurately pinpoint the event "{query}" in the video, determine the precise time period of the event. '
         'Provide the start and end times (in seconds, precise to two decimal places) in the format "start time to '
         'end time" within the <answer> </answer> tags. For example: "12.54 to 17.83".')


def test_tempsamp_prompts_verbatim():
    assert get_prompt("tempsamp-r1-plain").template == PLAIN
    cot = get_prompt("tempsamp-r1-cot").template
    assert cot.startswith(PLAIN.split(" Provide")[0] + " Output your thought process within the <think> </think> tags")
    assert "<timestep> </timestep>" in cot and cot.endswith('For example: "12.54 to 17.83".')
    hl, hl_cot = get_prompt("tempsamp-r1-highlight").template, get_prompt("tempsamp-r1-highlight-cot").template
    assert "Provide the highlight timestamps and its saliency score within the <answer> </answer> tags." in hl
    assert "Provide the highlight" not in hl_cot.split("Then, provide")[0]
    assert hl_cot.count("<think> </think>") == 1 and hl.endswith("salient scores.") and hl_cot.endswith("salient scores.")
    assert "'{query}'" in hl and get_prompt("tempsamp-r1-highlight").kind == "highlights"


def test_published_prompts_present_and_distinct():
    for name in ("timezero-cot", "time-r1-plain", "time-r1-cot", "lmms-eval-charades", "timelens"):
        assert name in PROMPTS and PROMPTS[name].source
    # TimeZero uses the TempSamp CoT sentences separated by blank lines
    assert get_prompt("timezero-cot").template.replace("\n\n", " ") == get_prompt("tempsamp-r1-cot").template
    assert len({p.sha256 for p in PROMPTS.values()}) == len(PROMPTS)
    assert "seonds" in get_prompt("lmms-eval-charades").template  # the original's typo is kept


def test_sha256_is_of_the_template_text():
    for name, p in PROMPTS.items():
        assert prompt_sha256(name) == hashlib.sha256(p.template.encode("utf-8")).hexdigest()
    assert prompt_sha256("tempsamp-r1-plain") == hashlib.sha256(PLAIN.encode()).hexdigest()


@given(st.text(max_size=40))
def test_render_inserts_query_verbatim(query):
    out = render("tempsamp-r1-plain", query=query)
    assert out == PLAIN.replace("{query}", query) or "{query}" in query
    assert out.startswith('To accurately pinpoint the event "' + query + '"')


def test_render_does_not_reinterpret_braces_in_queries():
    out = render("time-r1-cot", query="a {duration} b {query}")
    assert '"a {duration} b {query}"' in out


def test_unknown_prompt():
    with pytest.raises(UsageError, match="unknown prompt") as e:
        get_prompt("nope")
    assert "tempsamp-r1-plain" in e.value.hint


def test_docs_list_every_registered_prompt_verbatim():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "prompts.md").read_text(encoding="utf-8")
    for p in PROMPTS.values():
        assert f"## `{p.name}`" in doc and f"```text\n{p.template}\n```" in doc and p.sha256 in doc, p.name
