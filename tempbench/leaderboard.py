"""Leaderboard: ``submissions/`` -> ``leaderboard/`` (README.md, CSV, leaderboard.json, PNG figures, index.html).

Everything is written deterministically: the same submissions give the same bytes (no clock, versions and dates
come from the records, PNG metadata stripped, fixed ``svg.hashsalt``). ``check_leaderboard`` rebuilds in a
temporary folder and lists the files that differ, for CI.

Ranking: per task and split, by the headline metric (Charades-STA and ActivityNet Captions: R1@0.5; QVHighlights:
MR-full-R1@0.5), entries without it last. Significance: every reproduced entry is compared with the best reproduced
entry by a paired test on the per-query headline scores (queries matched by qid, clustered by video); entries with
p >= 0.05 are marked as not significantly different from it. Reported entries have no per-query scores and are
never tested.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .submissions import Entry, load_submissions
from .tasks import TaskSpec

LEADERBOARD_SCHEMA_ID = "tempbench.leaderboard/1"
ALPHA = 0.05
PERMUTATIONS = 2000
SEED = 0

SOURCE_MARK = {"reproduced": "●", "reported": "○"}
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
    rows: list[Row] = field(default_factory=list)

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


# --------------------------------------------------------------------------------------------------- statistics


def paired_scores(best: Entry, other: Entry, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-query values of ``metric`` for the queries both entries scored (matched by qid), and their videos."""
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
    """p-value of the paired test of ``metric`` between two reproduced entries (None if no query in common):
    ``tempbench.metrics.stats.paired_test`` (cluster-level sign-flip permutation test, videos as clusters) on the
    queries both scored with a non-null value, seeded so the leaderboard is reproducible."""
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
    key = []
    for m in metrics:
        v = entry.metrics.get(m)
        key.append((1, 0.0) if v is None else (0, -float(v)))
    return (*key, 0 if entry.source == "reproduced" else 1, entry.name.lower(), entry.id)


def _task_order() -> dict[str, tuple[int, TaskSpec]]:
    from .tasks import all_tasks

    return {name: (i, spec) for i, (name, spec) in enumerate(all_tasks().items())}


def compute_boards(entries: list[Entry]) -> list[Board]:
    """Group entries per (task, split) in registry order, rank them and run the paired tests."""
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
        _, spec = order[task]
        group = sorted(groups[(task, split)], key=lambda e: _sort_key(e, spec))
        board = Board(spec=spec, split=split)
        board.rows = [Row(entry=e, rank=i + 1) for i, e in enumerate(group)]
        tested = [r for r in board.rows if r.entry.source == "reproduced" and r.entry.metrics.get(board.headline)
                  is not None and not r.entry.partial]
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
    """Reproduced numbers with 2 decimals; reported numbers with the precision the entry's most precise number
    shows (1 or 2 decimals: a paper printing 62.40 next to 44.98 is shown as 62.40, one printing 30.0 as 30.0)."""
    if value is None:
        return "–"
    if entry.source == "reproduced":
        return f"{value:.2f}"
    places = max([1] + [_decimals(v) for v in entry.metrics.values()])
    return f"{value:.{places}f}"


def _own_metrics_text(board: Board, entry: Entry) -> str:
    own = entry.own_metrics
    if own is None:
        return ""
    shown = [(label, own.metrics[m]) for m, label in board.columns if m in own.metrics]
    return ", ".join(f"{label} {v:.2f}" for label, v in shown)


def _fmt_ci(ci: list[float] | None) -> str:
    return "" if not ci else f"[{ci[0]:.2f}, {ci[1]:.2f}]"


def _fmt_p(p: float | None) -> str:
    if p is None:
        return ""
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def _citation_text(entry: Entry) -> str:
    return entry.citation.text if entry.citation is not None else ""


def _citation_url(entry: Entry) -> str | None:
    return entry.citation.link if entry.citation is not None else None


def _model_label(row: Row) -> str:
    e = row.entry
    label = e.name
    if row.vs_best == "n.s.":
        label += f" {NOT_SIGNIFICANT_MARK}"
    if e.partial:
        label += " (partial)"
    return label


