"""A torch-only Qwen3-VL / Qwen3.5 video processor (no torchvision, no qwen-vl-utils), with each patch's time.

Two stock pipelines exist; both are reproduced, chosen by `VideoSettings.resize_mode` (facts read from the public
sources, code written here):

* `"qwen-vl-utils"` (the reference; Qwen's documented usage in the Qwen3-VL README, also TimeLens's evaluation):
  qwen-vl-utils 0.0.14 `fetch_video(ele, image_patch_size=16, return_video_metadata=True)` then the processor with
  `do_resize=False`.
  - frames: `VideoSettings.sampling="qwen-vl-utils"` (`tempbench.video.smart_nframes`, float32 linspace, rounded);
  - per-frame budget: with factor `f = 16 * 2 = 32`, `VIDEO_FRAME_MAX_PIXELS = 768 f^2`,
    `max_pixels = min(ele max_pixels, max(min(768 f^2, total_pixels / nframes * 2), int(min_pixels * 1.05)))`;
  - target size: qwen-vl-utils `smart_resize(h, w, factor=32, min_pixels, max_pixels)`;
  - resize: torchvision v1 `functional.resize` BICUBIC + antialias on uint8 (float32 interpolate, clamp, round),
    then `.float()`;
  - the processor (do_resize=False): `(x - mean/rescale) / (std/rescale)` with mean = std = 0.5 (the checkpoint's
    `preprocessor_config.json`), patchify with patch 16.
* `"transformers"`: transformers' `Qwen3VLVideoProcessor` (5.17 and 5.24), given decoded frames and their metadata
  (`do_sample_frames=True` on the whole video, or `False` on frames sampled the same way:
  `VideoSettings.sampling="transformers"`, `int()` frame count, float64 linspace):
  - target size: its `smart_resize(num_frames, h, w, temporal_factor=2, factor=32, min_pixels, max_pixels)` where
    the budget is over t x h x w: `min_pixels = size.shortest_edge = VideoSettings.min_pixels`,
    `max_pixels = size.longest_edge = VideoSettings.total_pixels`; no per-frame cap (`cap_pixels_per_frame`
    unset/False, the 5.17 and 5.24 default); sides under 32 px are first scaled up with `int()`;
  - resize: torchvision v2 `resize` BICUBIC + antialias (CPU: torch's native uint8 kernel);
  - rescale + normalise + patchify as above.

Both pipelines then give each temporal patch its time by the stock formula (`tempbench.models.qwen.timestamps`):
from the clip's SOURCE frame indices and SOURCE fps (`timestamps="frame-indices"`), or from the decoded pts
(`timestamps="pts"`). `benchmarks/check_qwen_processor_gpu.py` checks both pipelines bit for bit against the
originals (torchvision, the qwen-vl-utils wheel, transformers' processor) on the GPU machine.
"""

from __future__ import annotations

import math

from tempbench.models.qwen.processor import normalize, patchify, resize_frames, smart_resize
from tempbench.models.qwen.timestamps import clip_timestamps
from tempbench.video import Clip, VideoSettings

QWEN3_MEAN = (0.5, 0.5, 0.5)
QWEN3_STD = (0.5, 0.5, 0.5)
VIDEO_MAX_TOKEN_NUM = 768  # qwen-vl-utils 0.0.14: per-frame token ceiling
FRAME_FACTOR = 2


def qwen_vl_utils_frame_budget(nframes: int, settings: VideoSettings, factor: int = 32) -> float:
    """Per-frame max pixels of qwen-vl-utils 0.0.14 `fetch_video` for a clip of `nframes` frames."""
    frame_max = VIDEO_MAX_TOKEN_NUM * factor * factor
    budget = max(min(frame_max, settings.total_pixels / max(nframes, 1) * FRAME_FACTOR), int(settings.min_pixels * 1.05))
    return min(settings.max_pixels, budget)


