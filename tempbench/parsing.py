"""Model text -> time spans, under named profiles.

A *profile* is one complete answer-scoring convention: which span is read from the text, which formats are
accepted, and the scoring rules that go with it (threshold operator, rounding). ``canonical`` is
tempbench's own convention; every other profile reproduces one published evaluator, pinned to the exact file
(``Profile.reference``) that it was read from. See ``docs/profiles.md`` for the table of rules.

Pure functions: no I/O, no imports from the rest of tempbench. ``parse_span`` never raises on a string.

Conventions shared by all profiles:

- ``ParsedSpan.span`` is exactly the (start, end) the evaluator would score, in seconds, after the profile's
  own repairs and rounding; ``None`` when the answer cannot be parsed (scored as IoU 0).
- ``status``: ``ok`` (read as written), ``repaired`` (changed: a reversed span swapped), ``failed``.
- Reproduction profiles keep a reversed span as written when their evaluator does (its IoU is then 0 under the
  evaluator's formula and under intersection / (max end - min start)); ``detail`` says so.
- A span with a non-finite number (e.g. 400 digits overflow to inf) is a failure under every profile.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "DEFAULT_PROFILE",
    "PROFILES",
    "ParsedHighlights",
    "ParsedSpan",
    "Profile",
    "format_span",
    "get_profile",
    "parse_highlights",
    "parse_span",
    "round_span",
    "strip_reasoning",
]

DEFAULT_PROFILE = "canonical"


@dataclass(frozen=True)
class ParsedSpan:
    """One parsed answer: ``span`` (start, end) in seconds or None, ``status`` ok|repaired|failed, ``detail``."""

    span: tuple[float, float] | None
    status: str
    detail: str


@dataclass(frozen=True)
class Profile:
    """A scoring convention: how text becomes a span, and how spans are scored.

    ``strict_threshold``: a hit is IoU > θ (instead of IoU >= θ). Every profile counts an unparsable answer as
    IoU 0 in the denominator: no published evaluator reproduced here drops it. ``round_to``: the evaluator rounds predictions to
    multiples of this many seconds (Python ``round``, halves to even); ``parse`` already applies it to spans read
    from text, and ``round_span`` applies it to windows given directly.
    """

    name: str
    description: str
    reference: str
    strict_threshold: bool
    round_to: float | None
    parse: Callable[[str], ParsedSpan]


def _failed(detail: str) -> ParsedSpan:
    return ParsedSpan(None, "failed", detail)


def _finite_span(start: float, end: float, status: str, detail: str) -> ParsedSpan:
    if not (math.isfinite(start) and math.isfinite(end)):
        return _failed(f"non-finite number in span ({start}, {end})")
    return ParsedSpan((float(start), float(end)), status, detail)


def round_span(span: tuple[float, float], unit: float | None) -> tuple[float, float]:
    """Round both ends to multiples of ``unit`` as the published evaluators do: ``round(x / unit) * unit`` with
    Python's ``round`` (halves to even: 2.5 -> 2, 3.5 -> 4). ``unit=None`` returns the span unchanged."""
    if unit is None:
        return (float(span[0]), float(span[1]))
    return (float(round(span[0] / unit) * unit), float(round(span[1] / unit) * unit))


def format_span(start: float, end: float, style: str = "to") -> str:
    """Write a span as a model would (used by tests and by the trainer's ground-truth completions)."""
    templates = {
        "to": "{s:.2f} to {e:.2f}",
        "dash": "{s:.2f} - {e:.2f}",
        "from": "from {s:.2f} to {e:.2f} seconds",
        "between": "between {s:.2f} and {e:.2f}",
        "list": "[{s:.2f}, {e:.2f}]",
        "answer": "<answer> {s:.2f} to {e:.2f} </answer>",
    }
    return templates[style].format(s=start, e=end)


# ---------------------------------------------------------------------------------------------------------------
# canonical: tempbench's convention
# ---------------------------------------------------------------------------------------------------------------

_ANSWER_OPEN = re.compile(r"<answer>", re.IGNORECASE)
_ANSWER_CLOSE = re.compile(r"</answer>", re.IGNORECASE)
_THINK_OPEN = re.compile(r"<think>", re.IGNORECASE)
_THINK_CLOSE = re.compile(r"</think>", re.IGNORECASE)