def _row_dict(board: Board, row: Row) -> dict:
    e = row.entry
    own = e.own_metrics
    return {
        "rank": row.rank,
        "id": e.id,
        "model": e.name,
        "model_id": e.model_id,
        "source": e.source,
        "setting": e.setting,
        "profile": e.profile,
        "evaluator": e.evaluator,
        "tempbench_version": e.version,
        "date": e.date,
        "partial": e.partial,
        "metrics": {m: e.metrics.get(m) for m, _ in board.columns},
        "all_metrics": dict(sorted(e.metrics.items())),
        "ci95": {m: e.ci95[m] for m, _ in board.columns if m in e.ci95},
        "vs_best": row.vs_best,
        "p_value": row.p_value,
        "n_paired": row.n_paired,
        "n": e.result.n if e.result is not None else None,
        "failure_rate": e.result.failure_rate if e.result is not None else None,
        "predictions_sha256": e.predictions_sha256,
        "citation": None if e.citation is None else {k: v for k, v in e.citation.__dict__.items() if v is not None},
        "own_metrics": None if own is None else {k: v for k, v in own.__dict__.items() if v is not None},
        "notes": list(e.notes),
    }


# --------------------------------------------------------------------------------------------------- figures


def _figure_png(draw) -> bytes:
    """Render with a fresh Agg figure under default rc settings; PNG without the Software/date metadata."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rc = dict(matplotlib.rcParamsDefault)
    rc.update({"svg.hashsalt": "tempbench", "font.family": "DejaVu Sans", "font.size": 9, "path.simplify": True})
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
            reproduced = e.source == "reproduced"
            color = "#1f77b4" if e.setting == "zero-shot" else "#d62728"
            ax.barh(y, v, height=0.7, color=color if reproduced else "white", edgecolor=color,
                    hatch=None if reproduced else "///", linewidth=1.0)
            ci = e.ci95.get(board.headline)
            right = v
            if ci:
                ax.errorbar(v, y, xerr=[[v - ci[0]], [ci[1] - v]], fmt="none", ecolor="black", capsize=3, lw=1)
                right = max(v, ci[1])
            ax.text(right + 1.0, y, f"{v:.1f}", va="center", fontsize=8)
        ax.set_yticks(ys)
        ax.set_yticklabels([_model_label(r) for r in rows], fontsize=8)
        ax.set_xlim(0, 100)
        ax.set_xlabel(f"{label} (%)\nsolid: reproduced (95% CI) · hatched: reported · blue: zero-shot · "
                      "red: fine-tuned", fontsize=7)
        ax.set_title(f"{board.title} {board.split}: {label}", fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()

    return _figure_png(draw)


GROUNDING_THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20))


def recall_curve(entry: Entry, kind: str) -> tuple[list[float], list[float]] | None:
    """Recall@1 as a function of the IoU threshold for a reproduced entry.

    Grounding: from the per-query IoU (``iou`` field, else ``scores['mIoU'] / 100``) at thresholds 0.05..0.95,
    over the queries with a non-null value (IoU >= threshold counts). Highlights: the official per-threshold
    ``MR-R1`` dict of the full bucket (0.5..0.95)."""
    if entry.source != "reproduced":
        return None
    result = entry.result
    if result is None:
        return None
    if kind == "highlights":
        official = result.official or {}
        r1 = (official.get("full") or {}).get("MR-R1")
        if not r1:
            return None
        items = sorted((float(k), float(v)) for k, v in r1.items())
        return [k for k, _ in items], [v for _, v in items]
    ious = []
    for row in entry.load_details():
        if row.iou is not None:
            ious.append(float(row.iou))
        elif row.scores.get("mIoU") is not None:
            ious.append(float(row.scores["mIoU"]) / 100.0)
    if not ious:
        return None
    arr = np.asarray(ious)
    xs = list(GROUNDING_THRESHOLDS)
    return xs, [float(np.count_nonzero(arr >= t - 1e-12) * 100.0 / arr.size) for t in xs]


def _recall_png(board: Board) -> tuple[bytes, dict] | None:
    curves = {}
    for row in board.rows:
        c = recall_curve(row.entry, board.kind)
        if c:
            curves[row.entry.id] = (row, c)
    if not curves:
        return None

    def draw(fig):
        fig.set_size_inches(7.0, 4.2)
        ax = fig.add_subplot(1, 1, 1)
        for i, (row, (xs, ys)) in enumerate(curves.values()):
            ax.plot(xs, ys, marker="o", ms=3, lw=1.4, label=_model_label(row), color=f"C{i % 10}")
        ax.set_xlabel("IoU threshold")
        ax.set_ylabel("Recall@1 (%)")
        ax.set_ylim(0, 100)
        ax.set_title(f"{board.title} {board.split}: Recall@1 vs IoU threshold (reproduced entries)", fontsize=10)
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
    w.writerow(["rank", "model", "source", "setting", *metrics, *[f"{m} ci95_low" for m in metrics],
                *[f"{m} ci95_high" for m in metrics], "vs_best", "p_value", "profile", "evaluator",
                "tempbench_version", "date", "partial", "id", "citation"])
    for row in board.rows:
        e = row.entry
        vals = [repr(e.metrics[m]) if m in e.metrics else "" for m in metrics]
        lows = [repr(e.ci95[m][0]) if m in e.ci95 else "" for m in metrics]
        highs = [repr(e.ci95[m][1]) if m in e.ci95 else "" for m in metrics]
        w.writerow([row.rank, e.name, e.source, e.setting, *vals, *lows, *highs, row.vs_best or "",
                    "" if row.p_value is None else repr(row.p_value), e.profile or "", e.evaluator,
                    e.version or "", e.date, str(e.partial).lower(), e.id,
                    _citation_text(e)])
    return buf.getvalue().encode("utf-8")


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _readme(boards: list[Board], figures: dict[str, dict[str, str]]) -> str:
    out = [
        "# tempbench leaderboard",
        "",
        "Generated by `tempbench leaderboard` from `submissions/`; do not edit by hand (CI checks it with",
        "`check_leaderboard`). How to add an entry: [docs/leaderboard.md](../docs/leaderboard.md). Open",
        "[index.html](index.html) for sortable, filterable tables; the same data is in `leaderboard.json` and the CSV",
        "files.",
        "",
        f"Legend: {SOURCE_MARK['reproduced']} reproduced (scored by tempbench from the predictions; 95% bootstrap CI "
        f"in brackets), {SOURCE_MARK['reported']} reported (copied from the cited paper; its evaluator's conventions, "
        f"not comparable digit for digit). {NOT_SIGNIFICANT_MARK} = not significantly different from the best "
        f"reproduced entry (clustered paired permutation test on the per-query headline scores, p >= {ALPHA}). "
        "Rows are sorted by the headline metric (bold).",
        "",
    ]
    for board in boards:
        size = f" ({board.split_size:,} queries)" if board.split_size else ""
        out += [f"## {board.title}, {board.split}{size}", ""]
        headers = ["#", "model", "", "setting"]
        headers += [f"**{label}**" if m == board.headline else label for m, label in board.columns]
        headers += ["vs best", "profile / evaluator", "tempbench", "date", "source"]
        out.append("| " + " | ".join(headers) + " |")
        out.append("|" + "|".join(["---:", "---", ":-:", "---"] + ["---:"] * len(board.columns)
                                  + ["---", "---", "---", "---", "---"]) + "|")
        for row in board.rows:
            e = row.entry
            cells = [str(row.rank), _md_escape(_model_label(row)), SOURCE_MARK[e.source], e.setting]
            for m, _ in board.columns:
                v = e.metrics.get(m)
                cell = _fmt(v, e)
                if m == board.headline and v is not None:
                    cell = f"**{cell}**"
                if m in e.ci95 and v is not None:
                    cell += f" {_fmt_ci(e.ci95[m])}"
                cells.append(cell)
            vs = {"best": "best", "n.s.": f"{NOT_SIGNIFICANT_MARK} {_fmt_p(row.p_value)}",
                  "worse": _fmt_p(row.p_value), "better": _fmt_p(row.p_value)}.get(row.vs_best or "", "")
            cells.append(vs)
            if e.source == "reproduced":
                cells += [e.profile or "", e.version or "", e.date]
                src = f"predictions sha256 `{e.predictions_sha256[:12]}`"
                if _own_metrics_text(board, e):
                    src += f"; the model's own metrics file: {_own_metrics_text(board, e)}"
                cells.append(src)
            else:
                cells += [_md_escape(e.evaluator), "–", e.date]
                url = _citation_url(e)
                text = _md_escape(_citation_text(e))
                cells.append(f"[{text}]({url})" if url else text)
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
        for key, caption in (("bars", "headline metric"), ("recall", "Recall@1 vs IoU threshold")):
            if key in figures.get(board.slug, {}):
                out.append(f"![{board.title} {board.split}: {caption}]({figures[board.slug][key]})")
                out.append("")
        notes: dict[str, list[str]] = {}
        for row in board.rows:
            for note in row.entry.notes:
                notes.setdefault(note, []).append(row.entry.name)
        if notes:
            out.append("Notes:")
            out += [f"- {_md_escape('; '.join(names))}: {_md_escape(note)}" for note, names in notes.items()]
            out.append("")
    if not boards:
        out += ["No entries yet.", ""]
    return "\n".join(out)


HTML_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tempbench leaderboard</title>
<link rel="icon" href="data:,">
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5rem auto; max-width: 1200px;
       padding: 0 1rem; color: #222; }
h1 { margin-bottom: .2rem; } h2 { margin-top: 2rem; }
.legend { color: #555; font-size: .9rem; }
.filters { display: flex; gap: 1rem; flex-wrap: wrap; margin: 1rem 0; padding: .6rem .8rem; background: #f4f6f8;
           border-radius: 6px; }
.filters label { font-size: .9rem; }
table { border-collapse: collapse; width: 100%; font-size: .85rem; margin-bottom: .6rem; }
th, td { border-bottom: 1px solid #e3e3e3; padding: .3rem .45rem; text-align: left; vertical-align: top; }
th { background: #fafafa; cursor: pointer; user-select: none; white-space: nowrap; }
th[aria-sort="ascending"]::after { content: " \\25B2"; } th[aria-sort="descending"]::after { content: " \\25BC"; }
td.nowrap { white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
th.headline, td.headline { background: #fff8e1; }
tr.reported td { color: #555; } .ci { color: #777; font-size: .75rem; }
.badge { display: inline-block; padding: 0 .35rem; border-radius: 3px; font-size: .75rem; }
.reproduced .badge.src { background: #d7ecff; } .reported .badge.src { background: #eee; }
.ns { color: #1b7f3b; font-weight: bold; }
img { max-width: 100%; }
.scroll { overflow-x: auto; }
td.model { min-width: 12rem; }
td.ref { min-width: 20rem; font-size: .75rem; }
.empty { color: #888; font-style: italic; }
</style>
</head>
<body>
<h1>tempbench leaderboard</h1>
<p class="legend">Generated from <code>submissions/</code> by <code>tempbench leaderboard</code>; __VERSIONS__.
<span class="badge" style="background:#d7ecff">reproduced</span> = scored by tempbench from the predictions (95% CI
in grey); <span class="badge" style="background:#eee">reported</span> = copied from the cited paper, under its own
evaluator's conventions. <span class="ns">__NSMARK__</span> = not significantly different from the best reproduced
entry (clustered paired permutation test on per-query headline scores, p &ge; __ALPHA__). Click a column header to
sort.</p>
<div class="filters" id="filters">
<label>task <select id="f-task" data-attr="task">__TASK_OPTIONS__</select></label>
<label>split <select id="f-split" data-attr="split">__SPLIT_OPTIONS__</select></label>
<label>setting <select id="f-setting" data-attr="setting"><option value="">all</option><option value="zero-shot">zero-shot</option><option value="fine-tuned">fine-tuned</option></select></label>
<label>source <select id="f-source" data-attr="source"><option value="">all</option><option value="reproduced">reproduced</option><option value="reported">reported</option></select></label>
<span id="f-count"></span>
</div>
__BOARDS__
<p class="empty" id="no-match" hidden>No entry matches the filters.</p>
<script>
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
    var selects = document.querySelectorAll("#filters select");
    var wanted = {};
    Array.prototype.forEach.call(selects, function (s) { wanted[s.getAttribute("data-attr")] = s.value; });
    var shown = 0;
    Array.prototype.forEach.call(document.querySelectorAll("section.board"), function (section) {
      var visibleRows = 0;
      Array.prototype.forEach.call(section.querySelectorAll("tbody tr"), function (tr) {
        var ok = Object.keys(wanted).every(function (k) {
          return !wanted[k] || tr.getAttribute("data-" + k) === wanted[k];
        });
        tr.hidden = !ok;
        if (ok) { visibleRows += 1; }
      });
      section.hidden = visibleRows === 0;
      shown += visibleRows;
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


def _html(boards: list[Board], figures_png: dict[str, dict[str, bytes]], versions: list[str]) -> str:
    esc = html.escape
    parts = []
    for board in boards:
        size = f" ({board.split_size:,} queries)" if board.split_size else ""
        parts.append(f'<section class="board" id="{esc(board.slug)}" data-task="{esc(board.task)}" '
                     f'data-split="{esc(board.split)}">')
        parts.append(f"<h2>{esc(board.title)}, {esc(board.split)}{esc(size)}</h2>")
        parts.append('<div class="scroll"><table class="board"><thead><tr>')
        heads = [("#", "number", ""), ("model", "text", ""), ("source", "text", ""), ("setting", "text", "")]
        heads += [(label, "number", "headline" if m == board.headline else "") for m, label in board.columns]
        heads += [("vs best (p)", "number", ""), ("profile / evaluator", "text", ""), ("tempbench", "text", ""),
                  ("date", "text", ""), ("reference / provenance", "text", "")]
        for label, typ, cls in heads:
            cls_attr = f' class="{cls}"' if cls else ""
            parts.append(f'<th data-type="{typ}"{cls_attr} scope="col">{esc(label)}</th>')
        parts.append("</tr></thead><tbody>")
        for row in board.rows:
            e = row.entry
            parts.append(f'<tr class="{e.source}" data-id="{esc(e.id)}" data-task="{esc(board.task)}" '
                         f'data-split="{esc(board.split)}" data-setting="{esc(e.setting)}" '
                         f'data-source="{esc(e.source)}">')
            parts.append(f'<td class="num" data-value="{row.rank}">{row.rank}</td>')
            ns = f' <span class="ns" title="not significantly different from the best reproduced entry">' \
                 f'{NOT_SIGNIFICANT_MARK}</span>' if row.vs_best == "n.s." else ""
            partial = " (partial)" if e.partial else ""
            parts.append(f'<td class="model" data-value="{esc(e.name.lower())}">{esc(e.name)}{ns}{esc(partial)}</td>')
            parts.append(f'<td><span class="badge src">{esc(e.source)}</span></td>')
            parts.append(f'<td class="nowrap">{esc(e.setting)}</td>')
            for m, _ in board.columns:
                v = e.metrics.get(m)
                cls = "num headline" if m == board.headline else "num"
                value_attr = "" if v is None else repr(float(v))
                ci = f'<br><span class="ci">{esc(_fmt_ci(e.ci95[m]))}</span>' if (m in e.ci95 and v is not None) else ""
                parts.append(f'<td class="{cls}" data-value="{value_attr}">{esc(_fmt(v, e))}{ci}</td>')
            p_attr = "" if row.p_value is None else repr(row.p_value)
            vs = {"best": "best", "n.s.": f"{NOT_SIGNIFICANT_MARK} {_fmt_p(row.p_value)}"}.get(
                row.vs_best or "", _fmt_p(row.p_value))
            if row.vs_best == "best":
                p_attr = "1.0"
            parts.append(f'<td class="num" data-value="{p_attr}">{esc(vs)}</td>')
            if e.source == "reproduced":
                parts.append(f'<td>{esc(e.profile or "")}</td><td>{esc(e.version or "")}</td>'
                             f'<td class="nowrap">{esc(e.date)}</td>')
                sha = e.predictions_sha256
                own = _own_metrics_text(board, e)
                extra = f"<br>the model's own metrics file: {esc(own)}" if own else ""
                parts.append(f'<td class="ref">predictions sha256 <code title="{esc(sha)}">{esc(sha[:12])}</code>'
                             f'{extra}</td>')
            else:
                parts.append(f'<td>{esc(e.evaluator)}</td><td>–</td>'
                             f'<td class="nowrap">{esc(e.date)}</td>')
                # links are shown as text: the page makes no requests and opens nothing by itself
                url = _citation_url(e)
                link = f' <span class="ci">{esc(url)}</span>' if url else ""
                parts.append(f'<td class="ref">{esc(_citation_text(e))}{link}</td>')
            parts.append("</tr>")
        parts.append("</tbody></table></div>")
        for key, alt in (("bars", "headline metric"), ("recall", "Recall@1 vs IoU threshold")):
            png = figures_png.get(board.slug, {}).get(key)
            if png:
                data = base64.b64encode(png).decode("ascii")
                parts.append(f'<figure><img alt="{esc(board.title)} {esc(board.split)}: {esc(alt)}" '
                             f'src="data:image/png;base64,{data}"></figure>')
        parts.append("</section>")
    tasks = list(dict.fromkeys(b.task for b in boards))
    splits = list(dict.fromkeys(b.split for b in boards))
    version_text = ("entries scored with tempbench " + ", ".join(versions)) if versions else "no reproduced entries"
    page = HTML_TEMPLATE
    for key, value in (("__VERSIONS__", esc(version_text)), ("__NSMARK__", NOT_SIGNIFICANT_MARK),
                       ("__ALPHA__", str(ALPHA)), ("__TASK_OPTIONS__", _options(tasks)),
                       ("__SPLIT_OPTIONS__", _options(splits)), ("__BOARDS__", "\n".join(parts))):
        page = page.replace(key, value)
    return page


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
                f"per-query headline scores, {PERMUTATIONS} resamples, seed {SEED}",
        "boards": [
            {
                "task": b.task,
                "split": b.split,
                "kind": b.kind,
                "title": b.title,
                "split_size": b.split_size,
                "headline": b.headline,
                "columns": [{"metric": m, "label": label} for m, label in b.columns],
                "figures": figure_paths.get(b.slug, {}),
                "recall_curves": curves.get(b.slug, {}),
                "rows": [_row_dict(b, r) for r in b.rows],
            }
            for b in boards
        ],
    }
    files["leaderboard.json"] = (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
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
    """Write the leaderboard files into ``out_dir`` (stale generated files are removed). Returns the paths."""
    return write_outputs(render_leaderboard(submissions_dir), out_dir)


def write_outputs(files: dict[str, bytes], out_dir: str | Path) -> list[Path]:
    """Write rendered files into ``out_dir``, removing generated files that are no longer produced."""
    out = Path(out_dir)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    for stale in sorted(_managed(out) - set(files)):
        (out / stale).unlink()
    written = []
    for rel, data in sorted(files.items()):
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_bytes() != data:
            path.write_bytes(data)
        written.append(path)
    return written


def check_leaderboard(submissions_dir: str | Path = "submissions", out_dir: str | Path = "leaderboard") -> list[str]:
    """Relative paths of generated files that are missing, stale or different in ``out_dir`` (empty = up to date)."""
    return diff_outputs(render_leaderboard(submissions_dir), out_dir)


def diff_outputs(files: dict[str, bytes], out_dir: str | Path) -> list[str]:
    """Relative paths where ``out_dir`` differs from the rendered ``files`` (missing, stale or changed)."""
    out = Path(out_dir)
    existing = _managed(out) if out.is_dir() else set()
    differing = [rel for rel, data in files.items() if not (out / rel).is_file() or (out / rel).read_bytes() != data]
    differing += [rel for rel in existing if rel not in files]
    return sorted(set(differing))


__all__ = ["build_leaderboard", "check_leaderboard", "compute_boards", "diff_outputs", "recall_curve",
           "render_leaderboard", "write_outputs"]