def transformers_smart_resize(num_frames: int, height: int, width: int, temporal_factor: int = 2, factor: int = 32,
                              min_pixels: float = 128 * 32 * 32, max_pixels: float = 768 * 32 * 32) -> tuple[int, int]:
    """transformers' Qwen3-VL video `smart_resize`: (h, w) multiples of `factor` with t x h x w in the budget."""
    if num_frames < temporal_factor:  # transformers refuses; one frame is padded to a patch here
        num_frames = temporal_factor
    if height < factor or width < factor:
        scale = max(factor / height, factor / width)
        height, width = int(height * scale), int(width * scale)
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"absolute aspect ratio must be smaller than 200, got {max(height, width) / min(height, width)}")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    t_bar = round(num_frames / temporal_factor) * temporal_factor
    if t_bar * h_bar * w_bar > max_pixels:
        beta = math.sqrt((num_frames * height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif t_bar * h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (num_frames * height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def target_size3(height: int, width: int, nframes: int, settings: VideoSettings, factor: int = 32,
                 temporal_patch_size: int = 2) -> tuple[int, int]:
    """Resized (h, w) of a clip under `settings` in its `resize_mode` pipeline (module docstring)."""
    if settings.resize_mode == "transformers":
        return transformers_smart_resize(nframes, height, width, temporal_patch_size, factor,
                                         settings.min_pixels, settings.total_pixels)
    max_px = qwen_vl_utils_frame_budget(nframes, settings, factor)
    return smart_resize(height, width, factor=factor, min_pixels=settings.min_pixels, max_pixels=max_px)


def process_video3(clip: Clip, settings: VideoSettings, patch_size: int = 16, temporal_patch_size: int = 2,
                   merge_size: int = 2, image_mean=QWEN3_MEAN, image_std=QWEN3_STD, timestamps: str = "frame-indices",
                   device: str | None = None) -> dict:
    """Model inputs for one decoded clip: `pixel_values_videos` (float32, (gt*gh*gw, 3*tp*ps*ps)),
    `video_grid_thw` (int64, (1, 3)), `timestamps` (seconds of each of the gt temporal patches) and
    `time_source` ("frame-indices" | "pts")."""
    import torch

    t = int(clip.frames.shape[0])
    if t == 0:
        raise ValueError(f"clip {clip.path!r} has no frames")
    seconds = clip_timestamps(clip, timestamps, temporal_patch_size)
    factor = patch_size * merge_size
    src_h, src_w = clip.resized_from if clip.resized_from is not None else clip.frames.shape[1:3]
    size = target_size3(int(src_h), int(src_w), t, settings, factor, temporal_patch_size)
    if clip.resized_from is not None and tuple(clip.frames.shape[1:3]) != size:
        raise ValueError(f"clip {clip.path!r} was resized to {tuple(clip.frames.shape[1:3])} but these settings "
                         f"need {size}; resize it again from the source frames")
    video = resize_frames(clip.frames, size, device=device, mode=settings.resize_mode)
    video = normalize(video, image_mean, image_std)
    pixel_values, (gt, gh, gw) = patchify(video, patch_size, temporal_patch_size, merge_size)
    if len(seconds) != gt:  # pragma: no cover - both pad to a multiple of the temporal patch size
        raise ValueError(f"clip {clip.path!r}: {len(seconds)} patch times for {gt} temporal patches")
    return {
        "pixel_values_videos": pixel_values,
        "video_grid_thw": torch.tensor([[gt, gh, gw]], dtype=torch.int64),
        "timestamps": seconds,
        "time_source": timestamps,
    }


def resize_clip3(clip: Clip, settings: VideoSettings, factor: int = 32, temporal_patch_size: int = 2) -> Clip:
    """A copy of `clip` with frames already at the model's size (prefetch memory); `process_video3` gives the same
    output on it (the source size is kept in `resized_from`)."""
    import dataclasses

    if clip.resized_from is not None:
        return clip
    t, h, w, _ = clip.frames.shape
    size = target_size3(h, w, t, settings, factor, temporal_patch_size)
    frames = resize_frames(clip.frames, size, mode=settings.resize_mode).permute(0, 2, 3, 1).contiguous().numpy()
    return dataclasses.replace(clip, frames=frames, resized_from=(h, w))
