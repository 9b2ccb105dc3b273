"""Leaderboard: `submissions/` -> `leaderboard/` (README.md, CSV, leaderboard.json, PNG figures, index.html).

Per task and split, three tables that are never mixed: **verified** entries (re-scored here from their
predictions; ranked by the task's headline metric, 95% CIs, and a paired test of each against the best verified
entry), **unverified** entries (scored elsewhere; shown apart, never a reference), and numbers **reported** by
papers (with their citations and their evaluators' conventions).

Paired test: `tempbench.metrics.stats.paired_test` (cluster-level sign-flip permutation test, videos as clusters)
on the per-query headline scores of the queries both entries scored; p >= 0.05 is marked as not significantly
different from the best.

Everything is written deterministically (no clock; PNG metadata stripped) and every published text is escaped for
its format: markdown (table-breaking and markup characters), CSV (cells that a spreadsheet would run as a formula
are quoted with '), HTML (escaped; links http(s) only) and figures (no mathtext). `leaderboard.json` is strict
JSON. `check_leaderboard` lists the files that differ from a fresh build, for CI.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .submissions import Entry, load_submissions
from .tasks import TaskSpec

LEADERBOARD_SCHEMA_ID = "tempbench.leaderboard/2"
ALPHA = 0.05
PERMUTATIONS = 2000
SEED = 0
STATUS_MARK = {"verified": "●", "unverified": "◐", "reported": "○"}
SECTIONS = {
    "verified": "Verified: re-scored by tempbench from the predictions",
    "unverified": "Unverified: scored elsewhere, not re-scored here",
    "reported": "Reported by papers: their evaluators' conventions, not comparable digit for digit",
}
NOT_SIGNIFICANT_MARK = "≈"


@dataclass
class Row:
    entry: Entry
    rank: int = 0
    vs_best: str | None = None  # "best", "n.s." (not significantly different), "worse", "better" or None
    p_value: float | None = None
    n_paired: int | None = None


@dataclass
class Board:
    spec: TaskSpec
    split: str
    sections: dict[str, list[Row]] = field(default_factory=dict)  # status -> rows in rank order

    @property
    def task(self) -> str:
        return self.spec.name

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def title(self) -> str:
        return self.spec.title

    @property
    def split_size(self) -> int:
        return self.spec.split_size(self.split)

    @property
    def slug(self) -> str:
        return f"{self.task}-{self.split}"

    @property
    def columns(self) -> tuple[tuple[str, str], ...]:
        """(metric, label) as the task card lists them."""
        return self.spec.columns

    @property
    def headline(self) -> str:
        return self.spec.headline

    @property
    def rows(self) -> list[Row]:
        return [row for status in SECTIONS for row in self.sections.get(status, [])]


# --------------------------------------------------------------------------------------------------- escaping


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def md(text: str) -> str:
    """Markdown-inert text: markup and table-breaking characters escaped, no raw HTML can form."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def md_link(text: str, url: str | None) -> str:
    if not url or not re.match(r"^https?://", url):
        return md(text)
    safe = "".join(c if c.isalnum() or c in "-._~:/?#@!$&*+,;=%" else f"%{ord(c):02X}" for c in url)
    return f"[{md(text)}]({safe})"


def csv_cell(value) -> str:
    """A CSV cell a spreadsheet shows as text: cells starting with = + - @ (or a tab / CR) get a leading '."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def plain(text: str) -> str:
    """Text for a matplotlib label: mathtext is off (`text.parse_math`), so only `$` needs no care; kept short."""
    return text if len(text) <= 60 else text[:57] + "..."


# --------------------------------------------------------------------------------------------------- statistics


def paired_scores(best: Entry, other: Entry, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-query values of `metric` for the queries both entries scored (matched by qid), and their videos."""
    rows_a = {r.qid: r for r in best.load_details()}
    a, b, vids = [], [], []
    for row in other.load_details():
        ra = rows_a.get(row.qid)
        if ra is None:
            continue
        va, vb = ra.scores.get(metric), row.scores.get(metric)
        if va is None or vb is None:
            continue
        a.append(float(va))
        b.append(float(vb))
        vids.append(ra.vid)
    return np.asarray(a), np.asarray(b), np.asarray(vids)


