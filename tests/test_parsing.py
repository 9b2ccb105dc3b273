"""Parsing profiles: the answer corpus under every profile, properties (never raises, round trips), highlights."""

from __future__ import annotations

import ast
import json
import math
import re
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tempbench import parsing
from tempbench.parsing import (
    DEFAULT_PROFILE,
    PROFILES,
    ParsedSpan,
    format_span,
    parse_highlights,
    parse_span,
    round_span,
    strip_reasoning,
)

CORPUS_PATH = Path(__file__).parent / "data" / "parser_corpus.jsonl"
CORPUS = [json.loads(line) for line in CORPUS_PATH.read_text(encoding="utf-8").splitlines() if line.strip()]
REPRODUCTIONS = [name for name in PROFILES if name != "canonical"]


# ---------------------------------------------------------------------------------------------------------------
# The corpus: realistic answers with the expected span under each profile
# ---------------------------------------------------------------------------------------------------------------


def test_corpus_is_large_and_covers_every_profile():
    assert len(CORPUS) >= 150
    assert len({row["id"] for row in CORPUS}) == len(CORPUS)
    for row in CORPUS:
        assert set(row["expected"]) == set(PROFILES), row["id"]
    # the corpus must exercise both outcomes under every profile
    for name in PROFILES:
        spans = [row["expected"][name]["span"] for row in CORPUS]
        assert sum(s is None for s in spans) >= 10 and sum(s is not None for s in spans) >= 40, name


@pytest.mark.parametrize("name", list(PROFILES))
def test_corpus_expected_spans(name):
    wrong = []
    for row in CORPUS:
        want = row["expected"][name]
        got = parse_span(row["text"], name)
        assert isinstance(got, ParsedSpan)
        assert (got.span is None) == (got.status == "failed"), (row["id"], got)
        if want["span"] is None:
            ok = got.span is None
        else:
            ok = got.span is not None and all(math.isclose(g, w, rel_tol=1e-12, abs_tol=1e-12)
                                              for g, w in zip(got.span, want["span"]))
        if ok and "status" in want:
            ok = got.status == want["status"]
        if not ok:
            wrong.append((row["id"], row["text"][:80], want, got))
    assert not wrong, "\n".join(map(repr, wrong))


def test_profiles_really_differ_on_the_corpus():
    """The point of profiles: the same answers give different spans; check a few documented differences."""
    by_id = {row["id"]: row for row in CORPUS}
    assert parse_span(by_id["multi-then-correct"]["text"]).span == (3.0, 5.0)
    assert parse_span(by_id["multi-then-correct"]["text"], "xiaomi-time-r1").span == (6.0, 9.0)
    assert parse_span(by_id["tag-think-answer"]["text"], "timelens").span == (5.0, 7.0)  # reads inside <think>
    assert parse_span(by_id["quirk-round-half-even"]["text"], "timelens").span == (2.0, 4.0)
    assert parse_span(by_id["plain-hyphen"]["text"], "timezero").status == "failed"
    assert parse_span(by_id["rev-to"]["text"], "xiaomi-time-r1").span == (17.8, 12.5)  # kept reversed
    assert parse_span(by_id["rev-to"]["text"], "lmms-eval").status == "repaired"


# ---------------------------------------------------------------------------------------------------------------
# Interface
# ---------------------------------------------------------------------------------------------------------------


def test_default_profile_and_unknown_profile():
    assert DEFAULT_PROFILE == "canonical" and DEFAULT_PROFILE in PROFILES
    with pytest.raises(ValueError) as info:
        parse_span("1 to 2", "no-such-profile")
    for name in PROFILES:
        assert name in str(info.value)


@pytest.mark.parametrize("name", list(PROFILES))
def test_non_string_input_is_a_failure(name):
    for value in (None, 12, b"1 to 2", ["1 to 2"]):
        result = parse_span(value, name)  # type: ignore[arg-type]
        assert result.span is None and result.status == "failed"


def test_profile_records():
    commit = re.compile(r"@[0-9a-f]{40}\b")
    for name, profile in PROFILES.items():
        assert profile.name == name and profile.description and callable(profile.parse)
        if name != "canonical":
            assert commit.search(profile.reference), name
            assert ".py" in profile.reference, name
        assert not hasattr(profile, "drop_failures")  # no published evaluator drops failures
    assert [n for n, p in PROFILES.items() if p.strict_threshold] == ["xiaomi-time-r1"]
    assert {n for n, p in PROFILES.items() if p.round_to == 1.0} == {"timelens", "tempsamp-r1"}
    assert PROFILES["canonical"].round_to is None