def _blocks(text: str, opening: re.Pattern, closing: re.Pattern) -> tuple[list[tuple[int, int, int, int]], int | None]:
    """Non-overlapping ``open ... close`` blocks, left to right, each closed by the first close after its open (the
    matches of ``open.*?close`` with DOTALL), as (open start, content start, content end, close end); and the start
    of an open left unclosed after the last block, if any. Linear time: a lazy regex is quadratic on text with
    many unclosed tags (degenerate, repetitive generations)."""
    opens = [(m.start(), m.end()) for m in opening.finditer(text)]
    closes = [(m.start(), m.end()) for m in closing.finditer(text)]
    blocks, unclosed = [], None
    ci = 0
    position = 0
    for start, end in opens:
        if start < position:
            continue
        while ci < len(closes) and closes[ci][0] < end:
            ci += 1
        if ci == len(closes):
            unclosed = start
            break
        blocks.append((start, end, closes[ci][0], closes[ci][1]))
        position = closes[ci][1]
        ci += 1
    return blocks, unclosed


def _canonical_region(text: str) -> tuple[str, str]:
    """The part of the answer that is parsed, and where it came from.

    1. The content of the LAST closed ``<answer>...</answer>`` block; if no block is closed but an ``<answer>`` is
       opened (generation cut off), the text after the last ``<answer>``.
    2. Otherwise the text without ``<think>...</think>`` blocks; an unclosed ``<think>`` hides everything after it
       (the model was still reasoning when it stopped); a ``</think>`` without an opening (chat templates that
       prefill ``<think>``) hides everything before the last one.
    """
    answers, _ = _blocks(text, _ANSWER_OPEN, _ANSWER_CLOSE)
    if answers:
        _, begin, end, _ = answers[-1]
        return text[begin:end], "last <answer> block"
    opens = list(_ANSWER_OPEN.finditer(text))
    if opens:
        return text[opens[-1].end():], "unclosed <answer> (text after it)"
    thinks, unclosed = _blocks(text, _THINK_OPEN, _THINK_CLOSE)
    pieces, position = [], 0
    for start, _, _, end in thinks:
        pieces.append(text[position:start])
        position = end
    if unclosed is not None:
        pieces.append(text[position:unclosed])
        where = "text before an unclosed <think>"
    else:
        pieces.append(text[position:])
        where = "text outside <think>" if thinks else "whole text"
    rest = " ".join(pieces)
    closes = list(_THINK_CLOSE.finditer(rest))
    if closes:
        rest = rest[closes[-1].end():]
        where = "text after the last </think>"
    return rest, where


# One time value: a clock time (h:mm:ss, m:ss, with optional decimals) or a plain number, with an optional unit.
# Not part of a longer token: "Qwen2.5", "1080p", "5th", "v3" and "3:" are not times.
_C_CLOCK = r"(?:[0-9]{1,2}:[0-5][0-9]:[0-5][0-9]|[0-9]{1,3}:[0-5][0-9])(?:\.[0-9]+)?"
_C_NUM = r"[0-9]+(?:\.[0-9]*)?"  # "3." (sentence end) is 3
_C_UNIT = r"(?:\s*(?:seconds?|secs?|s)\b)"


def _c_time(name: str) -> str:
    return rf"(?<![\w.:])(?P<{name}>{_C_CLOCK}|{_C_NUM}){_C_UNIT}?(?![\w:]|\.[0-9])"


_C_SEP = r"(?:\s*[-\u2010\u2011\u2012\u2013\u2014\u2015\u2212~\uff5e]\s*|\s+(?:to|until|till|through)\s+)"
_C_FILL = r"[^0-9<>]{0,30}?"
_CANONICAL = re.compile(
    "|".join(
        [
            rf"(?P<between>\bbetween\s+{_c_time('b1')}\s+and\s+{_c_time('b2')})",
            rf"(?P<pair>[\[(]\s*{_c_time('p1')}\s*,\s*{_c_time('p2')}\s*[\])])",
            rf"(?P<label>\b(?:start|begin)\w*{_C_FILL}{_c_time('l1')}[^0-9<>]{{0,60}}?"
            rf"\b(?:end|finish|stop)\w*{_C_FILL}{_c_time('l2')})",
            rf"(?P<range>{_c_time('r1')}{_C_SEP}{_c_time('r2')})",
        ]
    ),
    re.IGNORECASE,
)
_C_ANY_TIME = re.compile(_c_time("t"), re.IGNORECASE)
_FORM_NAMES = {"between": "between S and E", "pair": "[S, E] pair", "label": "start ... end ... labels",
               "range": "S <sep> E range"}