def paired_test(best: Entry, other: Entry, metric: str) -> tuple[float | None, int]:
    """p-value of the paired test of `metric` between two verified entries (None if no query in common)."""
    from .metrics.stats import paired_test as stats_paired_test

    a, b, vids = paired_scores(best, other, metric)
    if a.size == 0:
        return None, 0
    res = stats_paired_test(a, b, clusters=vids, n_resamples=PERMUTATIONS, seed=SEED)
    p = float(res.p_value)
    return (None if math.isnan(p) else p), int(a.size)


# --------------------------------------------------------------------------------------------------- boards


def _sort_key(entry: Entry, spec: TaskSpec):
    metrics = [spec.headline] + [m for m, _ in spec.columns if m != spec.headline]
    key = [(1, 0.0) if entry.metrics.get(m) is None else (0, -float(entry.metrics[m])) for m in metrics]
    return (*key, entry.name.lower(), entry.id)


def _task_order() -> dict[str, tuple[int, TaskSpec]]:
    from .tasks import all_tasks

    return {name: (i, spec) for i, (name, spec) in enumerate(all_tasks().items())}


def compute_boards(entries: list[Entry]) -> list[Board]:
    """Group entries per (task, split) in registry order, rank each section, run the paired tests (verified
    entries against the best complete verified entry)."""
    order = _task_order()
    groups: dict[tuple[str, str], list[Entry]] = {}
    for e in entries:
        groups.setdefault((e.task, e.split), []).append(e)

    def board_key(key):
        task, split = key
        i, spec = order[task]
        return (i, spec.splits.index(split), split)

    boards = []
    for task, split in sorted(groups, key=board_key):
        spec = order[task][1]
        board = Board(spec=spec, split=split)
        for status in SECTIONS:
            group = sorted((e for e in groups[(task, split)] if e.status == status), key=lambda e: _sort_key(e, spec))
            board.sections[status] = [Row(entry=e, rank=i + 1) for i, e in enumerate(group)]
        tested = [r for r in board.sections["verified"]
                  if r.entry.metrics.get(board.headline) is not None and not r.entry.partial]
        if tested:
            best = tested[0]
            best.vs_best = "best"
            for row in tested[1:]:
                p, n = paired_test(best.entry, row.entry, board.headline)
                row.p_value, row.n_paired = p, n
                if p is None:
                    continue
                if p >= ALPHA:
                    row.vs_best = "n.s."
                else:
                    worse = row.entry.metrics[board.headline] <= best.entry.metrics[board.headline]
                    row.vs_best = "worse" if worse else "better"
        boards.append(board)
    return boards


# --------------------------------------------------------------------------------------------------- formatting


def _decimals(value: float) -> int:
    text = f"{value:.2f}".rstrip("0")
    return len(text.split(".")[1]) if "." in text else 0


def _fmt(value: float | None, entry: Entry) -> str:
    """Scored numbers with 2 decimals; reported numbers with the precision the entry's most precise number
    shows (a paper printing 62.40 next to 44.98 is shown as 62.40, one printing 30.0 as 30.0)."""
    if value is None:
        return "–"
    if entry.status != "reported":
        return f"{value:.2f}"
    places = max([1] + [_decimals(v) for v in entry.metrics.values()])
    return f"{value:.{places}f}"


def _fmt_ci(ci: list[float] | None) -> str:
    return "" if not ci else f"[{ci[0]:.2f}, {ci[1]:.2f}]"


def _fmt_p(p: float | None) -> str:
    if p is None:
        return ""
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def _vs_best(row: Row) -> str:
    return {"best": "best", "n.s.": f"{NOT_SIGNIFICANT_MARK} {_fmt_p(row.p_value)}"}.get(row.vs_best or "",
                                                                                       _fmt_p(row.p_value))


def _own_metrics_text(board: Board, entry: Entry) -> str:
    own = entry.own_metrics
    if own is None:
        return ""
    shown = [(label, own.metrics[m]) for m, label in board.columns if m in own.metrics]
    return ", ".join(f"{label} {v:.2f}" for label, v in shown)


def _model_label(row: Row) -> str:
    label = row.entry.name
    if row.vs_best == "n.s.":
        label += f" {NOT_SIGNIFICANT_MARK}"
    if row.entry.partial:
        label += " (partial)"
    return label


def _origin_text(e: Entry) -> str:
    if e.status == "reported":
        return e.citation.text if e.citation is not None else ""
    sha = (e.predictions_sha256 or "")[:12]
    if e.origin == "release":
        return f"released predictions, sha256 {sha}"
    if e.origin == "run":
        return f"tempbench run, predictions sha256 {sha}"
    return f"predictions sha256 {sha} (not re-scored here)"