def test_parsing_module_is_pure():
    """No I/O and no imports from the rest of tempbench (design rule for parsing.py)."""
    tree = ast.parse(Path(parsing.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import in parsing.py"
            imported.add(node.module)
    assert imported <= {"__future__", "re", "math", "dataclasses", "json", "collections.abc"}, imported
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert not names & {"open", "print", "input"}


def test_round_span_halves_to_even_and_is_idempotent():
    assert round_span((2.5, 3.5), 1.0) == (2.0, 4.0)
    assert round_span((0.49, 10.51), 1.0) == (0.0, 11.0)
    assert round_span((2.5, 3.5), None) == (2.5, 3.5)
    assert round_span(round_span((7.25, 9.75), 0.5), 0.5) == round_span((7.25, 9.75), 0.5)


def test_strip_reasoning_follows_lmms_eval():
    assert strip_reasoning("<think>a 1 - 2</think> b") == "b"
    assert strip_reasoning("prefilled 1 - 2 </think> answer 3 - 4") == "answer 3 - 4"
    assert strip_reasoning("<analysis>x</analysis><think>y</think>z") == "z"
    assert strip_reasoning("</think> early <think> open") == "</think> early <think> open"  # end before start
    assert strip_reasoning("<THINK>case</THINK> kept") == "<THINK>case</THINK> kept"  # case-sensitive


# ---------------------------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------------------------

_ALPHABET = st.sampled_from(
    list("0123456789 .:-–—~,[]()\n") + ["to", " to ", " and ", "between ", "start ", "end ", "s", "seconds",
                                         "<think>", "</think>", "<answer>", "</answer>", "<analysis>", "</analysis>",
                                         "happens in", "٣", "１", "\u00a0", "é", "\x00"]
)


@pytest.mark.parametrize("name", list(PROFILES))
@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=300))
def test_never_raises_on_any_string(name, text):
    result = parse_span(text, name)
    assert result.status in {"ok", "repaired", "failed"}
    assert (result.span is None) == (result.status == "failed")
    if result.span is not None:
        assert all(math.isfinite(v) for v in result.span)


@pytest.mark.parametrize("name", list(PROFILES))
@settings(max_examples=150, deadline=None)
@given(parts=st.lists(_ALPHABET, max_size=40))
def test_never_raises_on_answer_like_strings(name, parts):
    result = parse_span("".join(parts), name)
    assert (result.span is None) == (result.status == "failed")
    if name == "canonical" and result.span is not None:
        assert result.span[0] <= result.span[1]  # canonical always orders the span


_times = st.floats(min_value=0, max_value=5000, allow_nan=False).map(lambda x: round(x, 2))