def _time_value(token: str) -> float:
    """Seconds of a time token: '75.5' -> 75.5, '1:15.5' -> 75.5, '1:02:03' -> 3723."""
    parts = token.split(":")
    value = 0.0
    for part in parts:
        value = value * 60 + float(part)
    return value


def _parse_canonical(text: str) -> ParsedSpan:
    """tempbench's convention (docs/profiles.md): the FIRST span in the answer region, any common format."""
    region, where = _canonical_region(text)
    match = _CANONICAL.search(region)
    if match is None:
        n = len(_C_ANY_TIME.findall(region))
        if n == 0:
            return _failed(f"no time value in {where}")
        return _failed(f"{n} time value(s) in {where} but no start/end pair")
    form = match.lastgroup
    keys = {"between": ("b1", "b2"), "pair": ("p1", "p2"), "label": ("l1", "l2"), "range": ("r1", "r2")}[form]
    start, end = _time_value(match.group(keys[0])), _time_value(match.group(keys[1]))
    detail = f"{_FORM_NAMES[form]} in {where}"
    if start > end:
        return _finite_span(end, start, "repaired", detail + "; reversed span swapped")
    return _finite_span(start, end, "ok", detail)


# ---------------------------------------------------------------------------------------------------------------
# Time-R1 (xiaomi-research/time-r1), TimeZero, VideoChat-R1: the same extraction function
# ---------------------------------------------------------------------------------------------------------------

# "<number> to <number>" or "<number> and <number>" with exactly one space each side; \d is Unicode as in Python.
# The evaluators write the number as \d+\.?\d*; \d+(?:\.\d*)? matches the same strings and, because a number must be
# followed by a space here (or is greedy at the end), the same matches, without cubic backtracking on long digit runs.
# (?<!\d): a match starting inside a digit run would also match from the run's first digit, which findall tries
# first, and no match ends just before a digit; so the lookbehind changes no result and makes the scan linear.
_R1_PAIR = re.compile(r"(?<!\d)(\d+(?:\.\d*)?) (to|and) (\d+(?:\.\d*)?)")


def _parse_r1_last(text: str) -> ParsedSpan:
    """The LAST non-overlapping "N to N" / "N and N" match anywhere in the text (reasoning included).

    The evaluators then look inside the first single-line <answer>...</answer> for the same pattern; any match there
    is also a match in the whole text, so that second step never finds anything new and is not reproduced.
    A reversed span is kept as written (their IoU gives it 0).
    """
    matches = _R1_PAIR.findall(text)
    if not matches:
        return _failed('no "N to N" / "N and N" (single spaces) anywhere in the text')
    first, word, second = matches[-1]
    start, end = float(first), float(second)
    detail = f'last of {len(matches)} "N {word} N" match(es)'
    if start > end:
        detail += "; reversed, kept as written (the evaluator scores IoU 0)"
    return _finite_span(start, end, "ok", detail)


# ---------------------------------------------------------------------------------------------------------------
# lmms-eval 0.7.2, charades_sta task
# ---------------------------------------------------------------------------------------------------------------

_LMMS_REASONING_TAGS = (("<think>", "</think>"), ("<analysis>", "</analysis>"))


def strip_reasoning(text: str, tag_pairs=_LMMS_REASONING_TAGS) -> str:
    """lmms-eval's reasoning-tag stripping (default ``--reasoning_tags`` of 0.7.2), case-sensitive.

    For each pair: repeatedly cut from the first start tag to the next end tag; then, if an end tag remains with no
    start tag, keep only the text after the last end tag. Finally strip whitespace. Upstream rebuilds the string
    once per cut (quadratic on many blocks); ``_cut_blocks`` gives the same result in linear time.
    """
    result = text
    for start_tag, end_tag in tag_pairs:
        result = _cut_blocks(result, start_tag, end_tag)
        if end_tag in result and start_tag not in result:
            result = result.rsplit(end_tag, 1)[-1]
    return result.strip()