def _row_dict(board: Board, row: Row) -> dict:
    e = row.entry
    own = e.own_metrics
    return {
        "rank": row.rank, "id": e.id, "model": e.name, "model_id": e.model_id, "status": e.status,
        "origin": e.origin, "setting": e.setting, "profile": e.profile, "evaluator": e.evaluator,
        "tempbench_version": e.version, "date": e.date, "partial": e.partial,
        "metrics": {m: e.metrics.get(m) for m, _ in board.columns},
        "all_metrics": dict(sorted(e.metrics.items())),
        "ci95": {m: e.ci95[m] for m, _ in board.columns if m in e.ci95},
        "vs_best": row.vs_best, "p_value": row.p_value, "n_paired": row.n_paired,
        "n": e.result.n if e.result is not None else None,
        "failure_rate": e.result.failure_rate if e.result is not None else None,
        "predictions_sha256": e.predictions_sha256, "source_url": e.source_url,
        "citation": None if e.citation is None else {k: v for k, v in e.citation.__dict__.items() if v is not None},
        "own_metrics": None if own is None else {k: v for k, v in own.__dict__.items() if v is not None},
        "notes": list(e.notes),
    }


# --------------------------------------------------------------------------------------------------- figures


def _figure_png(draw) -> bytes:
    """Render with a fresh Agg figure under default rc settings, mathtext off; PNG without Software/date."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rc = dict(matplotlib.rcParamsDefault)
    rc.update({"svg.hashsalt": "tempbench", "font.family": "DejaVu Sans", "font.size": 9, "path.simplify": True,
               "text.parse_math": False, "text.usetex": False})
    with matplotlib.rc_context(rc):
        fig = Figure(figsize=(7.0, 0.5), dpi=100)
        FigureCanvasAgg(fig)
        draw(fig)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return buf.getvalue()


def _bars_png(board: Board) -> bytes | None:
    rows = [r for r in board.rows if r.entry.metrics.get(board.headline) is not None]
    if not rows:
        return None
    label = dict(board.columns)[board.headline]

    def draw(fig):
        fig.set_size_inches(7.0, 1.1 + 0.32 * len(rows))
        ax = fig.add_subplot(1, 1, 1)
        ys = np.arange(len(rows))[::-1]
        for y, row in zip(ys, rows):
            e = row.entry
            v = e.metrics[board.headline]
            color = "#1f77b4" if e.setting == "zero-shot" else "#d62728"
            face = {"verified": color, "unverified": "#dddddd"}.get(e.status, "white")
            ax.barh(y, v, height=0.7, color=face, edgecolor=color, hatch="///" if e.status == "reported" else None,
                    linewidth=1.0)
            ci = e.ci95.get(board.headline)
            right = v
            if ci and e.status == "verified":
                ax.errorbar(v, y, xerr=[[max(v - ci[0], 0)], [max(ci[1] - v, 0)]], fmt="none", ecolor="black",
                            capsize=3, lw=1)
                right = max(v, ci[1])
            ax.text(right + 1.0, y, f"{v:.1f}", va="center", fontsize=8)
        ax.set_yticks(ys)
        ax.set_yticklabels([plain(f"{STATUS_MARK[r.entry.status]} {_model_label(r)}") for r in rows], fontsize=8)
        ax.set_xlim(0, 100)
        ax.set_xlabel(f"{label} (%)\nsolid: verified (95% CI) · grey: unverified · hatched: reported · "
                      "blue: zero-shot · red: fine-tuned", fontsize=7)
        ax.set_title(f"{board.title} {board.split}: {label}", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()

    return _figure_png(draw)


GROUNDING_THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20))


def recall_curve(entry: Entry, kind: str) -> tuple[list[float], list[float]] | None:
    """Recall@1 as a function of the IoU threshold for a verified entry.

    Grounding: from the per-query IoU at thresholds 0.05..0.95, over the scored queries (IoU >= threshold
    counts). Highlights: the official per-threshold `MR-R1` of the full bucket (0.5..0.95)."""
    if entry.status != "verified" or entry.result is None:
        return None
    if kind == "highlights":
        r1 = ((entry.result.official or {}).get("full") or {}).get("MR-R1")
        if not r1:
            return None
        items = sorted((float(k), float(v)) for k, v in r1.items())
        return [k for k, _ in items], [v for _, v in items]
    ious = [float(row.iou) for row in entry.load_details() if row.iou is not None]
    if not ious:
        return None
    arr = np.asarray(ious)
    xs = list(GROUNDING_THRESHOLDS)
    return xs, [float(np.count_nonzero(arr >= t - 1e-12) * 100.0 / arr.size) for t in xs]


def _recall_png(board: Board) -> tuple[bytes, dict] | None:
    curves = {}
    for row in board.sections.get("verified", []):
        c = recall_curve(row.entry, board.kind)
        if c:
            curves[row.entry.id] = (row, c)
    if not curves:
        return None

    def draw(fig):
        fig.set_size_inches(7.0, 4.2)
        ax = fig.add_subplot(1, 1, 1)
        for i, (row, (xs, ys)) in enumerate(curves.values()):
            ax.plot(xs, ys, marker="o", ms=3, lw=1.4, label=plain(_model_label(row)), color=f"C{i % 10}")
        ax.set_xlabel("IoU threshold")
        ax.set_ylabel("Recall@1 (%)")
        ax.set_ylim(0, 100)
        ax.set_title(f"{board.title} {board.split}: Recall@1 vs IoU threshold (verified entries)", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
        fig.tight_layout()

    data = {eid: {"thresholds": c[0], "recall": c[1]} for eid, (_row, c) in curves.items()}
    return _figure_png(draw), data


# --------------------------------------------------------------------------------------------------- writers


def _csv_bytes(board: Board) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    metrics = [m for m, _ in board.columns]
    w.writerow(["status", "rank", "model", "setting", *metrics, *[f"{m} ci95_low" for m in metrics],
                *[f"{m} ci95_high" for m in metrics], "vs_best", "p_value", "profile", "evaluator",
                "tempbench_version", "date", "partial", "id", "source", "source_url"])
    for row in board.rows:
        e = row.entry
        vals = [repr(e.metrics[m]) if m in e.metrics else "" for m in metrics]
        lows = [repr(e.ci95[m][0]) if m in e.ci95 else "" for m in metrics]
        highs = [repr(e.ci95[m][1]) if m in e.ci95 else "" for m in metrics]
        w.writerow([csv_cell(x) for x in (
            e.status, row.rank, e.name, e.setting, *vals, *lows, *highs, row.vs_best or "",
            "" if row.p_value is None else repr(row.p_value), e.profile or "", e.evaluator, e.version or "", e.date,
            str(e.partial).lower(), e.id, _origin_text(e), e.source_url or "")])
    return buf.getvalue().encode("utf-8")


def _metric_cells(board: Board, e: Entry, cell) -> list[str]:
    out = []
    for m, _ in board.columns:
        v = e.metrics.get(m)
        text = _fmt(v, e)
        if m == board.headline and v is not None:
            text = f"**{text}**"
        if m in e.ci95 and v is not None:
            text += f" {_fmt_ci(e.ci95[m])}"
        out.append(cell(text))
    return out


def _readme(boards: list[Board], figures: dict[str, dict[str, str]]) -> str:
    out = [
        "# tempbench leaderboard",
        "",
        "Generated by `tempbench leaderboard` from `submissions/`; do not edit by hand (CI checks it with",
        "`tempbench leaderboard --check` and re-scores every verified entry with `--verify`). How to add an entry:",
        "[docs/leaderboard.md](../docs/leaderboard.md). Open [index.html](index.html) for sortable, filterable",
        "tables; the same data is in `leaderboard.json` and the CSV files.",
        "",
        f"Each task has up to three tables, never mixed: {STATUS_MARK['verified']} **verified** entries, re-scored "
        "by tempbench from their predictions against the pinned annotations (95% bootstrap CI in brackets; "
        f"{NOT_SIGNIFICANT_MARK} = not significantly different from the best verified entry, clustered paired "
        f"permutation test on the per-query headline scores, p >= {ALPHA}); {STATUS_MARK['unverified']} "
        "**unverified** entries, scored elsewhere; and numbers **reported** by papers, under their own evaluators' "
        "conventions. Rows are sorted by the headline metric (bold).",
        "",
    ]
    for board in boards:
        out += [f"## {md(board.title)}, {md(board.split)} ({board.split_size:,} queries)", ""]
        labels = [f"**{md(label)}**" if m == board.headline else md(label) for m, label in board.columns]
        for status, title in SECTIONS.items():
            rows = board.sections.get(status, [])
            if not rows:
                continue
            out += [f"### {title}", ""]
            if status == "reported":
                out.append("| model | setting | " + " | ".join(labels) + " | evaluator | closest profile | date "
                           "| reference |")
                out.append("|---|---|" + "---:|" * len(labels) + "---|---|---|---|")
                for row in rows:
                    e = row.entry
                    cells = [md(_model_label(row)), e.setting, *_metric_cells(board, e, lambda t: t),
                             md(e.evaluator), md(e.profile or "–"), e.date, md_link(_origin_text(e), e.source_url)]
                    out.append("| " + " | ".join(cells) + " |")
            else:
                out.append("| # | model | setting | " + " | ".join(labels) + " | vs best | profile | tempbench | date "
                           "| source |")
                out.append("|---:|---|---|" + "---:|" * len(labels) + "---|---|---|---|---|")
                for row in rows:
                    e = row.entry
                    source = md_link(_origin_text(e), e.source_url)
                    if _own_metrics_text(board, e):
                        source += f"; the model's own metrics file: {md(_own_metrics_text(board, e))}"
                    cells = [str(row.rank), md(_model_label(row)), e.setting, *_metric_cells(board, e, lambda t: t),
                             md(_vs_best(row)), md(e.profile or ""), md(e.version or ""), e.date, source]
                    out.append("| " + " | ".join(cells) + " |")
            out.append("")
        for key, caption in (("bars", "headline metric"), ("recall", "Recall@1 vs IoU threshold")):
            if key in figures.get(board.slug, {}):
                out.append(f"![{md(board.title)} {md(board.split)}: {caption}]({figures[board.slug][key]})")
                out.append("")
        notes: dict[str, list[str]] = {}
        for row in board.rows:
            for note in row.entry.notes:
                notes.setdefault(note, []).append(row.entry.name)
        if notes:
            out.append("Notes:")
            out += [f"- {md('; '.join(names))}: {md(note)}" for note, names in notes.items()]
            out.append("")
    if not boards:
        out += ["No entries yet.", ""]
    return "\n".join(out)


HTML_HEAD = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>tempbench leaderboard</title>
<link rel="icon" href="data:,">
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5rem auto; max-width: 1360px;
       padding: 0 1rem; color: #222; }
h1 { margin-bottom: .2rem; } h2 { margin-top: 2.2rem; } h3 { margin: 1.2rem 0 .4rem; font-size: 1rem; }
.legend { color: #555; font-size: .9rem; max-width: 60rem; }
.filters { display: flex; gap: 1rem; flex-wrap: wrap; margin: 1rem 0; padding: .6rem .8rem; background: #f4f6f8;
           border-radius: 6px; }
.filters label { font-size: .9rem; }
table { border-collapse: collapse; width: 100%; font-size: .82rem; margin-bottom: .6rem; table-layout: auto; }
th, td { border-bottom: 1px solid #e3e3e3; padding: .3rem .4rem; text-align: left; vertical-align: top; }
th { background: #fafafa; cursor: pointer; user-select: none; white-space: nowrap; }
th[aria-sort="ascending"]::after { content: " \\25B2"; } th[aria-sort="descending"]::after { content: " \\25BC"; }
td.nowrap { white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
th.headline, td.headline { background: #fff8e1; }
.ci { color: #777; font-size: .72rem; }
.badge { display: inline-block; padding: 0 .35rem; border-radius: 3px; font-size: .72rem; }
.verified .badge { background: #d7ecff; } .unverified .badge { background: #f1e4c8; } .reported .badge { background: #eee; }
tr.reported td, tr.unverified td { color: #555; }
.ns { color: #1b7f3b; font-weight: bold; }
td.model { min-width: 10rem; max-width: 16rem; overflow-wrap: anywhere; }
td.more { max-width: 18rem; font-size: .75rem; overflow-wrap: anywhere; }
details summary { cursor: pointer; color: #345; }
img { max-width: 100%; }
.empty { color: #888; font-style: italic; }
</style>
</head>
<body>
"""

