"""Named prompt templates for video temporal grounding, each identified by name and sha256.

Templates use `{query}` (the sentence query) and optionally `{duration}` (video length in seconds). Sources are
cited per template. The text of a template is part of a run's provenance: `run.json` stores the name and
`prompt_sha256(name)`, the sha256 of the UTF-8 template text (before substitution).
"""

from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass, field

from tempbench.errors import UsageError


@dataclass(frozen=True)
class Prompt:
    """A prompt template: `template` with `{query}` / `{duration}` fields, its source and the answer format."""

    name: str
    template: str
    source: str
    kind: str = "grounding"  # "grounding" | "highlights"
    cot: bool = False
    answer_format: str = "start to end"
    notes: str = ""
    fields: tuple[str, ...] = field(default=())

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.template.encode("utf-8")).hexdigest()


_TEMPSAMP = "TempSamp-R1 (arXiv 2509.18056), appendix prompts"

_GROUNDING_PLAIN = (
    'To accurately pinpoint the event "{query}" in the video, determine the precise time period of the event. '
    'Provide the start and end times (in seconds, precise to two decimal places) in the format "start time to end '
    'time" within the <answer> </answer> tags. For example: "12.54 to 17.83".'
)
_GROUNDING_COT = (
    'To accurately pinpoint the event "{query}" in the video, determine the precise time period of the event. '
    "Output your thought process within the <think> </think> tags, including analysis with either specific "
    "timestamps (xx.xx) or time ranges (xx.xx to xx.xx) in <timestep> </timestep> tags. Then, provide the start "
    'and end times (in seconds, precise to two decimal places) in the format "start time to end time" within the '
    '<answer> </answer> tags. For example: "12.54 to 17.83".'
)
_HL_HEAD = (
    "Please find the highlight contents in the video described by a sentence query, determining the highlight "
    "timestamps and its saliency score on a scale from 1 to 5. "
)
_HL_PLAIN_MID = (
    "Provide the highlight timestamps and its saliency score within the <answer> </answer> tags. "
)
_HL_COT_MID = (
    "Output your thought process within the <think> </think> tags, including analysis with either highlight "
    "timestamps. Then, provide the highlight timestamps and its saliency score within the <answer> </answer> tags. "
)
_HL_TAIL = (
    "The output format should be like: 'The highlight timestamps are in the 82, 84, 86, 88, 90, 92, 94, 96, 98, "
    "100 seconds. Their saliency scores are 1.3, 1.7, 1.7, 1.7, 1.7, 1.3, 1.7, 2.3, 2.3, 2.3'. Now I will give you "
    "the sentence query: '{query}'. Please return the query-based highlight timestamps and salient scores."
)

_PROMPT_LIST: list[Prompt] = [
    Prompt("tempsamp-r1-plain", _GROUNDING_PLAIN, _TEMPSAMP),
    Prompt("tempsamp-r1-cot", _GROUNDING_COT, _TEMPSAMP, cot=True),
    Prompt(
        "tempsamp-r1-highlight",
        _HL_HEAD + _HL_PLAIN_MID + _HL_TAIL,
        _TEMPSAMP,
        kind="highlights",
        answer_format="highlight timestamps + saliency scores",
    ),
    Prompt(
        "tempsamp-r1-highlight-cot",
        _HL_HEAD + _HL_COT_MID + _HL_TAIL,
        _TEMPSAMP,
        kind="highlights",
        cot=True,
        answer_format="highlight timestamps + saliency scores",
    ),
]


_TZ_SRC = "TimeZero (arXiv 2503.13377v1), github.com/www-Ye/TimeZero evaluate.py GROUND_TEMPLATE"
_TR1_SRC = "Time-R1 (arXiv 2503.13377v2), github.com/xiaomi-research/time-r1 src/vllm_inference/data/config.py"
_TIMEZERO_COT = (
    'To accurately pinpoint the event "{query}" in the video, determine the precise time period of the event.\n\n'
    "Output your thought process within the <think> </think> tags, including analysis with either specific "
    "timestamps (xx.xx) or time ranges (xx.xx to xx.xx) in <timestep> </timestep> tags.\n\n"
    "Then, provide the start and end times (in seconds, precise to two decimal places) in the format \"start time to "
    'end time" within the <answer> </answer> tags. For example: "12.54 to 17.83".'
)
_TIMER1_PLAIN = (
    'To accurately pinpoint the event "{query}" in the video, determine the precise time period of the event.\n\n'
    "Provide the start and end times (in seconds, precise to two decimal places) in the format \"start time to end "
    'time" within the <answer> </answer> tags. For example: "12.54 to 17.83".'
)
_TIMER1_COT = (
    'To accurately pinpoint the event "{query}" in the video, determine the precise time period of the event.\n\n'
    "Output your thought process within the <think> </think> tags, including analysis with either specific time "
    "ranges (xx.xx to xx.xx) in <timestep> </timestep> tags.\n\n"
    "Then, provide the start and end times (in seconds, precise to two decimal places) in the format \"start time to "
    'end time" within the <answer> </answer> tags. For example: "12.54 to 17.83".'
)
# lmms-eval charades_sta: f"{pre_prompt}{caption}. {post_prompt}" (typo "seonds" is in the original)
_LMMS_CHARADES = (
    "Please find the visual event described by a sentence in the video, determining its starting and ending times. "
    "The format should be: 'The event happens in the start time - end time'. For example, The event 'person turn a "
    "light on' happens in the 24.3 - 30.4 seonds. Now I will give you the textual sentence: {query}. "
    "Please return its start time and end time."
)
_TIMELENS = (
    "Please find the visual event described by the sentence '{query}', determining its starting and ending times. "
    "The format should be: 'The event happens in <start time> - <end time> seconds'."
)
_TIMELENS_SRC = "TimeLens (TencentARC/TimeLens evaluation/utils.py GROUNDER_PROMPT)"