@settings(max_examples=200, deadline=None)
@given(a=_times, b=_times, style=st.sampled_from(["to", "dash", "from", "between", "list", "answer"]))
def test_canonical_round_trips_formatted_spans(a, b, style):
    start, end = min(a, b), max(a, b)
    text = format_span(start, end, style)
    result = parse_span(f"<think>maybe 1 to 2</think> {text}" if style == "answer" else text)
    assert result.status == "ok"
    assert result.span == pytest.approx((start, end), abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(a=st.integers(0, 3 * 3600 - 1), b=st.integers(0, 3 * 3600 - 1), cents=st.integers(0, 99))
def test_canonical_round_trips_clock_times(a, b, cents):
    start, end = min(a, b), max(a, b)

    def clock(t: int) -> str:
        return f"{t // 3600}:{t % 3600 // 60:02d}:{t % 60:02d}.{cents:02d}"

    result = parse_span(f"The event happens from {clock(start)} to {clock(end)}.")
    assert result.span == pytest.approx((start + cents / 100, end + cents / 100), abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(a=_times, b=_times)
def test_reproduction_profiles_read_their_own_prompt_format(a, b):
    start, end = min(a, b), max(a, b)
    for name in ("xiaomi-time-r1", "timezero", "videochat-r1"):
        assert parse_span(f"<answer>{start:.2f} to {end:.2f}</answer>", name).span == pytest.approx((start, end))
    assert parse_span(f"The event happens in {start:.2f} - {end:.2f} seconds.", "lmms-eval").span == \
        pytest.approx((start, end))
    for name in ("timelens", "tempsamp-r1"):
        span = parse_span(f"<answer> {start:.2f} to {end:.2f} </answer>", name).span
        assert span == round_span((float(f"{start:.2f}"), float(f"{end:.2f}")), 1.0)


DEGENERATE = {
    "digits": "1" * 20000 + " to " + "2" * 3000,
    "dotted": "1." * 10000,
    "open-tags": "<think>" * 10000 + "<answer>" * 10000,
    "close-tags": "</answer>" * 10000 + "</think>" * 10000,
    "answer-lines": "<answer>\nx\n" * 5000 + "</answer>",
    "labels": "start 1 end " * 8000,
    "repeats": "1 to " * 10000,
}


@pytest.mark.parametrize("kind", list(DEGENERATE))
def test_degenerate_generations_parse_in_linear_time(kind):
    """Upstream regexes (\\d+\\.?\\d*, lazy tag blocks) backtrack cubically or quadratically on long digit runs and
    repeated tags, which repetitive generations produce; ours must stay fast (each case ~0.05 s)."""
    text = DEGENERATE[kind]
    for name in PROFILES:
        began = time.perf_counter()
        result = parse_span(text, name)
        assert time.perf_counter() - began < 1.0, name
        assert result.status in {"ok", "repaired", "failed"}
    began = time.perf_counter()
    parse_highlights(text, 150)
    assert time.perf_counter() - began < 1.0


# ---------------------------------------------------------------------------------------------------------------
# Highlights (TimeChat / TempSamp-R1 QVHighlights answers)
# ---------------------------------------------------------------------------------------------------------------

EXAMPLE = ("The highlight timestamps are in the 82, 84, 86, 88, 90, 92, 94, 96, 98, 100 seconds. "
           "Their saliency scores are 1.3, 1.7, 1.7, 1.7, 1.7, 1.3, 1.7, 2.3, 2.3, 2.3")


def test_highlights_prompt_example():
    result = parse_highlights(EXAMPLE, duration=150)
    assert result.status == "ok" and len(result.saliency) == 75
    expected = {40: 1.3, 41: 1.7, 42: 1.7, 43: 1.7, 44: 1.7, 45: 1.3, 46: 1.7, 47: 2.3, 48: 2.3, 49: 2.3}
    for clip, value in enumerate(result.saliency):
        assert value == pytest.approx(expected.get(clip, 0.0))
    assert result.windows == [[80.0, 100.0]]


def test_highlights_average_per_clip_and_runs():
    text = "<think>t 10</think><answer>The highlight timestamps are in the 0.5, 3, 4, 9 seconds. " \
           "Their saliency scores are 2, 1, 3, 5</answer>"
    result = parse_highlights(text, duration=11)
    # clips: 0.5 -> 0, 3 -> 1, 4 -> 1, 9 -> 4; n = 5
    assert result.saliency == pytest.approx([2.0, 2.0, 0.0, 0.0, 5.0])
    assert result.windows == [[0.0, 4.0], [8.0, 10.0]]
    assert result.status == "ok"


def test_highlights_last_clip_and_window_ends():
    # duration 9.5 -> 4 clips (0..3); t = 7 names clip 3 = [6, 8]; t = 9 names clip 4, past the end
    result = parse_highlights("timestamps 7, 9. saliency 4, 5", duration=9.5)
    assert result.saliency == [0.0, 0.0, 0.0, 4.0]
    assert result.windows == [[6.0, 8.0]]
    assert result.status == "repaired"


def test_highlights_count_mismatch_is_repaired():
    fewer_scores = parse_highlights("The highlight timestamps are in the 2, 4, 6 seconds. Their saliency scores "
                                    "are 3, 1.5", duration=20)
    assert fewer_scores.status == "repaired" and "missing scores" in fewer_scores.detail
    assert fewer_scores.saliency[:4] == pytest.approx([3.0, 1.5, 1.5, 0.0])
    no_scores = parse_highlights("The highlight timestamps are in the 2, 4 seconds.", duration=20)
    assert no_scores.status == "repaired" and no_scores.saliency[:3] == [1.0, 1.0, 0.0]
    extra_scores = parse_highlights("timestamps 2. saliency 3, 4, 5", duration=20)
    assert extra_scores.status == "repaired" and extra_scores.saliency[0] == 3.0


def test_highlights_failures():
    for text in ("I cannot find a highlight.", "", "<think>82, 84</think>"):
        result = parse_highlights(text, duration=150)
        assert result.status == "failed" and result.windows == [] and result.saliency == [0.0] * 75
    past_end = parse_highlights("timestamps 200, 210. saliency 1, 1", duration=150)
    assert past_end.status == "failed"
    assert parse_highlights(EXAMPLE, duration=0).status == "failed"
    assert parse_highlights(None, duration=10).status == "failed"  # type: ignore[arg-type]


def test_highlights_partly_past_the_end():
    result = parse_highlights("timestamps 2, 4, 500. saliency 1, 2, 3", duration=10)
    assert result.status == "repaired" and "past the last clip" in result.detail
    assert result.saliency == [1.0, 2.0, 0.0, 0.0, 0.0]


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=200), duration=st.one_of(st.floats(min_value=-5, max_value=500), st.just(math.nan), st.just(math.inf)))
def test_highlights_never_raise(text, duration):
    result = parse_highlights(text, duration)
    n = int(duration / 2) if math.isfinite(duration) and duration > 0 else 0
    assert len(result.saliency) == n
    for start, end in result.windows:
        assert 0 <= start < end <= duration