HTML_SCRIPT = """<script>
(function () {
  "use strict";
  function cellValue(row, index) {
    var cell = row.cells[index];
    var v = cell.getAttribute("data-value");
    return v === null ? cell.textContent.trim() : v;
  }
  function compare(a, b, numeric, dir) {
    var ea = a === "" || a === null, eb = b === "" || b === null;
    if (ea || eb) { return ea === eb ? 0 : (ea ? 1 : -1); }  // missing values always last
    if (numeric) { return dir * (parseFloat(a) - parseFloat(b)); }
    return dir * a.localeCompare(b);
  }
  function sortTable(th) {
    var table = th.closest("table");
    var tbody = table.tBodies[0];
    var index = Array.prototype.indexOf.call(th.parentNode.cells, th);
    var numeric = th.getAttribute("data-type") === "number";
    var current = th.getAttribute("aria-sort");
    var dir = current === "descending" ? 1 : (current === "ascending" ? -1 : (numeric ? -1 : 1));
    var rows = Array.prototype.slice.call(tbody.rows);
    rows.forEach(function (r, i) { r.setAttribute("data-pos", String(i)); });
    rows.sort(function (a, b) {
      var c = compare(cellValue(a, index), cellValue(b, index), numeric, dir);
      return c !== 0 ? c : parseInt(a.getAttribute("data-pos"), 10) - parseInt(b.getAttribute("data-pos"), 10);
    });
    rows.forEach(function (r) { tbody.appendChild(r); });
    Array.prototype.forEach.call(th.parentNode.cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
  }
  function applyFilters() {
    var wanted = {};
    Array.prototype.forEach.call(document.querySelectorAll("#filters select"), function (s) {
      wanted[s.getAttribute("data-attr")] = s.value;
    });
    var shown = 0;
    Array.prototype.forEach.call(document.querySelectorAll("section.board"), function (section) {
      var visibleInSection = 0;
      Array.prototype.forEach.call(section.querySelectorAll("div.part"), function (part) {
        var visibleRows = 0;
        Array.prototype.forEach.call(part.querySelectorAll("tbody tr"), function (tr) {
          var ok = Object.keys(wanted).every(function (k) {
            return !wanted[k] || tr.getAttribute("data-" + k) === wanted[k];
          });
          tr.hidden = !ok;
          if (ok) { visibleRows += 1; }
        });
        part.hidden = visibleRows === 0;
        visibleInSection += visibleRows;
      });
      section.hidden = visibleInSection === 0;
      shown += visibleInSection;
    });
    document.getElementById("f-count").textContent = shown + " entries shown";
    document.getElementById("no-match").hidden = shown !== 0;
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.board th"), function (th) {
    th.addEventListener("click", function () { sortTable(th); });
  });
  Array.prototype.forEach.call(document.querySelectorAll("#filters select"), function (s) {
    s.addEventListener("change", applyFilters);
  });
  applyFilters();
}());
</script>
</body>
</html>
"""