_PROMPT_LIST += [
    Prompt("timezero-cot", _TIMEZERO_COT, _TZ_SRC, cot=True,
           notes="Same sentences as tempsamp-r1-cot, separated by blank lines (the text TimeZero evaluated with)."),
    Prompt("time-r1-plain", _TIMER1_PLAIN, _TR1_SRC + ' DEFAULT_TG_PROMPT["default"]'),
    Prompt("time-r1-cot", _TIMER1_COT, _TR1_SRC + ' DEFAULT_TG_PROMPT["r1"]', cot=True),
    Prompt("lmms-eval-charades", _LMMS_CHARADES,
           "lmms-eval lmms_eval/tasks/charades_sta (charades.yaml pre_prompt/post_prompt, utils.py doc_to_text)",
           answer_format="start - end",
           notes="Used for the lmms-eval zero-shot Qwen2.5-VL numbers; answers look like '24.3 - 30.4'."),
    Prompt("timelens", _TIMELENS, _TIMELENS_SRC, answer_format="The event happens in S - E seconds"),
    Prompt("timelens-7b-timestamps",
           "You are given a video with multiple frames. The numbers before each video frame indicate its sampling "
           "timestamp (in seconds). " + _TIMELENS,
           _TIMELENS_SRC.replace("GROUNDER_PROMPT", "GROUNDER_PROMPT_TEXT_TIMESTAMP"),
           answer_format="The event happens in S - E seconds",
           notes="TimeLens-7B interleaves textual timestamps with frames; tempbench's HF adapter does not, so only "
                 "the openai frames mode (which labels each frame) matches its input format."),
]


_PROMPT_LIST += [
    Prompt("query-only", "{query}", "tempbench: the query alone, for models trained here on generated tasks",
           answer_format="<answer> start to end </answer> (learned in training, not asked for)",
           notes="A model trained with this prompt (benchmarks/train_tiny_synthetic.py --prompt query-only) sees no "
                 "instruction text: the query's words are the only text beside the video."),
]


def _fields(template: str) -> tuple[str, ...]:
    return tuple(sorted({f for _, f, _, _ in string.Formatter().parse(template) if f}))


PROMPTS: dict[str, Prompt] = {}
for _p in _PROMPT_LIST:
    PROMPTS[_p.name] = Prompt(**{**_p.__dict__, "fields": _fields(_p.template)})


def get_prompt(name: str) -> Prompt:
    """The prompt called `name`; `UsageError` naming the known prompts otherwise."""
    try:
        return PROMPTS[name]
    except KeyError:
        raise UsageError(
            f"unknown prompt {name!r}", hint="known prompts: " + ", ".join(sorted(PROMPTS))
        ) from None


def prompt_sha256(name: str) -> str:
    """sha256 (hex) of the UTF-8 template text of prompt `name`."""
    return get_prompt(name).sha256


def load_prompt(name_or_file: str) -> Prompt:
    """A registered prompt by name, else a template file (UTF-8 text with `{query}` and optionally `{duration}`);
    a file's prompt is named by its path and identified, like every prompt, by the sha256 of its text."""
    if name_or_file in PROMPTS:
        return PROMPTS[name_or_file]
    from pathlib import Path

    from tempbench import io

    path = Path(name_or_file)
    if not path.is_file():
        get_prompt(name_or_file)  # the unknown-name error, listing the registered prompts
    template = io.decode_text(io.read_bytes(path, "a prompt template file"), path, "a prompt template")
    fields = tuple(sorted(set(re.findall(r"\{(query|duration)\}", template))))
    if "query" not in fields:
        raise UsageError(f"{path}: the template has no {{query}} field",
                         hint="write the query's place as {query} (and the video's length as {duration})")
    return Prompt(name=str(path), template=template, source=f"file {path}", fields=fields)


def render(prompt: str | Prompt, query: str, duration: float | None = None) -> str:
    """The prompt text for one query. `duration` (seconds) is required only by templates that use it."""
    p = prompt if isinstance(prompt, Prompt) else get_prompt(prompt)
    if "duration" in p.fields and duration is None:
        raise UsageError(f"prompt {p.name!r} needs the video duration", hint="pass duration=<seconds>")
    values = {"query": query}
    if duration is not None:
        values["duration"] = _fmt_duration(duration)
    # One pass over the template, known fields only: queries may contain braces or field names.
    return re.sub(r"\{(" + "|".join(p.fields) + r")\}", lambda m: values[m.group(1)], p.template) if p.fields else p.template


def _fmt_duration(duration: float) -> str:
    return f"{float(duration):.2f}"
