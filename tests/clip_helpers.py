"""Decoded-looking clips for model tests (no video file)."""

from __future__ import annotations

import numpy as np

from tempbench.video import Clip


def make_clip(t=6, h=64, w=96, src_fps=29.97, total=301, seed=0) -> Clip:
    """A decoded-looking clip: frames sampled from `total` source frames at `src_fps` (indices as qwen-vl-utils)."""
    rng = np.random.default_rng(seed)
    idx = np.rint(np.linspace(0, total - 1, t)).astype(np.int64)
    return Clip(frames=rng.integers(0, 256, (t, h, w, 3), dtype=np.uint8), timestamps=idx / src_fps,
                fps=t / total * src_fps, duration=total / src_fps, source_fps=src_fps, path=f"memory-{seed}",
                indices=idx, n_source_frames=total)