def _options(values: list[str]) -> str:
    opts = ['<option value="">all</option>']
    opts += [f'<option value="{html.escape(v)}">{html.escape(v)}</option>' for v in values]
    return "".join(opts)


def _a(url: str | None, text: str) -> str:
    """An escaped link for an http(s) URL (others shown as text); it opens nothing by itself."""
    esc = html.escape
    if not url or not re.match(r"^https?://", url):
        return esc(text)
    return f'<a href="{esc(url)}" rel="noopener noreferrer nofollow" target="_blank">{esc(text)}</a>'


def _html_table(board: Board, status: str, rows: list[Row]) -> list[str]:
    esc = html.escape
    parts = [f'<div class="part {status}"><h3>{esc(SECTIONS[status])}</h3><table class="board {status}"><thead><tr>']
    heads = ([] if status == "reported" else [("#", "number", "")]) + [("model", "text", ""), ("setting", "text", "")]
    heads += [(label, "number", "headline" if m == board.headline else "") for m, label in board.columns]
    heads += ([] if status == "reported" else [("vs best (p)", "number", "")]) + [("date", "text", ""),
                                                                                 ("more", "text", "")]
    for label, typ, cls in heads:
        cls_attr = f' class="{cls}"' if cls else ""
        parts.append(f'<th data-type="{typ}"{cls_attr} scope="col">{esc(label)}</th>')
    parts.append("</tr></thead><tbody>")
    for row in rows:
        e = row.entry
        parts.append(f'<tr class="{status}" data-id="{esc(e.id)}" data-task="{esc(board.task)}" '
                     f'data-split="{esc(board.split)}" data-setting="{esc(e.setting)}" data-status="{status}">')
        if status != "reported":
            parts.append(f'<td class="num" data-value="{row.rank}">{row.rank}</td>')
        ns = f' <span class="ns" title="not significantly different from the best verified entry">' \
             f'{NOT_SIGNIFICANT_MARK}</span>' if row.vs_best == "n.s." else ""
        partial = " (partial)" if e.partial else ""
        parts.append(f'<td class="model" data-value="{esc(e.name.lower())}">{esc(e.name)}{ns}{esc(partial)} '
                     f'<span class="badge">{esc(status)}</span></td>')
        parts.append(f'<td class="nowrap">{esc(e.setting)}</td>')
        for m, _ in board.columns:
            v = e.metrics.get(m)
            cls = "num headline" if m == board.headline else "num"
            value_attr = "" if v is None else repr(float(v))
            ci = f'<br><span class="ci">{esc(_fmt_ci(e.ci95[m]))}</span>' if (m in e.ci95 and v is not None) else ""
            parts.append(f'<td class="{cls}" data-value="{value_attr}">{esc(_fmt(v, e))}{ci}</td>')
        if status != "reported":
            p_attr = "1.0" if row.vs_best == "best" else ("" if row.p_value is None else repr(row.p_value))
            parts.append(f'<td class="num" data-value="{p_attr}">{esc(_vs_best(row))}</td>')
        parts.append(f'<td class="nowrap">{esc(e.date)}</td>')
        more = [f"profile: {esc(e.profile or '–')}", f"evaluator: {esc(e.evaluator)}"]
        if e.version:
            more.append(f"tempbench {esc(e.version)}")
        if e.predictions_sha256:
            more.append(f'predictions sha256 <code title="{esc(e.predictions_sha256)}">'
                        f"{esc(e.predictions_sha256[:12])}</code>")
        own = _own_metrics_text(board, e)
        if own:
            more.append(f"the model's own metrics file: {esc(own)}")
        more += [esc(note) for note in e.notes]
        summary = _a(e.source_url, _origin_text(e))
        parts.append(f'<td class="more"><details><summary>{summary or "details"}</summary>'
                     f'{"<br>".join(more)}</details></td>')
        parts.append("</tr>")
    parts.append("</tbody></table></div>")
    return parts


