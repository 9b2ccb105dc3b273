"""Training curves from `train_log.jsonl` (matplotlib, Agg backend): `plot_run(run_dir) -> [png paths]`."""

from __future__ import annotations

import json
from pathlib import Path

from tempbench.errors import TempbenchError

PANELS = (
    ("loss", ("loss",), "loss"),
    ("reward", ("reward_on_mean", "reward_gt"), "reward (on-policy mean vs GT row)"),
    ("iou", ("accuracy_on_mean", "top1_iou"), "accuracy / IoU of on-policy rows"),
    ("kl", ("kl",), "KL to reference (k3)"),
    ("advantage", ("adv_mean_on", "adv_gt", "adv_skew"), "advantages"),
    ("gt_logp", ("gt_logp",), "mean token log-prob of the GT answer"),
    ("format", ("format_rate",), "format rate (CoT phase)"),
    ("throughput", ("tokens_per_s",), "tokens / s"),
)


def read_log(run_dir: str | Path) -> list[dict]:
    """Rows of `run_dir/train_log.jsonl` (a path to the file itself also works)."""
    p = Path(run_dir)
    path = p if p.is_file() else p / "train_log.jsonl"
    if not path.is_file():
        raise TempbenchError(f"{path}: no training log", hint="point at a `tempbench train` output folder")
    rows = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise TempbenchError(f"{path}, line {lineno}: invalid JSON ({e.msg})") from None
    return rows


def plot_run(run_dir: str | Path, out_dir: str | Path | None = None, smooth: int = 1) -> list[Path]:
    """One PNG per panel with data (x = micro-step), written to `out_dir` (default `run_dir/plots`).
    `smooth` > 1 adds a moving average over that many micro-steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = read_log(run_dir)
    base = Path(run_dir) if Path(run_dir).is_dir() else Path(run_dir).parent
    out = Path(out_dir) if out_dir else base / "plots"
    out.mkdir(parents=True, exist_ok=True)
    x_all = np.array([r.get("micro_step", i + 1) for i, r in enumerate(rows)], dtype=float)
    paths: list[Path] = []
    for name, keys, title in PANELS:
        series = []
        for k in keys:
            pts = [(x, r[k]) for x, r in zip(x_all, rows) if isinstance(r.get(k), (int, float))]
            if pts:
                series.append((k, np.array(pts, dtype=float)))
        if not series:
            continue
        fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
        for k, pts in series:
            ax.plot(pts[:, 0], pts[:, 1], lw=1, alpha=0.5 if smooth > 1 else 1.0, label=k)
            if smooth > 1 and len(pts) >= smooth:
                ma = np.convolve(pts[:, 1], np.ones(smooth) / smooth, mode="valid")
                ax.plot(pts[smooth - 1 :, 0], ma, lw=2, label=f"{k} (avg {smooth})")
        ax.set_title(title)
        ax.set_xlabel("micro-step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out / f"{name}.png"
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths
