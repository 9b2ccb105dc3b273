"""Video decoding (PyAV), fps sampling with frame and pixel budgets, true timestamps, checks and prefetching.

Sampling follows qwen-vl-utils (the reference pipeline of Qwen2/2.5-VL and of TempSamp-R1): ``nframes`` from
:func:`smart_nframes`, indices ``round(linspace(0, total - 1, nframes))`` and sampled fps
``nframes / total * source_fps``.  ``total`` is the number of frames in the stream (packets that are not marked
discard), ``source_fps`` the stream's average frame rate, as decord reports them.

Frames are returned at the source size (not resized): a model's processor resizes them (for Qwen-VL,
:func:`tempbench.models.qwen.processor.resize_clip`), inside a prefetch worker when memory matters (:class:`Prefetcher`).  Display rotation metadata is
ignored, as in decord and torchvision.

Timestamps are seconds from the first presented frame: ``(pts - first_pts) * time_base``.

Decoding converts only the sampled frames to RGB and, where the stream has a keyframe between two sampled frames,
seeks to the keyframe before the next sampled frame instead of decoding the frames in between (long videos, sparse
sampling, short GOPs). Frames are identified by their presentation time on the packet index, so the frames returned
are the ones a decode of every frame returns (tested on real mp4 files with several GOPs); a stream where a seek does
not land where the index says is decoded from the start, frame by frame. ``set_decode_threads`` sets ffmpeg's
threads per decode (the runner's prefetch workers use one each).
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import math
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from tempbench.errors import TempbenchError

VIDEO_EXTS = (".mp4", ".mkv", ".webm", ".avi")
# the torchvision resize a model's processor reproduces (tempbench.models.qwen.processor)
RESIZE_MODES = ("qwen-vl-utils", "transformers")
# how frame indices are drawn: qwen-vl-utils (the reference) or transformers' Qwen3-VL video processor
SAMPLINGS = ("qwen-vl-utils", "transformers")


# --------------------------------------------------------------------------------------------------- sampling


def round_by_factor(number: float, factor: int) -> int:
    """Closest multiple of ``factor`` (Python's round: half to even)."""
    return round(number / factor) * factor


def ceil_by_factor(number: float, factor: int) -> int:
    return math.ceil(number / factor) * factor


def floor_by_factor(number: float, factor: int) -> int:
    return math.floor(number / factor) * factor


def smart_nframes(total_frames: int, video_fps: float, fps: float = 2.0, min_frames: int = 4,
                  max_frames: int = 768, frame_factor: int = 2) -> int:
    """Number of frames to sample, as qwen-vl-utils ``smart_nframes`` (fps mode).

    ``n = total / video_fps * fps`` clamped to ``[ceil_f(min_frames), floor_f(min(max_frames, total))]`` and to
    ``total``, then floored to a multiple of ``frame_factor``.  One deviation: qwen-vl-utils raises for a video
    with fewer than ``frame_factor`` frames; here such a video keeps all its frames (the processor pads time).
    """
    if total_frames <= 0:
        raise ValueError("video has no frames")
    if not video_fps or video_fps <= 0 or not math.isfinite(video_fps):
        raise ValueError(f"invalid source fps {video_fps!r}")
    lo = ceil_by_factor(min_frames, frame_factor)
    hi = floor_by_factor(min(max_frames, total_frames), frame_factor)
    n = total_frames / video_fps * fps
    n = min(min(max(n, lo), hi), total_frames)
    n = floor_by_factor(n, frame_factor)
    if n < frame_factor:
        return min(total_frames, frame_factor)
    return int(n)


def _linspace_f32(start: float, end: float, steps: int) -> np.ndarray:
    """``torch.linspace(start, end, steps)`` (float32, CPU) reproduced in numpy.

    torch's CPU kernel computes ``step = (end - start) / (steps - 1)`` in float32 and fills the first half as
    ``start + step * i`` and the second half as ``end - step * (steps - 1 - i)``; the x86 builds contract each
    of these into one fused multiply-add (a single rounding), emulated here exactly in float64.
    """
    if steps <= 0:
        return np.zeros(0, dtype=np.float32)
    if steps == 1:
        return np.array([start], dtype=np.float32)
    f32, f64 = np.float32, np.float64
    s, e = f32(start), f32(end)
    step = f64((e - s) / f32(steps - 1))
    i = np.arange(steps, dtype=np.int64)
    half = steps // 2
    out = np.empty(steps, dtype=np.float32)
    out[:half] = (f64(s) + step * i[:half].astype(np.float32).astype(f64)).astype(np.float32)
    out[half:] = (f64(e) - step * (steps - 1 - i[half:]).astype(np.float32).astype(f64)).astype(np.float32)
    return out


def sample_frame_indices(total_frames: int, nframes: int) -> np.ndarray:
    """Indices of the sampled frames: ``torch.linspace(0, total - 1, nframes).round().long()`` (qwen-vl-utils)."""
    if nframes <= 0 or total_frames <= 0:
        return np.zeros(0, dtype=np.int64)
    return np.rint(_linspace_f32(0.0, float(total_frames - 1), nframes)).astype(np.int64)


def sampled_fps(nframes: int, total_frames: int, video_fps: float) -> float:
    """fps of the sampled frames: ``nframes / total_frames * video_fps`` (qwen-vl-utils ``sample_fps``)."""
    return nframes / max(total_frames, 1e-6) * video_fps


def transformers_nframes(total_frames: int, video_fps: float, fps: float = 2.0, min_frames: int = 4,
                         max_frames: int = 768) -> int:
    """Number of frames transformers' Qwen3-VL video processor samples (``Qwen3VLVideoProcessor.sample_frames``,
    5.17 and 5.24): ``min(max(int(total / video_fps * fps), min_frames), max_frames, total)``: truncated by
    ``int()``, no rounding to the temporal patch size (an odd count is padded by the processor)."""
    if total_frames <= 0:
        raise ValueError("video has no frames")
    if not video_fps or video_fps <= 0 or not math.isfinite(video_fps):
        raise ValueError(f"invalid source fps {video_fps!r}")
    n = int(total_frames / video_fps * fps)
    return max(1, min(max(n, min_frames), max_frames, total_frames))


def transformers_frame_indices(total_frames: int, nframes: int) -> np.ndarray:
    """``np.linspace(0, total - 1, nframes).round().astype(int)`` (float64, half to even), as transformers."""
    if nframes <= 0 or total_frames <= 0:
        return np.zeros(0, dtype=np.int64)
    return np.linspace(0, total_frames - 1, nframes).round().astype(np.int64)


def frame_plan(total_frames: int, video_fps: float, settings: VideoSettings) -> np.ndarray:
    """The sampled frame indices of a video of ``total_frames`` at ``video_fps`` under ``settings.sampling``."""
    if settings.sampling == "transformers":
        n = transformers_nframes(total_frames, video_fps, settings.fps, settings.min_frames, settings.max_frames)
        return transformers_frame_indices(total_frames, n)
    n = smart_nframes(total_frames, video_fps, settings.fps, settings.min_frames, settings.max_frames,
                      settings.frame_factor)
    return sample_frame_indices(total_frames, n)




@dataclass
class VideoSettings:
    """How videos are sampled for a model (defaults: TempSamp-R1 / Qwen2.5-VL, paper settings).

    ``fps`` frames per second sampled, ``min_frames``/``max_frames`` frame-count bounds, ``min_pixels`` and
    ``max_pixels`` per frame, ``total_pixels`` for the whole video (qwen-vl-utils ``total_pixels``), and
    ``frame_factor`` (frame counts are multiples of it; equals the temporal patch size 2); ``resize_mode``
    which torchvision resize the frames reproduce: ``"qwen-vl-utils"`` (the Qwen reference pipeline) or
    ``"transformers"`` (transformers' video processor resizing on CPU); see :mod:`tempbench.models.qwen.processor`.
    ``sampling`` how frame indices are drawn: ``"qwen-vl-utils"`` (default; :func:`smart_nframes`) or
    ``"transformers"`` (transformers' Qwen3-VL video processor: :func:`transformers_nframes`); a default
    ``sampling`` is left out of :meth:`to_dict`, so run identities written before the field existed still match.
    For Qwen3-VL / Qwen3.5, ``resize_mode="transformers"`` + ``sampling="transformers"`` is transformers' own video
    pipeline, where ``min_pixels`` / ``total_pixels`` are its ``size.shortest_edge`` / ``size.longest_edge``
    (over t x h x w) and ``max_pixels`` is unused (:mod:`tempbench.models.qwen.processor3`).
    """

    fps: float = 2.0
    max_frames: int = 768
    min_frames: int = 4
    min_pixels: int = 16 * 28 * 28
    max_pixels: int = 768 * 28 * 28
    total_pixels: int = 3584 * 28 * 28
    frame_factor: int = 2
    resize_mode: str = "qwen-vl-utils"
    sampling: str = "qwen-vl-utils"

    def __post_init__(self):
        if self.resize_mode not in RESIZE_MODES:
            raise TempbenchError(f"video setting resize_mode={self.resize_mode!r} is unknown",
                                 f"use one of: {', '.join(RESIZE_MODES)}")
        if self.sampling not in SAMPLINGS:
            raise TempbenchError(f"video setting sampling={self.sampling!r} is unknown",
                                 f"use one of: {', '.join(SAMPLINGS)}")
        for name in ("fps", "max_frames", "min_frames", "min_pixels", "max_pixels", "total_pixels", "frame_factor"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise TempbenchError(f"video setting {name}={value!r} must be a positive number",
                                     "e.g. --video fps=2 --video max_frames=64")
        if self.min_frames > self.max_frames:
            raise TempbenchError(f"video setting min_frames={self.min_frames} exceeds max_frames={self.max_frames}")
        if self.min_pixels > self.max_pixels:
            raise TempbenchError(f"video setting min_pixels={self.min_pixels} exceeds max_pixels={self.max_pixels}")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        if d["sampling"] == "qwen-vl-utils":
            d.pop("sampling")
        return d

    @classmethod
    def from_dict(cls, d: dict) -> VideoSettings:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise TempbenchError(f"unknown video setting(s): {', '.join(unknown)}",
                                 f"known settings: {', '.join(sorted(known))}")
        return cls(**d)


@dataclass
class Clip:
    """Sampled frames of one video.

    ``frames`` uint8 (T, H, W, 3) RGB at source size (unless ``resized_from`` holds the source (H, W)); a numpy
    array, or a torch tensor for a clip rendered on an accelerator (``tempbench.synthetic.scene_clip``);
    ``timestamps`` float64 (T,) seconds of each frame; ``fps`` the SAMPLED fps (``T / total * source_fps``,
    the value Qwen2.5-VL's ``second_per_grid_ts`` needs); ``duration`` seconds covered by the decoded
    stream; ``source_fps``; ``indices`` the sampled frame indices; ``n_source_frames`` the stream's frames.
    """

    frames: np.ndarray
    timestamps: np.ndarray
    fps: float
    duration: float
    source_fps: float
    path: str
    indices: np.ndarray | None = None
    n_source_frames: int | None = None
    resized_from: tuple[int, int] | None = None

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])