def _cut_blocks(text: str, start_tag: str, end_tag: str) -> str:
    """``while S in r and E in r: i = r.find(S); j = r.find(E, i); if j < 0: break; r = r[:i] + r[j + len(E):]``,
    in linear time.

    The text is consumed left to right: ``kept`` is the output so far, which never holds a whole start tag (it is
    always the part before the first one). After a cut, a start tag can only reappear across the junction of
    ``kept`` and the unread text, i.e. starting in the last ``len(S) - 1`` kept characters: that small window is
    checked first, then the unread text is searched from where the last cut ended. Each cut removes at least one
    character and every character is searched past once.
    """
    if not start_tag or not end_tag:
        raise ValueError("empty reasoning tag")
    ls, le = len(start_tag), len(end_tag)
    kept: list[str] = []  # chunks; their concatenation holds no whole start tag
    kept_len = 0
    q = 0  # unread text starts here

    def last(n: int) -> str:
        out, have = [], 0
        for chunk in reversed(kept):
            if have >= n:
                break
            out.append(chunk)
            have += len(chunk)
        return "".join(reversed(out))[-n:] if n else ""

    def truncate(n: int) -> None:  # keep the first n kept characters
        nonlocal kept_len
        while kept_len > n:
            chunk = kept.pop()
            kept_len -= len(chunk)
            if kept_len < n:
                kept.append(chunk[: n - kept_len])
                kept_len = n

    while True:
        head = last(min(kept_len, ls - 1))
        i = (head + text[q:q + ls - 1]).find(start_tag)
        if i != -1:  # a start tag across the junction, starting at kept[cut:]
            cut = kept_len - len(head) + i
            pre = head[i:]  # its kept characters (fewer than len(S))
            j = (pre + text[q:q + le - 1]).find(end_tag)
            if j != -1:  # the end tag starts among those kept characters
                if j + le <= len(pre):
                    rest = pre[j + le:]
                    truncate(cut)
                    if rest:
                        kept.append(rest)
                        kept_len += len(rest)
                    continue
                resume = q + j + le - len(pre)
            else:
                e = text.find(end_tag, q)
                if e == -1:
                    break
                resume = e + le
            truncate(cut)
            q = resume
            continue
        p = text.find(start_tag, q)
        if p == -1:
            break
        e = text.find(end_tag, p)
        if e == -1:
            break
        if p > q:
            kept.append(text[q:p])
            kept_len += p - q
        q = e + le
    return "".join(kept) + text[q:]


_LMMS_EXAMPLE = "a specific example is : 20.8 - 30.0 seconds"
_LMMS_KEYWORDS = ("starts", "ends", "happens in", "start time", "end time", "start", "end", "happen")
_LMMS_CLOCK_RANGE = re.compile(r"\b(\d{1,2}:\d{2}(?::\d{2})?)\s*[–-]\s*(\d{1,2}:\d{2}(?::\d{2})?)\b")
_LMMS_RANGE = re.compile(r"(?<!\d)(\d+(?:\.\d+)?)\s*[–-]\s*(\d+(?:\.\d+)?)")  # (?<!\d): see _R1_PAIR
_LMMS_NUMBER = re.compile(r"\b(\d+(?:\.\d+)?)\b")
_LMMS_CLOCK = re.compile(r"\b(\d{1,2}:\d{2}(?::\d{2})?)\b")
# upstream writes \s*s?\s* between the number and the dash: the two \s* can split a run of n spaces n ways, so a
# number followed by a long run of spaces and no dash backtracks quadratically (1 MB: hours). \s*(?:s\s*)? matches
# the same strings (whitespace, at most one "s", whitespace) and the same spans, and tries each split once.
_LMMS_FALLBACK = re.compile(r"(?<!\d)(\d+(?:\.\d+)?)\s*(?:s\s*)?[–-]\s*(\d+(?:\.\d+)?)\s*s?")