def _html(boards: list[Board], figures_png: dict[str, dict[str, bytes]], versions: list[str]) -> str:
    esc = html.escape
    tasks = list(dict.fromkeys(b.task for b in boards))
    splits = list(dict.fromkeys(b.split for b in boards))
    version_text = ("entries scored with tempbench " + ", ".join(versions)) if versions else "no scored entries"
    parts = [HTML_HEAD, "<h1>tempbench leaderboard</h1>",
             f'<p class="legend">Generated from <code>submissions/</code> by <code>tempbench leaderboard</code>; '
             f"{esc(version_text)}. Each task has up to three tables, never mixed: <b>verified</b> entries, "
             "re-scored by tempbench from their predictions against the pinned annotations (95% CI in grey; "
             f'<span class="ns">{NOT_SIGNIFICANT_MARK}</span> = not significantly different from the best verified '
             f"entry, clustered paired permutation test on per-query headline scores, p &ge; {ALPHA}); "
             "<b>unverified</b> entries, scored elsewhere; and numbers <b>reported</b> by papers under their own "
             "evaluators' conventions. Click a column header to sort; open <i>more</i> for provenance.</p>",
             '<div class="filters" id="filters">',
             f'<label>task <select id="f-task" data-attr="task">{_options(tasks)}</select></label>',
             f'<label>split <select id="f-split" data-attr="split">{_options(splits)}</select></label>',
             '<label>setting <select id="f-setting" data-attr="setting">'
             f'{_options(["zero-shot", "fine-tuned"])}</select></label>',
             f'<label>status <select id="f-status" data-attr="status">{_options(list(SECTIONS))}</select></label>',
             '<span id="f-count"></span></div>']
    for board in boards:
        parts.append(f'<section class="board" id="{esc(board.slug)}" data-task="{esc(board.task)}" '
                     f'data-split="{esc(board.split)}">')
        parts.append(f"<h2>{esc(board.title)}, {esc(board.split)} ({board.split_size:,} queries)</h2>")
        for status in SECTIONS:
            if board.sections.get(status):
                parts += _html_table(board, status, board.sections[status])
        for key, alt in (("bars", "headline metric"), ("recall", "Recall@1 vs IoU threshold")):
            png = figures_png.get(board.slug, {}).get(key)
            if png:
                data = base64.b64encode(png).decode("ascii")
                parts.append(f'<figure><img alt="{esc(board.title)} {esc(board.split)}: {esc(alt)}" '
                             f'src="data:image/png;base64,{data}"></figure>')
        parts.append("</section>")
    parts.append('<p class="empty" id="no-match" hidden>No entry matches the filters.</p>')
    parts.append(HTML_SCRIPT)
    return "\n".join(parts)