def _err(path, what: str, hint: str | None = None) -> TempbenchError:
    return TempbenchError(f"video {path}: {what}", hint)


def _open(path):
    import av

    p = Path(path)
    if not p.exists():
        raise _err(path, "file not found", "check --videos DIR and the file name (tempbench data check-videos)")
    if p.is_dir():
        raise _err(path, "is a directory, not a video file")
    try:
        container = av.open(str(p))
    except Exception as e:  # av.FFmpegError and friends
        raise _err(path, f"cannot be opened ({type(e).__name__}: {e})",
                   "the file is corrupt or not a video; re-download it") from e
    if not container.streams.video:
        container.close()
        raise _err(path, "has no video stream", "re-download the video")
    return container


def _rate(stream) -> float | None:
    for r in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if r is not None and r > 0:
            v = float(r)
            if math.isfinite(v) and 0 < v < 1000:
                return v
    return None


@dataclass
class _Index:
    pts: np.ndarray  # presentation timestamps (stream time base units), sorted
    durations: np.ndarray
    time_base: Fraction
    keyframe: np.ndarray | None = None  # per frame (presentation order): its packet is a keyframe


def _demux_index(container, path) -> _Index:
    """Presentation times of all frames from the packets (no decoding): cheap, exact frame count."""
    stream = container.streams.video[0]
    pts, durs, keys = [], [], []
    try:
        for packet in container.demux(stream):
            if packet.size == 0 or packet.is_discard:
                continue
            t = packet.pts if packet.pts is not None else packet.dts
            if t is None:
                t = (pts[-1] + 1) if pts else 0
            pts.append(t)
            durs.append(packet.duration or 0)
            keys.append(bool(packet.is_keyframe) and packet.pts is not None)
    except Exception as e:
        if not pts:
            raise _err(path, f"cannot be read ({type(e).__name__}: {e})", "re-download the video") from e
    if not pts:
        raise _err(path, "has no video frames", "re-download the video")
    order = np.argsort(np.asarray(pts, dtype=np.int64), kind="stable")
    tb = stream.time_base or Fraction(1, 1_000_000)
    return _Index(np.asarray(pts, dtype=np.int64)[order], np.asarray(durs, dtype=np.int64)[order], tb,
                  np.asarray(keys, dtype=bool)[order])