def _lmms_extract(paragraph: str) -> tuple[list[tuple[float, float]], str]:
    """The cascade of lmms-eval's ``extract_time`` (charades_sta/utils.py), returning all candidate pairs."""
    paragraph = paragraph.lower().replace(_LMMS_EXAMPLE, "").replace("to", "-")
    sentences = re.split(r"[!?\n]", paragraph)
    candidates = [s for s in sentences if any(k in s for k in _LMMS_KEYWORDS)] or sentences

    for sentence in candidates:
        found = _LMMS_CLOCK_RANGE.findall(sentence)
        if found:
            return [(_time_value(a), _time_value(b)) for a, b in found], "clock range"
    for sentence in candidates:
        found = _LMMS_RANGE.findall(sentence)
        if found:
            return [(float(a), float(b)) for a, b in found], "N - N range"
    times: list[float] = []
    for sentence in candidates:
        times.extend(_time_value(t) for t in _LMMS_CLOCK.findall(sentence))
    if len(times) >= 2:
        return [(times[i], times[i + 1]) for i in range(0, len(times) - 1, 2)], "clock times paired"
    times = []
    for sentence in candidates:
        found = _LMMS_NUMBER.findall(sentence)
        if found:
            times.append(float(found[0]))
    if len(times) >= 2:
        return [(times[i], times[i + 1]) for i in range(0, len(times) - 1, 2)], "first numbers of sentences paired"
    for sentence in candidates:
        found = _LMMS_FALLBACK.findall(sentence)
        if found:
            return [(float(a), float(b)) for a, b in found], "N s - N s fallback"
    return [], ""


def _parse_lmms(text: str) -> ParsedSpan:
    """lmms-eval 0.7.2 charades_sta: strip reasoning tags, run the extract_time cascade, take the FIRST pair and
    order it (the evaluator swaps a reversed pair)."""
    pairs, how = _lmms_extract(strip_reasoning(text))
    if not pairs:
        return _failed("extract_time found no pair")
    start, end = pairs[0]
    detail = f"first pair, {how}"
    if not end > start:
        if start != end:
            return _finite_span(end, start, "repaired", detail + "; reversed span swapped by the evaluator")
        return _finite_span(end, start, "ok", detail)
    return _finite_span(start, end, "ok", detail)


# ---------------------------------------------------------------------------------------------------------------
# TimeLens (TencentARC/TimeLens) and the TempSamp-R1 re-implementation's TimeLens-Bench evaluator
# ---------------------------------------------------------------------------------------------------------------

_TL_CLOCK = re.compile(r"\b(\d{1,2}:\d{2}:\d{2}(?:\.\d+)?|\d{1,2}:\d{2}(?:\.\d+)?)\b")
_TL_RANGES = (
    # upstream writes \d+\.?\d*; same strings and matches (see _R1_PAIR), linear backtracking
    (re.compile(r"(?<!\d)(\d+(?:\.\d*)?)\s*-\s*(\d+(?:\.\d*)?)"), "N - N range"),
    (re.compile(r"(?<!\d)(\d+(?:\.\d*)?)\s+to\s+(\d+(?:\.\d*)?)"), "N to N range"),
)
_TL_NUMBER = re.compile(r"\b(\d+\.\d+|\d+)\b")


def _tl_clock_seconds(token: str) -> float:
    parts = token.split(":")
    if len(parts) == 3:
        return int(parts[0]) * 3600 + int(parts[1]) * 60 + float(parts[2])
    return int(parts[0]) * 60 + float(parts[1])