# ---------------------------------------------------------------------------------------------------------------
# Hostile 1 MB answers (issue 12, item 1): every profile linear; benchmarks/bench_parse_1mb.py measures more cases
# ---------------------------------------------------------------------------------------------------------------

HOSTILE_1MB = {
    "number-spaces-x": "1" + " " * 999_998 + "x",  # upstream lmms-eval fallback \s*s?\s*: quadratic (hours)
    "number-tabs": "1" + "\t" * 999_997 + "x\n",
    "clock-spaces": "1:11" + " " * 999_995 + "x",
    "think-blocks": "<think>a</think>" * 62_500,
    "text-then-think-blocks": "x" * 500_000 + "<think>a</think>" * 31_250,  # upstream strip_reasoning rebuilds
    "words-and-think-blocks": "y <think>a</think>" * 55_555 + "y",  # the whole string once per block: 20 s, 4 s
    "analysis-blocks": "<analysis></analysis>" * 47_619,
    "think-nested": "<think>" * 66_666 + "</think>" * 66_666,
}


class _Stopped(Exception):
    pass


def _seconds_or_none(fn, limit: float):
    """Seconds fn() took, or None when a timer stopped it after `limit` (the regex engine checks signals)."""
    import signal

    def stop(signum, frame):
        raise _Stopped

    previous = signal.signal(signal.SIGALRM, stop)
    began = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        fn()
    except _Stopped:
        return None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return time.perf_counter() - began


@pytest.mark.parametrize("kind", list(HOSTILE_1MB))
def test_one_megabyte_answers_parse_in_under_a_second_under_every_profile(kind):
    text = HOSTILE_1MB[kind]
    assert 990_000 <= len(text) <= 1_000_000
    for name in PROFILES:
        seconds = _seconds_or_none(lambda n=name: parse_span(text, n), limit=3.0)
        assert seconds is not None and seconds < 1.0, (name, seconds)


def _upstream_strip_loop(result: str, start_tag: str, end_tag: str) -> str:
    """lmms-eval 0.7.2 `strip_reasoning_tags`' loop as written upstream (the reference for `_cut_blocks`)."""
    while start_tag in result and end_tag in result:
        start = result.find(start_tag)
        end = result.find(end_tag, start)
        if end == -1:
            break
        result = result[:start] + result[end + len(end_tag):]
    return result


_TAG_PIECES = st.sampled_from(["<think>", "</think>", "<thi", "nk>", "</", "<", ">", "think", "<analysis>",
                               "</analysis>", "a", "b", "ab", "ba", " ", "x"])
_TAG_PAIRS = st.sampled_from([("<think>", "</think>"), ("<analysis>", "</analysis>"), ("ab", "ba"), ("aa", "a"),
                              ("a", "aa"), ("ab", "b"), ("aba", "ab"), ("x", "x")])


@settings(max_examples=3000, deadline=None)
@given(parts=st.lists(_TAG_PIECES, max_size=16), tags=_TAG_PAIRS)
def test_linear_tag_cutting_equals_the_upstream_loop(parts, tags):
    """Cutting re-forms tags across the junction ("<thi" + "<think>x</think>" + "nk>"); the linear version must
    give exactly what the upstream rebuild-and-search loop gives, for any tags."""
    text = "".join(parts)
    assert parsing._cut_blocks(text, *tags) == _upstream_strip_loop(text, *tags)


@settings(max_examples=2000, deadline=None)
@given(parts=st.lists(st.sampled_from(list("0123456789 .s-–\t\nxS") + [" s ", "ss", "1.5"]), max_size=24))
def test_lmms_fallback_pattern_matches_what_upstreams_matches(parts):
    upstream = re.compile(r"(?<!\d)(\d+(?:\.\d+)?)\s*s?\s*[–-]\s*(\d+(?:\.\d+)?)\s*s?")
    text = "".join(parts)
    assert [(m.span(), m.groups()) for m in parsing._LMMS_FALLBACK.finditer(text)] == \
        [(m.span(), m.groups()) for m in upstream.finditer(text)]