def _stream_geometry(index: _Index, stream) -> tuple[float, float]:
    """(source_fps, duration in seconds) from the packet index."""
    tb = float(index.time_base)
    n = len(index.pts)
    fps = _rate(stream)
    span = float(index.pts[-1] - index.pts[0]) * tb
    if fps is None:
        fps = (n - 1) / span if n > 1 and span > 0 else 25.0
    last = float(index.durations[-1]) * tb if index.durations[-1] > 0 else 1.0 / fps
    return fps, span + last


_DECODE_THREADS: int | None = None  # ffmpeg threads per decode; None: ffmpeg's automatic count
SEEK_MIN_SKIP = 8  # seek to a keyframe only when that skips decoding at least this many frames


def set_decode_threads(threads: int | None) -> None:
    """ffmpeg threads for each decode in this process (None: automatic). Prefetch workers set 1: they already run
    one decode per core."""
    global _DECODE_THREADS
    if threads is not None and threads < 1:
        raise TempbenchError(f"decode threads must be >= 1, got {threads}")
    _DECODE_THREADS = threads


def _threads(stream) -> None:
    stream.thread_type = "AUTO"
    if _DECODE_THREADS is not None:
        stream.codec_context.thread_count = int(_DECODE_THREADS)


def decode_video(path: str | os.PathLike, settings: VideoSettings | None = None, seek: bool = True) -> Clip:
    """Decode ``path`` and sample frames at ``settings.fps`` (qwen-vl-utils rules), with true timestamps.

    ``seek=False`` decodes every frame up to the last sampled one (the frames are the same; module docstring).
    Raises :class:`TempbenchError` naming the file when it is missing or cannot be decoded.
    """
    settings = settings or VideoSettings()
    container = _open(path)
    try:
        index = _demux_index(container, path)
        stream = container.streams.video[0]
        source_fps, duration = _stream_geometry(index, stream)
    finally:
        container.close()
    total = len(index.pts)
    for _attempt in range(2):
        indices = frame_plan(total, source_fps, settings)
        n = len(indices)
        frames = None
        if _attempt == 0 and seek:
            frames, times = _decode_seeking(path, indices, index)
        if frames is None:
            frames, times, decoded = _decode_indices(path, indices)
        if frames is not None:
            break
        if decoded == 0:
            raise _err(path, "no frame could be decoded", "the file is corrupt; re-download it")
        total = decoded  # fewer decodable frames than packets: sample again over the frames that exist
    else:  # pragma: no cover - the second pass samples only decodable frames
        raise _err(path, "frame count changed between decoding passes")
    first = float(index.pts[0]) * float(index.time_base)
    ts = np.asarray(times, dtype=np.float64)
    missing = np.isnan(ts)
    if missing.any():  # frames without pts: place them on the packet index (or the nominal grid)
        pos = np.minimum(indices, len(index.pts) - 1)
        ts[missing] = (index.pts[pos].astype(np.float64) * float(index.time_base))[missing]
    ts = np.maximum(ts - first, 0.0)
    return Clip(frames=frames, timestamps=ts, fps=sampled_fps(n, total, source_fps), duration=duration,
                source_fps=source_fps, path=str(path), indices=indices, n_source_frames=total)


