"""Deterministic synthetic grounding videos: real H.264 mp4 files plus annotations in the unified format.

Each video shows a moving low-saturation texture; one coloured shape (its colour and shape are named in the
query, e.g. "the red square appears") is drawn in exactly the frames whose time ``k / fps`` lies in the window
``[start, end)``.  Window bounds are multiples of ``1 / fps``, so the ground truth is exact and a model can learn
it.  Same ``seed`` -> same annotations and the same decoded frames (video ``i`` depends only on ``(seed, i)``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from tempbench.errors import TempbenchError

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (225, 30, 30),
    "green": (30, 200, 40),
    "blue": (35, 70, 230),
    "yellow": (235, 220, 30),
    "magenta": (220, 40, 210),
    "cyan": (30, 210, 220),
}
SHAPES = ("square", "circle")
ANNOTATIONS_FILE = "annotations.jsonl"


def _pick_codec() -> str:
    import av

    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth grey random texture (2h x 2w, float) that is scrolled to make the background move."""
    small = rng.uniform(0.0, 1.0, size=(h // 8 + 2, w // 8 + 2))
    big = np.kron(small, np.ones((16, 16)))[: 2 * h, : 2 * w]
    # cheap box blur, separable, to soften the blocks
    k = 9
    pad = np.pad(big, k, mode="wrap")
    c = np.cumsum(np.cumsum(pad, axis=0), axis=1)
    blur = (c[2 * k:, 2 * k:] - c[:-2 * k, 2 * k:] - c[2 * k:, :-2 * k] + c[:-2 * k, :-2 * k]) / (2 * k) ** 2
    return blur[: 2 * h, : 2 * w]


def _frame(tex: np.ndarray, k: int, h: int, w: int, tint: np.ndarray, velocity: tuple[int, int]) -> np.ndarray:
    dy, dx = (k * velocity[0]) % h, (k * velocity[1]) % w
    patch = tex[dy:dy + h, dx:dx + w]
    stripes = 0.5 + 0.5 * np.sin((np.arange(w)[None, :] + 2 * k) / 5.0 + np.arange(h)[:, None] / 9.0)
    grey = 70.0 + 70.0 * patch + 20.0 * stripes
    img = grey[..., None] * tint[None, None, :]
    return np.clip(img, 0, 255).astype(np.uint8)


def _draw(img: np.ndarray, shape: str, colour: tuple[int, int, int], cy: float, cx: float, size: int) -> None:
    h, w, _ = img.shape
    yy, xx = np.mgrid[0:h, 0:w]
    if shape == "square":
        mask = (np.abs(yy - cy) <= size / 2) & (np.abs(xx - cx) <= size / 2)
    else:
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= (size / 2) ** 2
    img[mask] = colour


def render_video(rng: np.random.Generator, n_frames: int, size: tuple[int, int], window_frames: tuple[int, int],
                 colour: str, shape: str) -> np.ndarray:
    """Frames (T, H, W, 3) uint8: the background, plus the object in frames ``window_frames[0] <= k < [1]``."""
    w, h = size
    tex = _texture(rng, h, w)
    tint = rng.uniform(0.9, 1.1, size=3)
    velocity = (int(rng.integers(-2, 3)), int(rng.integers(1, 4)))
    obj = max(12, min(h, w) // 4)
    y0, y1 = rng.uniform(obj, h - obj, size=2)
    x0, x1 = rng.uniform(obj, w - obj, size=2)
    ks, ke = window_frames
    frames = np.empty((n_frames, h, w, 3), dtype=np.uint8)
    for k in range(n_frames):
        img = _frame(tex, k, h, w, tint, velocity)
        if ks <= k < ke:
            a = (k - ks) / max(ke - ks - 1, 1)
            _draw(img, shape, COLOURS[colour], y0 + a * (y1 - y0), x0 + a * (x1 - x0), obj)
        frames[k] = img
    return frames


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: int, codec: str | None = None) -> str:
    """Encode uint8 RGB frames (T, H, W, 3) to ``path`` with PyAV; returns the codec used.

    H.264 (libx264, CRF 18, single thread: deterministic) or MPEG-4 part 2 when libx264 is missing.
    """
    import av

    codec = codec or _pick_codec()
    t, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise TempbenchError(f"synthetic video size must be even, got {w}x{h}")
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.thread_count = 1
        if codec == "libx264":
            stream.options = {"crf": "18", "preset": "veryfast"}
        else:
            stream.codec_context.bit_rate = 4_000_000
            stream.options = {"qscale": "2"}
        for k in range(t):
            frame = av.VideoFrame.from_ndarray(frames[k], format="rgb24")
            frame.pts = k
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return codec


def generate_synthetic(out_dir: str | os.PathLike, n_videos: int = 8, seed: int = 0,
                       duration_range: tuple[float, float] = (8, 16), size: tuple[int, int] = (128, 96),
                       fps: int = 8, codec: str | None = None) -> dict:
    """Write ``n_videos`` mp4 files and ``annotations.jsonl`` (one query per video) into ``out_dir``.

    ``size`` is (width, height).  Records: ``{"qid", "vid", "query", "duration", "windows": [[s, e]]}`` with
    ``duration = n_frames / fps`` and the window covering 15-60 % of the video (at least one second).
    Returns ``{"annotations": path, "videos": {vid: path}, "records": [...], "codec": name}``.
    """
    lo, hi = duration_range
    if not (0 < lo <= hi) or n_videos < 0 or fps <= 0:
        raise TempbenchError(f"bad synthetic settings: duration_range={duration_range}, n_videos={n_videos}, "
                             f"fps={fps}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    codec = codec or _pick_codec()
    records, videos = [], {}
    colours = sorted(COLOURS)
    order = np.random.default_rng(seed).permutation(len(colours))  # balanced colours across videos
    for i in range(n_videos):
        rng = np.random.default_rng([seed, i])
        n_frames = max(int(round(rng.uniform(lo, hi) * fps)), 4)
        min_len = max(int(fps), int(0.15 * n_frames))
        max_len = max(min_len, int(0.6 * n_frames))
        length = int(rng.integers(min_len, max_len + 1))
        ks = int(rng.integers(0, n_frames - length + 1))
        ke = ks + length
        colour = colours[int(order[i % len(colours)])]
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        frames = render_video(rng, n_frames, size, (ks, ke), colour, shape)
        vid = f"synth_{seed}_{i:04d}"
        path = out / f"{vid}.mp4"
        write_video(path, frames, fps, codec)
        videos[vid] = str(path)
        records.append({"qid": i, "vid": vid, "query": f"the {colour} {shape} appears",
                        "duration": n_frames / fps, "windows": [[ks / fps, ke / fps]]})
    ann = out / ANNOTATIONS_FILE
    with open(ann, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    return {"annotations": str(ann), "videos": videos, "records": records, "codec": codec}


def make_corrupt_video(path: str | os.PathLike, kind: str = "garbage") -> Path:
    """Write a video file that cannot be decoded: ``garbage`` (an mp4 header then random bytes),
    ``truncated`` (the first third of a real mp4) or ``empty`` (zero bytes)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "garbage":
        rng = np.random.default_rng(1234)
        p.write_bytes(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + rng.bytes(4096))
    elif kind == "truncated":
        rng = np.random.default_rng(1234)
        frames = render_video(rng, 16, (64, 48), (4, 12), "red", "square")
        write_video(p, frames, 8)
        data = p.read_bytes()
        p.write_bytes(data[: len(data) // 3])
    else:
        raise TempbenchError(f"unknown corrupt video kind {kind!r}", "use garbage, truncated or empty")
    return p
