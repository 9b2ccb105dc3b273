"""A torch-only Qwen2-VL / Qwen2.5-VL video processor (no torchvision, no qwen-vl-utils).

What it reproduces, and from where (facts read from the public sources, code written here):

* Frame count and sampled indices: qwen-vl-utils ``smart_nframes`` (fps sampling clamped to
  ``[min_frames, min(max_frames, total)]``, then floored to a multiple of ``FRAME_FACTOR`` = 2) and
  ``idx = torch.linspace(0, total - 1, nframes).round()`` (float32 linspace, half-to-even rounding).
* Sampled fps: ``nframes / total_frames * video_fps`` (qwen-vl-utils ``sample_fps``; transformers'
  ``VideoMetadata.sampled_fps`` is the same formula).
* Per-frame pixel budget: qwen-vl-utils ``fetch_video``:
  ``max_pixels = max(min(VIDEO_MAX_PIXELS, total_pixels / nframes * FRAME_FACTOR), int(min_pixels * 1.05))``.
* Target size: ``smart_resize`` (both sides multiples of ``patch_size * merge_size`` = 28, pixel count
  within ``[min_pixels, max_pixels]``, aspect ratio kept).
* Resize: BICUBIC with antialias on uint8 (T, C, H, W), unchanged when the size does not change, in one of two
  modes (``VideoSettings.resize_mode``): ``"qwen-vl-utils"`` (default; torchvision v1 ``functional.resize``,
  called by qwen-vl-utils ``fetch_video``: float32 -> interpolate -> clamp(0, 255) -> round -> uint8) or
  ``"transformers"`` (torchvision v2 ``resize``, called by transformers' video processor: torch's native uint8
  kernel on CPU, the float path elsewhere).  The two differ by up to ~20 grey levels on noise; both are checked
  bit for bit against the originals by ``benchmarks/check_qwen_processor_gpu.py``.
* Rescale + normalise: transformers' fused ``rescale_and_normalize``: ``(x.float() - mean*255) / (std*255)``
  in float32 with OPENAI CLIP mean/std, ``mean*255`` computed as ``tensor(mean) * (1 / rescale_factor)``.
* Patchify: transformers ``Qwen2VLVideoProcessor.patchify``: pad the time axis with copies of the last frame
  to a multiple of ``temporal_patch_size``; rows ordered (t, h-block, w-block, h-in-merge, w-in-merge), each
  row flattened (C, tp, ps, ps) -> ``pixel_values_videos`` of shape (t*h*w, C*tp*ps*ps).
* ``second_per_grid_ts = temporal_patch_size / sampled_fps`` (transformers ``Qwen2_5_VLProcessor``).

Frame sampling (``smart_nframes``, ``sample_frame_indices``, ``sampled_fps``) lives in :mod:`tempbench.video`,
which decodes; this module resizes, normalises and patchifies. torch is imported inside the functions that need it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from tempbench.video import (
    RESIZE_MODES,
    Clip,
    VideoSettings,
    ceil_by_factor,
    floor_by_factor,
    round_by_factor,
)

if TYPE_CHECKING:  # pragma: no cover
    import torch

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
RESCALE_FACTOR = 1 / 255
MAX_RATIO = 200


def smart_resize(height: int, width: int, factor: int = 28, min_pixels: float = 4 * 28 * 28,
                 max_pixels: float = 16384 * 28 * 28) -> tuple[int, int]:
    """Target (height, width) as qwen-vl-utils ``smart_resize``.

    Both sides are multiples of ``factor``; ``h*w`` lies in ``[min_pixels, max_pixels]`` (up to the rounding
    of the ceil branch); aspect ratio is kept as closely as possible. Aspect ratios above 200 are refused.
    No side is ever below ``factor``: qwen-vl-utils applies that floor when rounding, transformers' copy when
    shrinking; both are applied here (they only matter for sides under ``factor`` pixels, where one of the two
    originals returns a zero side and fails later).
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"frame size must be positive, got {height}x{width}")
    if max(height, width) / min(height, width) > MAX_RATIO:
        raise ValueError(f"absolute aspect ratio must be smaller than {MAX_RATIO}, got "
                         f"{max(height, width) / min(height, width)}")
    h_bar = max(factor, round_by_factor(height, factor))
    w_bar = max(factor, round_by_factor(width, factor))
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, floor_by_factor(height / beta, factor))
        w_bar = max(factor, floor_by_factor(width / beta, factor))
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = ceil_by_factor(height * beta, factor)
        w_bar = ceil_by_factor(width * beta, factor)
    return h_bar, w_bar