def _decode_indices(path, indices: np.ndarray) -> tuple[np.ndarray | None, list[float], int]:
    """Decode frames in presentation order, converting only the wanted ones to RGB.

    Returns (frames or None if the stream ended before the last wanted index, times, frames decoded).
    """
    container = _open(path)
    wanted: dict[int, list[int]] = {}
    for pos, i in enumerate(indices.tolist()):
        wanted.setdefault(i, []).append(pos)
    last = int(indices.max())
    out: list[np.ndarray | None] = [None] * len(indices)
    times = [float("nan")] * len(indices)
    count = 0
    try:
        stream = container.streams.video[0]
        _threads(stream)
        try:
            for frame in container.decode(stream):
                if count in wanted:
                    arr = frame.to_ndarray(format="rgb24")
                    t = float(frame.pts * frame.time_base) if frame.pts is not None and frame.time_base else None
                    for pos in wanted[count]:
                        out[pos] = arr
                        if t is not None:
                            times[pos] = t
                count += 1
                if count > last:
                    break
        except Exception as e:
            if count == 0:
                raise _err(path, f"cannot be decoded ({type(e).__name__}: {e})",
                           "the file is corrupt; re-download it") from e
            # a damaged tail: keep what was decoded, resample below if frames are missing
    finally:
        container.close()
    if any(a is None for a in out):
        return None, times, count
    return np.stack(out), times, count  # type: ignore[arg-type]