def _timelens_extract(paragraph: str) -> tuple[list[tuple[float, float]], str]:
    """TimeLens ``extract_time`` (timelens/utils.py): clock times paired, else "N - N", else "N to N", else all
    numbers paired in order. Odd leftovers are dropped."""
    paragraph = paragraph.lower()
    clocks = _TL_CLOCK.findall(paragraph)
    clocks = clocks[: len(clocks) // 2 * 2]
    if clocks:
        values = [_tl_clock_seconds(t) for t in clocks]
        return [(values[i], values[i + 1]) for i in range(0, len(values), 2)], "clock times paired"
    for pattern, how in _TL_RANGES:
        found = pattern.findall(paragraph)
        if found:
            return [(float(a), float(b)) for a, b in found], how
    numbers = _TL_NUMBER.findall(paragraph)
    numbers = numbers[: len(numbers) // 2 * 2]
    return [(float(numbers[i]), float(numbers[i + 1])) for i in range(0, len(numbers), 2)], "numbers paired"


def _rounded_first(pairs: list[tuple[float, float]], how: str, where: str) -> ParsedSpan:
    if not pairs:
        return _failed(f"extract_time found no pair in {where} (the evaluator scores a dummy window, IoU 0)")
    start, end = pairs[0]
    if not (math.isfinite(start) and math.isfinite(end)):
        return _failed(f"non-finite number in span ({start}, {end})")
    start, end = round_span((start, end), 1.0)
    detail = f"first pair, {how}, in {where}; rounded to whole seconds"
    if start > end:
        detail += "; reversed, kept as written (the evaluator scores IoU 0)"
    return _finite_span(start, end, "ok", detail)


def _parse_timelens(text: str) -> ParsedSpan:
    """TimeLens evaluation: the whole answer, extract_time cascade, FIRST pair, rounded to whole seconds."""
    pairs, how = _timelens_extract(text)
    return _rounded_first(pairs, how, "whole text")


def _first_single_line_answer(lowered: str) -> str | None:
    """``re.search(r"<answer>\\s*(.*?)\\s*</answer>", text).group(1)`` (no DOTALL), in linear time.

    A match must start at some ``<answer>``; from there the lazy group can only end at the FIRST ``</answer>``
    after it (reaching a later one means crossing that one, which is not whitespace), and it succeeds iff no newline
    lies in the content once leading and trailing whitespace are removed; the group is that stripped content.
    Python's ``\\s`` and ``str.isspace`` agree on what whitespace is.
    """
    closes = [m.start() for m in re.finditer("</answer>", lowered)]
    if not closes:
        return None
    newlines = [i for i, ch in enumerate(lowered) if ch == "\n"]
    ci = 0
    for opening in re.finditer("<answer>", lowered):
        while ci < len(closes) and closes[ci] < opening.end():
            ci += 1
        if ci == len(closes):
            return None
        content = lowered[opening.end():closes[ci]]
        stripped = content.strip()
        if not stripped:
            return ""
        first = opening.end() + (len(content) - len(content.lstrip()))
        last = first + len(stripped)
        k = _bisect_left(newlines, first)
        if k == len(newlines) or newlines[k] >= last:
            return stripped
    return None


def _bisect_left(values: list[int], x: int) -> int:
    lo, hi = 0, len(values)
    while lo < hi:
        mid = (lo + hi) // 2
        if values[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _parse_tempsamp(text: str) -> ParsedSpan:
    """TempSamp-R1 eval_timelens_bench.py: lower-case, the FIRST <answer> block whose content is on one line (its
    regex has no DOTALL; newlines around the content are fine), else the whole text; then the TimeLens cascade,
    FIRST pair, rounded to whole seconds."""
    lowered = text.lower()
    answer = _first_single_line_answer(lowered)
    where = "first <answer> block" if answer is not None else "whole text"
    pairs, how = _timelens_extract(answer if answer is not None else lowered)
    return _rounded_first(pairs, how, where)


# ---------------------------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------------------------

_R1_REFERENCE_NOTE = (
    "Reads the LAST 'N to N' or 'N and N' (single spaces, no units, no clock times) anywhere in the output, "
    "reasoning included; a reversed span is kept and scores IoU 0; an unparsable answer counts as IoU 0."
)

PROFILES: dict[str, Profile] = {
    "canonical": Profile(
        name="canonical",
        description=(
            "tempbench's convention: the last <answer> block if any, else the text outside <think>; the FIRST "
            "span in any common format (S to E, S - E with any dash, from/between, units, clock times, [S, E]); "
            "reversed spans swapped; no rounding; IoU >= θ; failures count as IoU 0."
        ),
        reference="tempbench (docs/profiles.md)",
        strict_threshold=False,
        round_to=None,
        parse=_parse_canonical,
    ),
    "xiaomi-time-r1": Profile(
        name="xiaomi-time-r1",
        description="Time-R1 (xiaomi-research). " + _R1_REFERENCE_NOTE + " Hits use IoU > θ (strict).",
        reference=(
            "xiaomi-research/time-r1@7f2b5944a0c35993da80634a459d5a48a3a5431e evaluate.py (extract_answer) + "
            "src/vllm_inference/eval_all.py (calc_score)"
        ),
        strict_threshold=True,
        round_to=None,
        parse=_parse_r1_last,
    ),
    "timezero": Profile(
        name="timezero",
        description=(
            "TimeZero (www-Ye/TimeZero). " + _R1_REFERENCE_NOTE + " Hits use IoU >= θ. Queries whose inference "
            "raised (missing video, decoding error) are skipped by the script; that is not a parsing matter."
        ),
        reference="www-Ye/TimeZero@a7c3523367cbff9f166baae10bc34568cffc26f3 evaluate.py (parse_timestamp_output)",
        strict_threshold=False,
        round_to=None,
        parse=_parse_r1_last,
    ),
    "videochat-r1": Profile(
        name="videochat-r1",
        description=(
            "VideoChat-R1 (OpenGVLab): the TimeZero evaluator unchanged (same extraction, IoU >= θ, failures as "
            "IoU 0), plus a per-query JSONL log. " + _R1_REFERENCE_NOTE
        ),
        reference=(
            "OpenGVLab/VideoChat-R1@73b2ea9ac83ad5c0bcd893bffd1cbb2e7c167068 src_eval/evaluate_grounding.py "
            "(parse_timestamp_output)"
        ),
        strict_threshold=False,
        round_to=None,
        parse=_parse_r1_last,
    ),
    "lmms-eval": Profile(
        name="lmms-eval",
        description=(
            "lmms-eval 0.7.2 charades_sta: strips <think>/<analysis> blocks (default --reasoning_tags), "
            "lower-cases, replaces every 'to' by '-', then per sentence (split at ! ? newline, keyword sentences "
            "first): clock ranges, 'N - N', clock times paired, first numbers paired, 'Ns - Ns'; FIRST pair, "
            "swapped if reversed; IoU >= θ; failures count as IoU 0. (Its aggregation keys answers by "
            "video>>>caption>>>timestamp, so exact duplicate queries would collapse; Charades-STA test has none.)"
        ),
        reference=(
            "EvolvingLMMs-Lab/lmms-eval@cb45ac4d4a667ea5ef89c7a148bff69b3489b981 (tag v0.7.2) "
            "lmms_eval/tasks/charades_sta/utils.py (extract_time) + lmms_eval/api/reasoning.py"
        ),
        strict_threshold=False,
        round_to=None,
        parse=_parse_lmms,
    ),
    "timelens": Profile(
        name="timelens",
        description=(
            "TimeLens: lower-cases the whole answer; clock times paired, else 'N - N' (hyphen), else 'N to N', "
            "else all numbers paired; FIRST pair; rounded to whole seconds (Python round, halves to even); a "
            "reversed span is kept (IoU 0); a failure becomes the dummy window [duration+10, duration+20] "
            "(IoU 0 unless the ground truth runs 10 s past the duration); IoU >= θ."
        ),
        reference=(
            "TencentARC/TimeLens@5d90c067246ddb11db3203adbb0085bdc48d9e5e timelens/utils.py (extract_time) + "
            "evaluation/eval_dataloader.py (rounding, dummy window) + evaluation/compute_metrics.py"
        ),
        strict_threshold=False,
        round_to=1.0,
        parse=_parse_timelens,
    ),
    "tempsamp-r1": Profile(
        name="tempsamp-r1",
        description=(
            "TempSamp-R1 public re-implementation (TimeLens-Bench evaluator): lower-cases; the FIRST "
            "<answer>...</answer> whose content has no inner newline (its regex has no DOTALL), else the whole "
            "text; then the TimeLens cascade; FIRST pair; rounded to whole seconds; "
            "failures -> dummy window (IoU 0); IoU >= θ. The paper-era evaluator was never released."
        ),
        reference=(
            "ZhangZikun6666/TempSamp-R1@55a92280a93474d694e215bbb4705d0a1f2efc04 scripts/eval/eval_timelens_bench.py "
            "(extract_time, compute_iou)"
        ),
        strict_threshold=False,
        round_to=1.0,
        parse=_parse_tempsamp,
    ),
}


def get_profile(name: str) -> Profile:
    """The profile called ``name``; ValueError listing the known names otherwise."""
    try:
        return PROFILES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown parsing profile {name!r}; known: {', '.join(PROFILES)}") from None


def parse_span(text: str, profile: str = DEFAULT_PROFILE) -> ParsedSpan:
    """Parse one model answer under ``profile``. Never raises on a string; ValueError for an unknown profile."""
    prof = get_profile(profile)
    if not isinstance(text, str):
        return _failed(f"no text (got {type(text).__name__})")
    try:
        return prof.parse(text)
    except (ValueError, OverflowError, RecursionError) as exc:  # e.g. int() of a huge digit string
        return _failed(f"unparsable number: {exc}")


# ---------------------------------------------------------------------------------------------------------------
# Highlight answers (TimeChat / TempSamp-R1 QVHighlights format)
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedHighlights:
    """``saliency``: one score per 2-s clip (0 for clips never named); ``windows``: runs of named clips."""

    saliency: list[float]
    windows: list[list[float]]
    status: str
    detail: str


_HL_NUMBER = re.compile(r"(?<![\w.])[0-9]+(?:\.[0-9]+)?(?![\w]|\.[0-9])")
_HL_SALIENCY = re.compile(r"saliency|scores?\b", re.IGNORECASE)
_HL_TIMESTAMPS = re.compile(r"timestamps?|highlights?", re.IGNORECASE)


def parse_highlights(text: str, duration: float, clip_len: float = 2.0) -> ParsedHighlights:
    """Parse "The highlight timestamps are in the 82, 84, ... seconds. Their saliency scores are 1.3, 1.7, ...".

    Region: as ``canonical`` (last <answer> block, else text outside <think>). Timestamps are the numbers after the
    last "timestamp"/"highlight" word that precedes the first "saliency"/"score" word; scores are the numbers after
    that word. Timestamp t names clip ``max(0, int((t - 1) / clip_len))`` (clip_len 2: TempSamp-R1's mapping);
    scores of one clip are averaged; clips never named score 0; clips at or past ``int(duration / clip_len)`` are
    dropped. Windows: maximal runs of consecutive named clips i..j -> [clip_len*i, min(clip_len*(j+1), duration)].

    Count mismatch (status ``repaired``): timestamps and scores are paired in order; timestamps without a score get
    the smallest given score (so they rank above unnamed clips and below every scored clip), or 1.0 when no score
    is given at all; extra scores are ignored. No timestamp inside the video -> ``failed`` (all zeros, no window).
    """
    n = int(duration / clip_len) if isinstance(duration, (int, float)) and math.isfinite(duration) and duration > 0 \
        else 0
    if not isinstance(text, str):
        return ParsedHighlights([0.0] * n, [], "failed", "no text")
    if n == 0:
        return ParsedHighlights([], [], "failed", f"no clip in a video of duration {duration}")
    region, where = _canonical_region(text)
    marker = _HL_SALIENCY.search(region)
    times_text = region[: marker.start()] if marker else region
    scores_text = region[marker.end():] if marker else ""
    heads = list(_HL_TIMESTAMPS.finditer(times_text))
    if heads:
        times_text = times_text[heads[-1].end():]
    times = [float(x) for x in _HL_NUMBER.findall(times_text)]
    scores = [float(x) for x in _HL_NUMBER.findall(scores_text)]
    times = [t for t in times if math.isfinite(t)]
    scores = [s for s in scores if math.isfinite(s)]
    if not times:
        return ParsedHighlights([0.0] * n, [], "failed", f"no highlight timestamp in {where}")

    notes = []
    status = "ok"
    if len(scores) != len(times):
        status = "repaired"
        fill = min(scores) if scores else 1.0
        notes.append(f"{len(times)} timestamps but {len(scores)} scores; missing scores set to {fill:g}")
        scores = (scores + [fill] * len(times))[: len(times)]
    sums = [0.0] * n
    counts = [0] * n
    dropped = 0
    for t, s in zip(times, scores):
        clip = max(0, int((t - 1) / clip_len))
        if clip >= n:
            dropped += 1
            continue
        sums[clip] += s
        counts[clip] += 1
    if dropped:
        status = "repaired"
        notes.append(f"{dropped} timestamp(s) past the last clip dropped")
    if not any(counts):
        return ParsedHighlights([0.0] * n, [], "failed", f"no highlight timestamp inside the video in {where}")
    saliency = [sums[i] / counts[i] if counts[i] else 0.0 for i in range(n)]
    windows: list[list[float]] = []
    i = 0
    while i < n:
        if counts[i]:
            j = i
            while j + 1 < n and counts[j + 1]:
                j += 1
            windows.append([clip_len * i, min(clip_len * (j + 1), float(duration))])
            i = j + 1
        else:
            i += 1
    named = sum(1 for c in counts if c)
    detail = f"{named} clip(s) named in {where}" + ("; " + "; ".join(notes) if notes else "")
    return ParsedHighlights(saliency, windows, status, detail)