def frame_pixel_budget(nframes: int, min_pixels: float, max_pixels: float, total_pixels: float,
                       frame_factor: int = 2) -> float:
    """Per-frame max pixels under a whole-video budget (qwen-vl-utils ``fetch_video``).

    ``max(min(max_pixels, total_pixels / nframes * frame_factor), int(min_pixels * 1.05))``.
    """
    budget = max(min(max_pixels, total_pixels / max(nframes, 1) * frame_factor), int(min_pixels * 1.05))
    return budget


def target_size(height: int, width: int, nframes: int, settings: VideoSettings, factor: int = 28) -> tuple[int, int]:
    """Resized (height, width) for a clip of ``nframes`` frames of ``height`` x ``width`` under ``settings``."""
    max_px = frame_pixel_budget(nframes, settings.min_pixels, settings.max_pixels, settings.total_pixels,
                                settings.frame_factor)
    return smart_resize(height, width, factor=factor, min_pixels=settings.min_pixels, max_pixels=max_px)


def _as_tchw_uint8(frames: Any) -> torch.Tensor:
    import torch

    t = torch.from_numpy(np.ascontiguousarray(frames)) if isinstance(frames, np.ndarray) else frames
    if t.dtype != torch.uint8 or t.ndim != 4 or t.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {tuple(t.shape)} {t.dtype}")
    return t.permute(0, 3, 1, 2).contiguous()


_FLOAT_CHUNK_ELEMENTS = 1 << 26  # float32 elements per chunk of frames on the float resize path (256 MB)