def seek_plan(wanted: np.ndarray, keyframe: np.ndarray, min_skip: int = SEEK_MIN_SKIP) -> list[int]:
    """Where to seek when decoding the frames `wanted` (sorted distinct presentation indices): for each run of wanted
    frames, the keyframe index to seek to before it, or -1 to keep decoding on. A seek is planned when the keyframe
    at or before the next wanted frame lies at least `min_skip` frames past the last frame decoded."""
    keys = np.flatnonzero(keyframe)
    plan, last = [], -1
    for w in wanted.tolist():
        pos = int(np.searchsorted(keys, w, side="right")) - 1
        k = int(keys[pos]) if pos >= 0 else -1
        plan.append(k if k >= 0 and k - last - 1 >= min_skip else -1)
        last = w
    return plan


def _decode_seeking(path, indices: np.ndarray, index: _Index) -> tuple[np.ndarray | None, list[float]]:
    """The frames at `indices` (presentation order), seeking to keyframes past frames nobody wants. Frames are found
    by pts on the packet index. Returns (None, []) when the stream does not behave as indexed (a seek that lands
    elsewhere, frames without pts, duplicate pts, a damaged stream): the caller then decodes frame by frame."""
    if index.keyframe is None or len(np.unique(index.pts)) != len(index.pts):
        return None, []
    wanted = np.unique(indices)
    plan = seek_plan(wanted, index.keyframe)
    if all(k < 0 for k in plan):
        return None, []  # nothing to skip: the sequential decoder is as fast
    got: dict[int, tuple[np.ndarray, float]] = {}
    container = _open(path)
    try:
        stream = container.streams.video[0]
        _threads(stream)
        frames = None
        pos = 0  # next wanted position
        floor = None  # after a seek: frames before the keyframe are leading frames of the previous GOP
        while pos < len(wanted):
            if plan[pos] >= 0:
                container.seek(int(index.pts[plan[pos]]), stream=stream, backward=True, any_frame=False)
                frames = container.decode(stream)
                floor, first = int(index.pts[plan[pos]]), True
            elif frames is None:  # the first wanted frame comes before any useful keyframe: from the start
                frames = container.decode(stream)
                floor, first = int(index.pts[0]), True
            for frame in frames:
                if frame.pts is None:
                    return None, []
                if frame.pts < floor:
                    continue
                if first:
                    if int(frame.pts) != floor:
                        return None, []  # the seek did not land on the indexed keyframe
                    first = False
                i = int(np.searchsorted(index.pts, frame.pts))
                if i >= len(index.pts) or index.pts[i] != frame.pts:
                    return None, []
                if i == wanted[pos]:
                    got[i] = (frame.to_ndarray(format="rgb24"), float(frame.pts * frame.time_base))
                    pos += 1
                    break
                if i > wanted[pos]:
                    return None, []  # a wanted frame never came out
            else:
                return None, []  # the stream ended early
    except Exception:
        return None, []
    finally:
        container.close()
    out = [got[int(i)][0] for i in indices]
    return np.stack(out), [got[int(i)][1] for i in indices]