def render_leaderboard(submissions_dir: str | Path) -> dict[str, bytes]:
    """All leaderboard files as {relative path: bytes} (nothing written)."""
    entries = load_submissions(Path(submissions_dir))
    boards = compute_boards(entries)
    files: dict[str, bytes] = {}
    figure_paths: dict[str, dict[str, str]] = {}
    figure_png: dict[str, dict[str, bytes]] = {}
    curves: dict[str, dict] = {}
    for board in boards:
        files[f"{board.slug}.csv"] = _csv_bytes(board)
        bars = _bars_png(board)
        if bars is not None:
            path = f"figures/{board.slug}-bars.png"
            files[path] = bars
            figure_paths.setdefault(board.slug, {})["bars"] = path
            figure_png.setdefault(board.slug, {})["bars"] = bars
        recall = _recall_png(board)
        if recall is not None:
            png, data = recall
            path = f"figures/{board.slug}-recall.png"
            files[path] = png
            figure_paths.setdefault(board.slug, {})["recall"] = path
            figure_png.setdefault(board.slug, {})["recall"] = png
            curves[board.slug] = data
    versions = sorted({e.version for e in entries if e.version})
    doc = {
        "schema": LEADERBOARD_SCHEMA_ID,
        "entries": [e.id for e in entries],
        "tempbench_versions": versions,
        "alpha": ALPHA,
        "test": f"tempbench.metrics.stats.paired_test: cluster-level (video) sign-flip permutation test on the "
                f"per-query headline scores, {PERMUTATIONS} resamples, seed {SEED}; verified entries against the "
                "best complete verified entry",
        "boards": [
            {
                "task": b.task, "split": b.split, "kind": b.kind, "title": b.title, "split_size": b.split_size,
                "headline": b.headline, "columns": [{"metric": m, "label": label} for m, label in b.columns],
                "figures": figure_paths.get(b.slug, {}), "recall_curves": curves.get(b.slug, {}),
                **{status: [_row_dict(b, r) for r in b.sections.get(status, [])] for status in SECTIONS},
            }
            for b in boards
        ],
    }
    files["leaderboard.json"] = (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
                                 + "\n").encode("utf-8")
    files["README.md"] = _readme(boards, figure_paths).encode("utf-8")
    files["index.html"] = _html(boards, figure_png, versions).encode("utf-8")
    return files