def resize_frames(frames: Any, size: tuple[int, int], device: str | None = None,
                  mode: str = "qwen-vl-utils") -> torch.Tensor:
    """Resize uint8 frames (T, H, W, 3) to ``size`` = (h, w), BICUBIC with antialias, as torchvision does.

    ``mode="qwen-vl-utils"``: torchvision v1 ``transforms.functional.resize`` (what qwen-vl-utils calls): float32
    -> interpolate -> clamp(0, 255) -> round -> uint8, on any device.  ``mode="transformers"``: torchvision v2
    ``resize`` (what transformers' video processor calls): on CPU torch's native uint8 bicubic kernel, elsewhere
    the float path.  Both return the input untouched when the size does not change.
    Returns a uint8 tensor (T, 3, h, w) on ``device`` (default CPU).
    """
    import torch
    import torch.nn.functional as F

    if mode not in RESIZE_MODES:
        raise ValueError(f"unknown resize mode {mode!r}; use one of {RESIZE_MODES}")
    video = _as_tchw_uint8(frames)
    if device is not None:
        video = video.to(device)
    h, w = size
    if tuple(video.shape[-2:]) == (h, w) or video.numel() == 0:
        return video
    if mode == "transformers" and video.device.type == "cpu":
        return F.interpolate(video, size=[h, w], mode="bicubic", align_corners=False, antialias=True)
    # float path in chunks of frames (each frame is resized independently, so chunking changes no value) to
    # keep the float32 copy of full-size frames under ~256 MB
    step = max(1, _FLOAT_CHUNK_ELEMENTS // max(1, video[0].numel()))
    out = [F.interpolate(video[i:i + step].to(torch.float32), size=[h, w], mode="bicubic", align_corners=False,
                         antialias=True).clamp_(min=0, max=255).round_().to(torch.uint8)
           for i in range(0, video.shape[0], step)]
    return out[0] if len(out) == 1 else torch.cat(out)


def resize_clip(clip: Clip, settings: VideoSettings, factor: int = 28) -> Clip:
    """A copy of ``clip`` with frames already resized to the model's size (saves memory when prefetching).

    ``process_video`` on the result gives exactly the same output as on the original clip: the clip records the
    source size in ``resized_from`` and the target is always computed from the source size.
    """
    if clip.resized_from is not None:
        return clip
    t, h, w, _ = clip.frames.shape
    size = target_size(h, w, t, settings, factor)
    frames = resize_frames(clip.frames, size, mode=settings.resize_mode).permute(0, 2, 3, 1).contiguous().numpy()
    return dataclasses.replace(clip, frames=frames, resized_from=(h, w))


def normalize(video: torch.Tensor, image_mean=OPENAI_CLIP_MEAN, image_std=OPENAI_CLIP_STD,
              rescale_factor: float = RESCALE_FACTOR) -> torch.Tensor:
    """uint8 (..., C, H, W) -> float32 ``(x - mean/rescale) / (std/rescale)`` (transformers' fused rescale+normalise)."""
    import torch

    mean = torch.tensor(image_mean, device=video.device) * (1.0 / rescale_factor)
    std = torch.tensor(image_std, device=video.device) * (1.0 / rescale_factor)
    x = video.to(torch.float32)
    return x.sub_(mean.view(-1, 1, 1)).div_(std.view(-1, 1, 1))


def patchify(video: torch.Tensor, patch_size: int = 14, temporal_patch_size: int = 2,
             merge_size: int = 2) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """(T, C, H, W) float -> ((gt*gh*gw, C*tp*ps*ps), (gt, gh, gw)) in Qwen2-VL's row order.

    Row index = ((t * gh/m + bh) * gw/m + bw) * m*m + ih * m + iw for temporal group t, merge block (bh, bw)
    and position (ih, iw) inside the block; each row holds channel-major (C, tp, ps, ps) values.
    """
    import torch

    t, c, h, w = video.shape
    if h % (patch_size * merge_size) or w % (patch_size * merge_size):
        raise ValueError(f"frame size {h}x{w} is not a multiple of {patch_size * merge_size}")
    pad = (-t) % temporal_patch_size
    if pad:
        video = torch.cat([video, video[-1:].expand(pad, -1, -1, -1)], dim=0)
        t += pad
    gt, gh, gw = t // temporal_patch_size, h // patch_size, w // patch_size
    m = merge_size
    x = video.reshape(gt, temporal_patch_size, c, gh // m, m, patch_size, gw // m, m, patch_size)
    # axes: 0 gt, 1 tp, 2 c, 3 bh, 4 ih, 5 ph, 6 bw, 7 iw, 8 pw -> (gt, bh, bw, ih, iw, c, tp, ph, pw)
    x = x.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return x.reshape(gt * gh * gw, c * temporal_patch_size * patch_size * patch_size), (gt, gh, gw)


def process_video(clip: Clip, settings: VideoSettings, patch_size: int = 14, temporal_patch_size: int = 2,
                  merge_size: int = 2, image_mean=OPENAI_CLIP_MEAN, image_std=OPENAI_CLIP_STD,
                  device: str | None = None) -> dict:
    """Model inputs for one decoded clip, as transformers' Qwen2-VL video processor + Qwen2.5-VL processor.

    Returns ``pixel_values_videos`` (float32, (gt*gh*gw, 3*tp*ps*ps)), ``video_grid_thw`` (int64, (1, 3)),
    ``second_per_grid_ts`` ([temporal_patch_size / clip.fps]) and ``frame_times`` (the decoded times, for
    ``--time-hint``).  The per-frame size follows the whole-video pixel
    budget of ``settings`` (see :func:`target_size`); resizing is bit-identical to torchvision's uint8 path.
    """
    import torch

    frames = clip.frames
    t = int(frames.shape[0])
    if t == 0:
        raise ValueError(f"clip {clip.path!r} has no frames")
    if not clip.fps or clip.fps <= 0:
        raise ValueError(f"clip {clip.path!r} has no sampled fps; second_per_grid_ts would be wrong")
    factor = patch_size * merge_size
    src_h, src_w = clip.resized_from if clip.resized_from is not None else frames.shape[1:3]
    size = target_size(int(src_h), int(src_w), t, settings, factor)
    if clip.resized_from is not None and tuple(frames.shape[1:3]) != size:
        raise ValueError(f"clip {clip.path!r} was resized to {tuple(frames.shape[1:3])} but these settings "
                         f"need {size}; resize it again from the source frames")
    video = resize_frames(frames, size, device=device, mode=settings.resize_mode)
    video = normalize(video, image_mean, image_std)
    pixel_values, (gt, gh, gw) = patchify(video, patch_size, temporal_patch_size, merge_size)
    return {
        "pixel_values_videos": pixel_values,
        "video_grid_thw": torch.tensor([[gt, gh, gw]], dtype=torch.int64),
        "second_per_grid_ts": [temporal_patch_size / clip.fps],
        "frame_times": [float(t) for t in clip.timestamps],  # decoded times, for --time-hint
    }


def num_video_tokens(video_grid_thw, merge_size: int = 2) -> int:
    """Number of LLM tokens the video takes: ``t * h * w / merge_size**2``."""
    gt, gh, gw = (int(v) for v in list(np.asarray(video_grid_thw).reshape(-1, 3)[0]))
    return gt * gh * gw // (merge_size * merge_size)