def probe_video(path: str | os.PathLike, exact: bool = False, verify: bool = False) -> dict:
    """Cheap facts about a video: ``duration`` (s), ``fps``, ``n_frames``, ``width``, ``height``.

    From container metadata; the packets are demuxed (no decoding) when the metadata lacks the duration or the
    frame count, or when ``exact``.  ``verify`` also decodes the first frame.  Raises TempbenchError.
    """
    container = _open(path)
    try:
        stream = container.streams.video[0]
        cc = stream.codec_context
        info = {"width": int(cc.width or 0), "height": int(cc.height or 0), "fps": _rate(stream),
                "n_frames": int(stream.frames or 0), "duration": None}
        if stream.duration is not None and stream.time_base:
            info["duration"] = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            info["duration"] = container.duration / 1_000_000
        if exact or not info["duration"] or not info["n_frames"] or info["fps"] is None:
            index = _demux_index(container, path)
            fps, duration = _stream_geometry(index, stream)
            info.update(n_frames=len(index.pts), fps=fps, duration=duration)
            if verify:
                container.seek(0)
        if verify:
            try:
                frame = next(iter(container.decode(stream)), None)
            except Exception as e:
                raise _err(path, f"cannot be decoded ({type(e).__name__}: {e})",
                           "the file is corrupt; re-download it") from e
            if frame is None:
                raise _err(path, "no frame could be decoded", "the file is corrupt; re-download it")
            info["width"], info["height"] = frame.width, frame.height
    finally:
        container.close()
    return info


def find_video(video_dir: str | os.PathLike, vid: str, exts: Sequence[str] = VIDEO_EXTS) -> Path | None:
    """The file for video id ``vid`` in ``video_dir``: ``vid + ext``, also with ActivityNet's ``v_`` prefix
    added or removed; ``vid`` may already carry its extension."""
    d = Path(video_dir)
    for name in _candidate_names(vid):
        if Path(name).suffix.lower() in exts and (d / name).is_file():
            return d / name
        for ext in exts:
            p = d / f"{name}{ext}"
            if p.is_file():
                return p
    return None


