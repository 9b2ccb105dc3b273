"""Deterministic synthetic grounding videos: real H.264 mp4 files plus annotations in the unified format.

Two generators (the task cards in `tempbench.tasks.synthetic` fix which one a task uses, and with what settings):

- `single` (task `synthetic`): a moving low-saturation texture; ONE coloured shape (its colour and shape are named
  in the query, e.g. "the red square appears") is drawn in exactly the frames whose time ``k / fps`` lies in the
  window ``[start, end)``. The query adds nothing the video does not show: the answer needs the video only.
- `multi` (task `synthetic-hard`): two or three coloured shapes appear one after another, in disjoint windows;
  the query names one of them by colour and shape ("the red circle appears": another object has the same colour
  or the same shape), by colour only ("the red object appears": the others have other colours) or by shape only
  ("the circle appears": the others are squares). The answer needs the video AND the query.

Window bounds are multiples of ``1 / fps``, so the ground truth is exact. Video ``i`` depends only on
``(seed, i)``: the same seed gives the same annotations and the same decoded frames, and the first n videos of a
larger set are the n-video set. Annotations are drawn before any pixel, so `videos=False` writes the same
records without rendering (what the baselines need: the train split's windows, not its videos).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tempbench.errors import TempbenchError

if TYPE_CHECKING:  # pragma: no cover
    from tempbench.video import Clip

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (225, 30, 30),
    "green": (30, 200, 40),
    "blue": (35, 70, 230),
    "yellow": (235, 220, 30),
    "magenta": (220, 40, 210),
    "cyan": (30, 210, 220),
}
SHAPES = ("square", "circle")
GENERATORS = ("single", "multi")
QUERY_MODES = ("both", "colour", "shape")  # how a `multi` query names its object
ANNOTATIONS_FILE = "annotations.jsonl"
VID_PREFIX = {"single": "synth", "multi": "synthhard"}


@dataclass(frozen=True)
class SceneObject:
    """One shape drawn in frames ``start <= k < end`` (frame indices at the video's fps)."""

    colour: str
    shape: str
    start: int
    end: int
    size: int  # side / diameter in pixels


@dataclass(frozen=True)
class Scene:
    """Everything about one generated video except its pixels: the objects, the queried one, the query."""

    vid: str
    n_frames: int
    fps: int
    size: tuple[int, int]  # (width, height)
    objects: tuple[SceneObject, ...]
    target: int  # index into objects
    query: str

    def record(self, qid: int) -> dict:
        obj = self.objects[self.target]
        return {"qid": qid, "vid": self.vid, "query": self.query, "duration": self.n_frames / self.fps,
                "windows": [[obj.start / self.fps, obj.end / self.fps]]}

    def object_records(self, qid: int) -> list[dict]:
        """One record per object of the scene, in object order: the card's record for the target, and for each other
        object a query that names it unambiguously (`object_query`), with its window. Training data only (a
        recipe's choice: the same video with answers that only the query tells apart); the cards' splits keep
        one query per video."""
        rows = []
        for j, obj in enumerate(self.objects):
            query = self.query if j == self.target else object_query(self, j)
            rows.append({"qid": qid + j, "vid": self.vid, "query": query, "duration": self.n_frames / self.fps,
                         "windows": [[obj.start / self.fps, obj.end / self.fps]]})
        return rows

    def description(self, named: int | None = None) -> str:
        """Every object in the order it appears, as ``"{colour} {shape} {start} to {end}"`` (seconds, two decimals,
        `tempbench.parsing.format_span`), joined by ``"; "``: what the video shows, in words. With `named` (an index
        into `objects`: the object a query names), each entry's words are followed by ``yes`` for that object and
        ``no`` for the others (``"red square no 0.38 to 1.88; cyan circle yes 3.00 to 4.62"``). A recipe's
        reasoning target (train records' ``think``)."""
        from tempbench.parsing import format_span

        order = sorted(range(len(self.objects)), key=lambda j: self.objects[j].start)
        entries = []
        for j in order:
            o = self.objects[j]
            mark = "" if named is None else (" yes" if j == named else " no")
            entries.append(f"{o.colour} {o.shape}{mark} {format_span(o.start / self.fps, o.end / self.fps)}")
        return "; ".join(entries)


@dataclass(frozen=True)
class DescribedObject:
    """One entry of a description (`Scene.description`) as a model wrote it."""

    colour: str
    shape: str
    mark: str | None  # "yes", "no", or None (an unmarked description)
    start: float
    end: float


_ENTRY = re.compile(r"([a-z]+) ([a-z]+)(?: (yes|no))? (\d+(?:\.\d+)?) to (\d+(?:\.\d+)?)")


def parse_description(text: str) -> list[DescribedObject]:
    """The entries of a description in the form `Scene.description` writes, in the order written; text between or
    around them is ignored, an entry not in that form is skipped (a model's output: a few hundred characters)."""
    return [DescribedObject(m.group(1), m.group(2), m.group(3), float(m.group(4)), float(m.group(5)))
            for m in _ENTRY.finditer(text)]


def query_names(query: str, colour: str, shape: str) -> bool:
    """Whether a generated query ("the red circle appears", "the red object appears", "the circle appears": the forms
    `object_query` and the `multi` generator write) fits an object of that colour and shape: every word it names is
    the object's."""
    words = query.removeprefix("the ").removesuffix(" appears").split()
    return all(w in (colour, shape) for w in words if w != "object")


def object_query(scene: Scene, j: int) -> str:
    """A query that names object j of `scene` and no other: by colour and shape, by colour alone if no other
    object has that colour, or by shape alone if no other has that shape; of the forms that apply, the one the
    sha256 of the video's id and j picks (the same query for the same object every time)."""
    obj = scene.objects[j]
    others = [o for k, o in enumerate(scene.objects) if k != j]
    forms = [f"the {obj.colour} {obj.shape} appears"]
    if all(o.colour != obj.colour for o in others):
        forms.append(f"the {obj.colour} object appears")
    if all(o.shape != obj.shape for o in others):
        forms.append(f"the {obj.shape} appears")
    digest = hashlib.sha256(f"{scene.vid}/{j}".encode()).digest()
    return forms[digest[0] % len(forms)]


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


def default_object_size(size: tuple[int, int]) -> int:
    w, h = size
    return max(12, min(h, w) // 4)


def _scene_draws(rng: np.random.Generator, size: tuple[int, int], objects) -> tuple:
    """What `rng` draws for a video's pixels, in order: texture, tint, velocity, then each object's two points."""
    w, h = size
    tex = _texture(rng, h, w)
    tint = rng.uniform(0.9, 1.1, size=3)
    velocity = (int(rng.integers(-2, 3)), int(rng.integers(1, 4)))
    paths = []
    for obj in objects:
        y0, y1 = rng.uniform(obj.size, h - obj.size, size=2)
        x0, x1 = rng.uniform(obj.size, w - obj.size, size=2)
        paths.append((y0, y1, x0, x1))
    return tex, tint, velocity, paths


def render_scene(rng: np.random.Generator, n_frames: int, size: tuple[int, int],
                 objects: tuple[SceneObject, ...] | list[SceneObject], indices=None) -> np.ndarray:
    """Frames (T, H, W, 3) uint8: the moving background, plus each object in its frames, moving on a straight
    line between two random points. Draws from `rng`: texture, tint, velocity, then each object's two points.
    `indices`: render only these frames (the same pixels as those rows of the whole video)."""
    w, h = size
    tex, tint, velocity, paths = _scene_draws(rng, size, objects)
    ks = range(n_frames) if indices is None else [int(k) for k in indices]
    frames = np.empty((len(ks), h, w, 3), dtype=np.uint8)
    for row, k in enumerate(ks):
        img = _frame(tex, k, h, w, tint, velocity)
        for obj, (y0, y1, x0, x1) in zip(objects, paths):
            if obj.start <= k < obj.end:
                a = (k - obj.start) / max(obj.end - obj.start - 1, 1)
                _draw(img, obj.shape, COLOURS[obj.colour], y0 + a * (y1 - y0), x0 + a * (x1 - x0), obj.size)
        frames[row] = img
    return frames


def render_scene_torch(rng: np.random.Generator, size: tuple[int, int], objects, indices, device):
    """:func:`render_scene` of frames `indices` in torch on `device`, all frames at once: uint8 (T, H, W, 3). The
    draws from `rng` are the same (on the host); the pixels are computed in float64 as numpy does, so the frames
    equal numpy's but for a rare last-bit difference of `sin` on another device (tests: identical on a CPU)."""
    import torch

    w, h = size
    tex, tint, velocity, paths = _scene_draws(rng, size, objects)
    f64 = dict(dtype=torch.float64, device=device)
    ks = torch.as_tensor(np.asarray(indices, dtype=np.int64), device=device)
    rows = torch.arange(h, device=device)
    cols = torch.arange(w, device=device)
    dy = torch.remainder(ks * velocity[0], h)[:, None, None]
    dx = torch.remainder(ks * velocity[1], w)[:, None, None]
    patch = torch.as_tensor(tex, **f64)[dy + rows[None, :, None], dx + cols[None, None, :]]  # (T, H, W)
    k = ks.to(torch.float64)[:, None, None]
    stripes = 0.5 + 0.5 * torch.sin((cols.to(torch.float64)[None, None, :] + 2 * k) / 5.0
                                    + rows.to(torch.float64)[None, :, None] / 9.0)
    grey = 70.0 + 70.0 * patch + 20.0 * stripes
    frames = (grey[..., None] * torch.as_tensor(tint, **f64)).clamp(0, 255).to(torch.uint8)  # truncates as astype
    yy, xx = rows.to(torch.float64)[None, :, None], cols.to(torch.float64)[None, None, :]
    for obj, (y0, y1, x0, x1) in zip(objects, paths):  # no host sync: masks and `where`, no boolean indexing
        active = (ks >= obj.start) & (ks < obj.end)
        a = (k - obj.start) / max(obj.end - obj.start - 1, 1)
        cy, cx = y0 + a * (y1 - y0), x0 + a * (x1 - x0)
        if obj.shape == "square":
            mask = ((yy - cy).abs() <= obj.size / 2) & ((xx - cx).abs() <= obj.size / 2)
        else:
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= (obj.size / 2) ** 2
        mask = mask & active[:, None, None]
        colour = torch.tensor(COLOURS[obj.colour], dtype=torch.uint8, device=device)
        frames = torch.where(mask[..., None], colour, frames)
    return frames


def yuv420_round_trip(frames):
    """RGB uint8 (T, H, W, 3) through 8-bit limited-range BT.601 YUV 4:2:0 and back (what `write_video`'s yuv420p
    conversion does to colours before the codec; H.264's own quantisation noise is not modelled): chroma averaged
    over 2x2 blocks, every plane rounded to 8 bits. ITU-R BT.601 coefficients (Y' in 16-235, Cb/Cr in 16-240).
    A numpy array or a torch tensor (on any device; the same float32 arithmetic) in, the same kind out."""
    if isinstance(frames, np.ndarray):
        xp, x = np, frames.astype(np.float32)
    else:
        import torch

        xp, x = torch, frames.to(torch.float32)
    t, h, w, _ = frames.shape
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = xp.round(0.256788 * r + 0.504129 * g + 0.0979059 * b) * (255 / 219)  # (Y' - 16), full range

    def half(c):  # a chroma plane (offset from 128) averaged over 2x2 blocks, rounded to 8 bits, full range
        m = c.reshape(t, h // 2, 2, w // 2, 2)
        m = m.mean(axis=(2, 4)) if xp is np else m.mean(dim=(2, 4))
        return xp.round(m) * (255 / 224)

    cb = half(-0.148223 * r - 0.290992 * g + 0.439216 * b)[:, :, None, :, None]
    cr = half(0.439216 * r - 0.367788 * g - 0.0714275 * b)[:, :, None, :, None]
    y = y.reshape(t, h // 2, 2, w // 2, 2)
    out = xp.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], -1)
    out = xp.round(out).clip(0, 255)
    return (out.astype(np.uint8) if xp is np else out.to(xp.uint8)).reshape(t, h, w, 3)


def render_video(rng: np.random.Generator, n_frames: int, size: tuple[int, int], window_frames: tuple[int, int],
                 colour: str, shape: str) -> np.ndarray:
    """Frames (T, H, W, 3) uint8: the background, plus one object in frames ``window_frames[0] <= k < [1]``."""
    obj = SceneObject(colour, shape, int(window_frames[0]), int(window_frames[1]), default_object_size(size))
    return render_scene(rng, n_frames, size, [obj])


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


# ---------------------------------------------------------------------------------------------------------------
# scenes: what video i shows (drawn from (seed, i) before any pixel)


@dataclass(frozen=True)
class GeneratorSettings:
    """The distribution of one synthetic task (its card's `generator` block)."""

    kind: str = "single"
    duration_range: tuple[float, float] = (8, 16)
    size: tuple[int, int] = (128, 96)  # (width, height)
    fps: int = 8
    objects: tuple[int, int] = (2, 3)  # `multi`: fewest and most objects per video
    object_size: int | None = None  # pixels; None = min(width, height) // 4 (at least 12)

    def __post_init__(self):
        lo, hi = self.duration_range
        if self.kind not in GENERATORS:
            raise TempbenchError(f"unknown synthetic generator {self.kind!r}", f"use one of {', '.join(GENERATORS)}")
        if not (0 < lo <= hi) or self.fps <= 0:
            raise TempbenchError(f"bad synthetic settings: duration_range={self.duration_range}, fps={self.fps}")
        if self.size[0] % 2 or self.size[1] % 2:
            raise TempbenchError(f"synthetic video size must be even, got {self.size[0]}x{self.size[1]}")
        if not (1 <= self.objects[0] <= self.objects[1] <= len(COLOURS)):
            raise TempbenchError(f"bad synthetic settings: objects={self.objects}")

    @classmethod
    def from_card(cls, block: dict) -> GeneratorSettings:
        return cls(kind=block["kind"], duration_range=tuple(block["duration_range"]), size=tuple(block["size"]),
                   fps=int(block["fps"]), objects=tuple(block.get("objects", (2, 3))),
                   object_size=block.get("object_size"))

    @property
    def pixels(self) -> int:
        return int(self.object_size or default_object_size(self.size))


def draw_scene(settings: GeneratorSettings, seed: int, i: int) -> tuple[Scene, np.random.Generator]:
    """Video i of `seed`: its scene, and the generator that then draws its pixels (`render_scene`)."""
    rng = np.random.default_rng([seed, i])
    if settings.kind == "single":
        return _draw_single(settings, seed, i, rng), rng
    return _draw_multi(settings, seed, i, rng), rng


def _n_frames(settings: GeneratorSettings, rng: np.random.Generator) -> int:
    lo, hi = settings.duration_range
    return max(int(round(rng.uniform(lo, hi) * settings.fps)), 4)


def _colour_order(seed: int) -> list[str]:
    """Target colours cycle through a seeded permutation: balanced over every 6 consecutive videos."""
    colours = sorted(COLOURS)
    return [colours[int(j)] for j in np.random.default_rng(seed).permutation(len(colours))]


def _draw_single(settings: GeneratorSettings, seed: int, i: int, rng: np.random.Generator) -> Scene:
    fps = settings.fps
    n_frames = _n_frames(settings, rng)
    min_len = max(int(fps), int(0.15 * n_frames))
    max_len = max(min_len, int(0.6 * n_frames))
    length = int(rng.integers(min_len, max_len + 1))
    ks = int(rng.integers(0, n_frames - length + 1))
    colour = _colour_order(seed)[i % len(COLOURS)]
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    obj = SceneObject(colour, shape, ks, ks + length, settings.pixels)
    return Scene(f"{VID_PREFIX['single']}_{seed}_{i:04d}", n_frames, fps, settings.size, (obj,), 0,
                 f"the {colour} {shape} appears")


def _draw_multi(settings: GeneratorSettings, seed: int, i: int, rng: np.random.Generator) -> Scene:
    """2-3 objects in disjoint windows (each 1.5 s to 28 % (3 objects) or 40 % (2) of the video, at least half a
    second apart); the query names the target unambiguously and, for `both`, another object shares its colour or
    its shape (so both words matter)."""
    fps = settings.fps
    n_frames = _n_frames(settings, rng)
    k = int(rng.integers(settings.objects[0], settings.objects[1] + 1))
    colour = _colour_order(seed)[i % len(COLOURS)]
    mode = QUERY_MODES[(i // len(COLOURS)) % len(QUERY_MODES)]  # every colour x mode once per 18 videos
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    other_shape = SHAPES[1 - SHAPES.index(shape)]
    others = [c for c in sorted(COLOURS) if c != colour]
    if mode == "both":  # a distractor of the same colour, and (with 3 objects, or by a coin) one of the same shape
        same_colour_first = k == 3 or bool(rng.integers(2))
        pairs = [(colour, other_shape)] if same_colour_first else []
        if k == 3 or not same_colour_first:
            pairs.append((others[int(rng.integers(len(others)))], shape))
    elif mode == "colour":  # other colours, any shape
        picked = rng.choice(len(others), size=k - 1, replace=False)
        pairs = [(others[int(j)], SHAPES[int(rng.integers(len(SHAPES)))]) for j in picked]
    else:  # "shape": the other shape, any colours (the target's own colour included)
        everyone = sorted(COLOURS)
        picked = rng.choice(len(everyone), size=k - 1, replace=False)
        pairs = [(everyone[int(j)], other_shape) for j in picked]
    pairs = [(colour, shape)] + pairs  # the target first, then placed in a random temporal order
    gap = max(1, fps // 2)
    frac = 0.28 if k >= 3 else 0.4
    min_len = int(1.5 * fps)
    max_len = max(min_len, int(frac * n_frames))
    lengths = [int(rng.integers(min_len, max_len + 1)) for _ in range(k)]
    while sum(lengths) + (k - 1) * gap > n_frames:  # only for very short videos: shorten the longest
        j = int(np.argmax(lengths))
        if lengths[j] <= 1:
            raise TempbenchError(f"synthetic video {i}: {k} objects do not fit in {n_frames} frames")
        lengths[j] -= 1
    order = [int(j) for j in rng.permutation(k)]  # order[p] = object shown p-th
    free = n_frames - sum(lengths) - (k - 1) * gap
    cuts = np.sort(rng.integers(0, free + 1, size=k))
    extra = np.diff(np.concatenate([[0], cuts]))  # extra gap before each object in temporal order
    objects: list[SceneObject | None] = [None] * k
    t = 0
    for p, j in enumerate(order):
        t += int(extra[p]) + (gap if p else 0)
        objects[j] = SceneObject(pairs[j][0], pairs[j][1], t, t + lengths[j], settings.pixels)
        t += lengths[j]
    query = {"both": f"the {colour} {shape} appears", "colour": f"the {colour} object appears",
             "shape": f"the {shape} appears"}[mode]
    return Scene(f"{VID_PREFIX['multi']}_{seed}_{i:04d}", n_frames, fps, settings.size, tuple(objects), 0, query)


def scene_clip(settings: GeneratorSettings, seed: int, i: int, video_settings, device=None) -> Clip:
    """Video i of `seed` as `tempbench.video.decode_video` would return it from the mp4 file `write_scene_video`
    writes, without the file: the same sampled indices, timestamps, fps and duration; the sampled frames rendered
    directly and passed through :func:`yuv420_round_trip` (within a few grey levels of the decoded frames; the
    H.264 quantisation noise is missing). With `device`, rendered by torch there (`frames` is then a uint8
    tensor on it). For training data: evaluation always decodes the real files."""
    from tempbench.video import Clip, frame_plan

    scene, rng = draw_scene(settings, seed, i)
    indices = frame_plan(scene.n_frames, float(scene.fps), video_settings)
    if device is None:
        frames = yuv420_round_trip(render_scene(rng, scene.n_frames, scene.size, scene.objects, indices))
    else:  # a torch tensor on `device`
        frames = yuv420_round_trip(render_scene_torch(rng, scene.size, scene.objects, indices, device))
    return Clip(frames=frames, timestamps=indices.astype(np.float64) / scene.fps,
                fps=len(indices) / scene.n_frames * scene.fps, duration=scene.n_frames / scene.fps,
                source_fps=float(scene.fps), path=f"rendered:{scene.vid}", indices=indices,
                n_source_frames=scene.n_frames)


def parse_vid(vid: str) -> tuple[str, int, int] | None:
    """(generator kind, seed, i) of a generated video's id exactly as :func:`draw_scene` writes it
    (`synth_SEED_IIII`, `synthhard_SEED_IIII`: ASCII digits, i zero-padded to 4), else None."""
    m = _VID_RE.fullmatch(vid)
    if m is None:
        return None
    prefix, seed, i = m.group(1), int(m.group(2)), int(m.group(3))
    if m.group(2) != str(seed) or m.group(3) != f"{i:04d}":  # not the canonical spelling of that video
        return None
    return {p: k for k, p in VID_PREFIX.items()}[prefix], seed, i


_VID_RE = re.compile(rf"({'|'.join(VID_PREFIX.values())})_([0-9]+)_([0-9]+)", re.ASCII)


# ---------------------------------------------------------------------------------------------------------------
# generation


def write_scene_video(job: tuple) -> str:
    """Render and encode video i of `seed` into folder (a process-pool job: `(settings, seed, i, folder, codec)`);
    returns the codec."""
    settings, seed, i, folder, codec = job
    scene, rng = draw_scene(settings, seed, i)
    frames = render_scene(rng, scene.n_frames, scene.size, scene.objects)
    return write_video(Path(folder) / f"{scene.vid}.mp4", frames, scene.fps, codec)


def generate_scenes(out_dir: str | os.PathLike, settings: GeneratorSettings, n_videos: int, seed: int,
                    codec: str | None = None, videos: bool = True, indices=None, workers: int = 1) -> dict:
    """Write ``annotations.jsonl`` (one query per video, qid = i) and, with `videos`, the mp4 files of
    `indices` (default all) into out_dir, in `workers` processes. Returns ``{"annotations", "videos",
    "records", "codec"}``."""
    if n_videos < 0:
        raise TempbenchError(f"bad synthetic settings: n_videos={n_videos}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scenes = [draw_scene(settings, seed, i)[0] for i in range(n_videos)]
    records = [s.record(i) for i, s in enumerate(scenes)]
    paths = {s.vid: str(out / f"{s.vid}.mp4") for s in scenes}
    if videos:
        codec = codec or _pick_codec()
        todo = list(range(n_videos)) if indices is None else [int(i) for i in indices]
        jobs = [(settings, seed, i, str(out), codec) for i in todo]
        done = False
        if workers > 1 and len(jobs) > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor
            from concurrent.futures.process import BrokenProcessPool

            try:
                with ProcessPoolExecutor(max_workers=min(workers, len(jobs)),
                                         mp_context=multiprocessing.get_context("spawn")) as pool:
                    list(pool.map(write_scene_video, jobs, chunksize=max(1, len(jobs) // (4 * workers))))
                done = True
            except BrokenProcessPool:  # e.g. a main module that cannot be re-imported (code read from stdin)
                pass
        if not done:  # in this process (the same bytes)
            for job in jobs:
                write_scene_video(job)
    ann = out / ANNOTATIONS_FILE
    tmp = ann.with_name(ann.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    os.replace(tmp, ann)
    return {"annotations": str(ann), "videos": paths if videos else {}, "records": records, "codec": codec}


def generate_synthetic(out_dir: str | os.PathLike, n_videos: int = 8, seed: int = 0,
                       duration_range: tuple[float, float] = (8, 16), size: tuple[int, int] = (128, 96),
                       fps: int = 8, codec: str | None = None, *, generator: str = "single",
                       objects: tuple[int, int] = (2, 3), object_size: int | None = None, videos: bool = True,
                       workers: int = 1) -> dict:
    """Write ``n_videos`` mp4 files and ``annotations.jsonl`` (one query per video) into ``out_dir``.

    ``size`` is (width, height).  Records: ``{"qid", "vid", "query", "duration", "windows": [[s, e]]}`` with
    ``duration = n_frames / fps``; `single`: the window covers 15-60 % of the video (at least one second);
    `multi`: see the module docstring. Returns ``{"annotations": path, "videos": {vid: path}, "records": [...],
    "codec": name}`` (no videos and codec None with ``videos=False``).
    """
    settings = GeneratorSettings(generator, tuple(duration_range), tuple(size), int(fps), tuple(objects),
                                 object_size)
    return generate_scenes(out_dir, settings, n_videos, seed, codec=codec, videos=videos, workers=workers)


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