MANAGED_GLOBS = ("README.md", "index.html", "leaderboard.json", "*.csv", "figures/*.png")


def _managed(out_dir: Path) -> set[str]:
    found = set()
    for pattern in MANAGED_GLOBS:
        found |= {p.relative_to(out_dir).as_posix() for p in out_dir.glob(pattern) if p.is_file()}
    return found


def build_leaderboard(submissions_dir: str | Path = "submissions", out_dir: str | Path = "leaderboard") -> list[Path]:
    """Write the leaderboard files into `out_dir` (stale generated files are removed). Returns the paths."""
    return write_outputs(render_leaderboard(submissions_dir), out_dir)


def write_outputs(files: dict[str, bytes], out_dir: str | Path) -> list[Path]:
    """Write rendered files into `out_dir`, removing generated files that are no longer produced."""
    from .io import atomic_write_bytes

    out = Path(out_dir)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    for stale in sorted(_managed(out) - set(files)):
        (out / stale).unlink()
    written = []
    for rel, data in sorted(files.items()):
        path = out / rel
        if not path.is_file() or path.read_bytes() != data:
            atomic_write_bytes(path, data)
        written.append(path)
    return written


def check_leaderboard(submissions_dir: str | Path = "submissions", out_dir: str | Path = "leaderboard") -> list[str]:
    """Relative paths of generated files that are missing, stale or different in `out_dir` (empty = up to date)."""
    return diff_outputs(render_leaderboard(submissions_dir), out_dir)


def diff_outputs(files: dict[str, bytes], out_dir: str | Path) -> list[str]:
    """Relative paths where `out_dir` differs from the rendered `files` (missing, stale or changed)."""
    out = Path(out_dir)
    existing = _managed(out) if out.is_dir() else set()
    differing = [rel for rel, data in files.items() if not (out / rel).is_file() or (out / rel).read_bytes() != data]
    differing += [rel for rel in existing if rel not in files]
    return sorted(set(differing))


__all__ = ["build_leaderboard", "check_leaderboard", "compute_boards", "csv_cell", "diff_outputs", "md",
           "recall_curve", "render_leaderboard", "write_outputs"]