def _candidate_names(vid: str) -> list[str]:
    names = [vid]
    names.append(vid[2:] if vid.startswith("v_") else f"v_{vid}")
    return names


def _dir_index(video_dir: Path, exts: Sequence[str]) -> dict[str, Path]:
    """File name (and stem, for known extensions) -> path, from one directory listing."""
    index: dict[str, Path] = {}
    if not video_dir.is_dir():
        return index
    with os.scandir(video_dir) as it:
        for entry in it:
            if not entry.is_file():
                continue
            p = Path(entry.path)
            index.setdefault(p.name, p)
            if p.suffix.lower() in exts:
                stem = p.stem
                # prefer the first extension in `exts` order when several files share a stem
                old = index.get(stem)
                if old is None or exts.index(p.suffix.lower()) < exts.index(old.suffix.lower()):
                    index[stem] = p
    return index


def _check_one(vid: str, path: Path, annotated: float | None, tolerance: float) -> tuple[str, dict | None]:
    try:
        info = probe_video(path, verify=True)
    except TempbenchError as e:
        return "undecodable", {"vid": vid, "path": str(path), "reason": e.message}
    except Exception as e:  # pragma: no cover - anything PyAV throws that _open did not wrap
        return "undecodable", {"vid": vid, "path": str(path), "reason": f"{type(e).__name__}: {e}"}
    if annotated is not None and info["duration"] is not None and abs(info["duration"] - annotated) > tolerance:
        return "duration_mismatch", {"vid": vid, "path": str(path), "annotated": float(annotated),
                                     "decoded": info["duration"], "diff": info["duration"] - float(annotated)}
    return "present", None


def check_videos(vids: Iterable[str], durations: dict[str, float] | None, video_dir: str | os.PathLike,
                 exts: Sequence[str] = VIDEO_EXTS, tolerance: float = 1.0, workers: int | None = None,
                 progress: Callable[[int, int], None] | None = None) -> dict:
    """Check that every video of a task is present, decodable and as long as annotated.

    Returns ``{"n", "present": [vid], "missing": [vid], "undecodable": [{vid, path, reason}],
    "duration_mismatch": [{vid, path, annotated, decoded, diff}]}`` (``|decoded - annotated| > tolerance``
    seconds; a mismatching video also counts as present).  Durations come from container metadata.
    """
    exts = tuple(e.lower() for e in exts)
    vids = list(dict.fromkeys(vids))
    durations = durations or {}
    d = Path(video_dir)
    index = _dir_index(d, exts)
    report: dict[str, Any] = {"n": len(vids), "video_dir": str(d), "present": [], "missing": [],
                              "undecodable": [], "duration_mismatch": []}
    jobs: list[tuple[str, Path]] = []
    for vid in vids:
        path = next((index[n] for n in _candidate_names(vid) if n in index), None)
        if path is None:
            path = find_video(d, vid, exts)  # e.g. case-insensitive file systems
        if path is None:
            report["missing"].append(vid)
        else:
            jobs.append((vid, path))
    results: dict[str, tuple[str, dict | None]] = {}
    workers = workers or min(8, (os.cpu_count() or 2) * 2)
    with cf.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {pool.submit(_check_one, vid, path, durations.get(vid), tolerance): vid for vid, path in jobs}
        for done, fut in enumerate(cf.as_completed(futures), 1):
            results[futures[fut]] = fut.result()
            if progress is not None:
                progress(done, len(jobs))
    for vid, _path in jobs:  # report in input order
        status, detail = results[vid]
        if status == "undecodable":
            report["undecodable"].append(detail)
        else:
            report["present"].append(vid)
            if status == "duration_mismatch":
                report["duration_mismatch"].append(detail)
    return report


# --------------------------------------------------------------------------------------------------- prefetch


@dataclass
class Prefetched:
    """One prefetched item: ``value`` when ``error`` is None, else the error message (never an exception)."""

    index: int
    item: Any
    value: Any = None
    error: str | None = None
    seconds: float = 0.0
    meta: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


