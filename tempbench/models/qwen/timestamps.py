"""When each temporal patch of a Qwen3-VL / Qwen3.5 video was: the seconds written as `<t seconds>` text.

Qwen3-VL and Qwen3.5 learn time from text: before the tokens of each temporal patch (2 frames) the processor writes
`<{t:.1f} seconds>`. The stock rule (transformers `Qwen3VLProcessor._calculate_timestamps`, the same in the
Qwen3-VL release, transformers 4.57, and in 5.17 and 5.24): take the SOURCE frame index of every sampled frame,
pad the list to a multiple of the temporal patch size by repeating the last index, convert each index to seconds
as `index / video_fps` (`video_fps` = the source stream's frame rate, `VideoMetadata.fps`), and give each patch the
mean of the times of its first and last frame, `(t_first + t_last) / 2`, in that order of float operations.

Sources of error this module refuses instead of guessing (each one broke a public harness, see issue 13):
- no sampled indices (frames handed over without their metadata): transformers then assumes indices 0..T-1 at a
  default 24 fps, so a 30-s clip ends at `<2.4 seconds>`;
- a missing, zero or non-finite source fps (never a nominal or default fps; never an `int()`-truncated one: a
  29.97-fps file is 29.97);
- timestamps of one video reused for another (each clip carries its own indices; the adapter computes them per
  clip).

`source="pts"` uses the decoded presentation times of the sampled frames instead (`Clip.timestamps`), with the same
pairing, for variable-frame-rate files where `index / fps` is not when a frame was shown.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from tempbench.errors import TempbenchError

TIME_SOURCES = ("frame-indices", "pts")


def patch_times(times: Sequence[float], temporal_patch_size: int = 2) -> list[float]:
    """Per-patch seconds from per-frame seconds: pad with the last frame's time, then `(first + last) / 2`."""
    t = [float(x) for x in times]
    if not t:
        return []
    m = int(temporal_patch_size)
    if len(t) % m:
        t.extend(t[-1] for _ in range(m - len(t) % m))
    return [(t[i] + t[i + m - 1]) / 2 for i in range(0, len(t), m)]


def index_timestamps(indices: Sequence[int], video_fps: float, temporal_patch_size: int = 2) -> list[float]:
    """The stock formula: source frame indices and the source fps -> seconds per temporal patch."""
    fps = float(video_fps) if video_fps is not None else float("nan")
    if not (fps > 0 and math.isfinite(fps)):
        raise TempbenchError(f"source fps {video_fps!r} is not a positive number: frame times would be guessed",
                             "decode the video with tempbench.video.decode_video (it records the stream's rate)")
    idx = [int(i) for i in indices]
    m = int(temporal_patch_size)
    if len(idx) % m:
        idx.extend(idx[-1] for _ in range(m - len(idx) % m))
    seconds = [i / fps for i in idx]
    return [(seconds[i] + seconds[i + m - 1]) / 2 for i in range(0, len(seconds), m)]


def clip_timestamps(clip, source: str = "frame-indices", temporal_patch_size: int = 2) -> list[float]:
    """Seconds of each temporal patch of a decoded `tempbench.video.Clip`.

    `source="frame-indices"` (default): `index_timestamps(clip.indices, clip.source_fps)`, the stock formula;
    `source="pts"`: `patch_times(clip.timestamps)`, the decoded presentation times."""
    if source not in TIME_SOURCES:
        raise TempbenchError(f"timestamps={source!r} is unknown", f"use one of: {', '.join(TIME_SOURCES)}")
    name = getattr(clip, "path", "?")
    if source == "pts":
        ts = getattr(clip, "timestamps", None)
        if ts is None or len(ts) != clip.num_frames:
            raise TempbenchError(f"clip {name!r}: no decoded time for every frame", "decode it with decode_video")
        return patch_times(list(ts), temporal_patch_size)
    indices = getattr(clip, "indices", None)
    if indices is None:
        raise TempbenchError(
            f"clip {name!r} has no sampled frame indices: its frame times would be guessed",
            "decode it with tempbench.video.decode_video, or use timestamps=pts (decoded presentation times)")
    if len(indices) != clip.num_frames:
        raise TempbenchError(f"clip {name!r}: {len(indices)} frame indices for {clip.num_frames} frames")
    return index_timestamps(list(indices), clip.source_fps, temporal_patch_size)


def timestamp_text(seconds: float) -> str:
    """The marker written before a temporal patch: `<{t:.1f} seconds>`."""
    return f"<{seconds:.1f} seconds>"