PARENT_CHECK_SECONDS = 0.2


def exit_with_parent(parent_pid: int) -> None:
    """Worker initializer: a daemon thread that ends this process as soon as its parent is gone (a SIGKILLed run
    leaves no decoding workers behind; once they are gone, multiprocessing's resource tracker exits too)."""
    import threading

    def watch():
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(PARENT_CHECK_SECONDS)

    threading.Thread(target=watch, name="tempbench-parent-watch", daemon=True).start()


def _run(fn: Callable[[Any], Any], item: Any) -> tuple[Any, str | None, float]:
    t0 = time.perf_counter()
    try:
        return fn(item), None, time.perf_counter() - t0
    except TempbenchError as e:
        return None, str(e), time.perf_counter() - t0
    except Exception as e:
        return None, f"{type(e).__name__}: {e}", time.perf_counter() - t0


class Prefetcher:
    """Run ``fn`` (default: :func:`decode_video` with ``settings``) over ``items`` ahead of the consumer.

    Parallel workers (threads by default: PyAV decodes without the GIL; ``kind="process"`` for picklable
    ``fn``), at most ``ahead`` results in flight or waiting, results yielded in input order as
    :class:`Prefetched` values; a failing item becomes a value with ``error`` set.
    ``items`` may be a lazy iterable; it is consumed only as far as needed.
    """

    def __init__(self, items: Iterable[Any], fn: Callable[[Any], Any] | None = None,
                 settings: VideoSettings | None = None, workers: int = 2, ahead: int | None = None,
                 kind: str = "thread"):
        if workers < 1:
            raise TempbenchError(f"prefetch workers must be >= 1, got {workers}")
        if kind not in ("thread", "process"):
            raise TempbenchError(f"prefetch kind must be 'thread' or 'process', got {kind!r}")
        if fn is None:
            fn = _DecodeFn(settings or VideoSettings())
        self.fn = fn
        self.items = iter(items)
        self.workers = workers
        self.ahead = max(1, ahead if ahead is not None else 2 * workers)
        self.kind = kind
        self._pool: cf.Executor | None = None
        self._pending: deque[tuple[int, Any, cf.Future]] = deque()
        self._next = 0

    def _fill(self) -> None:
        assert self._pool is not None
        while len(self._pending) < self.ahead:
            try:
                item = next(self.items)
            except StopIteration:
                return
            self._pending.append((self._next, item, self._pool.submit(_run, self.fn, item)))
            self._next += 1

    def __iter__(self) -> Iterator[Prefetched]:
        if self._pool is None:
            if self.kind == "thread":
                self._pool = cf.ThreadPoolExecutor(max_workers=self.workers)
            else:  # spawn: safe after CUDA/OpenMP initialised the parent, unlike fork
                import multiprocessing

                self._pool = cf.ProcessPoolExecutor(max_workers=self.workers,
                                                    mp_context=multiprocessing.get_context("spawn"),
                                                    initializer=exit_with_parent, initargs=(os.getpid(),))
        try:
            self._fill()
            while self._pending:
                i, item, fut = self._pending.popleft()
                try:
                    value, error, seconds = fut.result()
                except Exception as e:  # e.g. a broken process pool or an unpicklable result
                    value, error, seconds = None, f"{type(e).__name__}: {e}", 0.0
                self._fill()
                yield Prefetched(index=i, item=item, value=value, error=error, seconds=seconds)
        finally:
            self.close()

    def close(self) -> None:
        for _, _, fut in self._pending:
            fut.cancel()
        self._pending.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass(frozen=True)
class _DecodeFn:
    """Picklable ``decode_video(path, settings)`` (works with process pools); ``None`` path = missing."""

    settings: VideoSettings

    def __call__(self, path):
        if path is None:
            raise TempbenchError("video not found", "check --videos DIR (tempbench data check-videos)")
        return decode_video(path, self.settings)
