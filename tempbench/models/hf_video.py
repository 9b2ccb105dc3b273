"""How each HF video-chat family learns WHEN its frames were, and torch-only video processors for the generic adapter.

Time conventions (`run.json` `model.info.time_convention`), read from each family's processor code (transformers
5.17 and 5.24):

| model_type | convention | how |
|---|---|---|
| qwen3_vl, qwen3_vl_moe, qwen3_5, qwen3_5_moe | text-timestamps | `<{t:.1f} seconds>` before each temporal patch, t from the metadata's frame indices / fps |
| video_llama_3 | text-timestamps | `Time {t:.1f}s:` before each frame's tokens, t = `VideoMetadata.timestamps` (index / fps) |
| smolvlm | text-timestamps | `Frame from MM:SS:` before each frame (whole seconds), plus the clip duration |
| glm4v | text-timestamps | `int(t)` seconds after each frame group (and M-RoPE) |
| qwen2_5_vl | mrope-seconds | temporal position ids spaced by `second_per_grid_ts` (seconds per temporal patch) |
| qwen2_vl, llava_onevision, llava_next_video, internvl | frame-index-only | frame order only; no absolute time |

(glm4v: `metadata.timestamps[::2]`, the first frame of each 2-frame group, written as `int(t)`.)

`--time-hint` (`time_hint=True`) adds one `Frame at {t:.1f} s` line per sampled frame (the decoded time) before the
prompt of a family that would otherwise see no times; run.json then names the convention `text-timestamps (hint)`.

torch-only processors. Every transformers video processor is a `TorchvisionBackend`: on a machine without
torchvision (the CPU machines here) none can run, and `AutoProcessor` silently degrades. For the families in
`TORCH_ONLY` this module builds the checkpoint's own processor class around a subclass of its own video processor
class (and its PIL-backend image processor) whose torchvision calls go to `tvf_shim`, a torch-only implementation of the few
torchvision v2 functions these classes call (`resize` with its dtype and native-uint8 rules, `normalize`,
`grayscale_to_rgb`, `pad`, `crop`, `InterpolationMode`). Everything else (frame sampling, size rules, chat
template, timestamp text) is the stock code of the installed transformers, unchanged: the stock methods run with
`tvF` bound to the shim. `benchmarks/check_qwen_processor_gpu.py` compares them with the stock processors on the
GPU machine, bit for bit.
"""

from __future__ import annotations

import enum
import functools
import json
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tempbench.errors import TempbenchError

TIME_CONVENTIONS = {
    **{t: "text-timestamps" for t in ("qwen3_vl", "qwen3_vl_moe", "qwen3_5", "qwen3_5_moe", "video_llama_3",
                                      "smolvlm", "glm4v", "glm4v_moe")},
    "qwen2_5_vl": "mrope-seconds",
    **{t: "frame-index-only" for t in ("qwen2_vl", "llava_onevision", "llava_next_video", "internvl")},
}


def time_convention(model_type: str | None, time_hint: bool = False) -> str:
    """How a family's model learns when each frame was ("unknown" for families not read)."""
    conv = TIME_CONVENTIONS.get(model_type or "", "unknown")
    if time_hint and conv != "text-timestamps":
        return "text-timestamps (hint)"
    return conv


def time_hint_text(times) -> str:
    """One `Frame at t s` line per frame (the decoded times of the sampled frames)."""
    return "\n".join(f"Frame at {float(t):.1f} s" for t in times)


@dataclass(frozen=True)
class Family:
    video: tuple[str, str]  # (module under transformers.models, class): the stock video processor (torchvision)
    image: tuple[str, str]  # the stock PIL-backend image processor (needs no torchvision; unused for video prompts)


# families whose stock processor runs on CPU with the torch-only kernels (checked bit for bit on the GPU machine).
# VideoLLaMA3, InternVL and Qwen2-VL import torchvision unconditionally in their video processor modules, so their
# classes cannot even be imported without it (Qwen2-VL / Qwen2.5-VL have tempbench's own port instead).
TORCH_ONLY: dict[str, Family] = {
    "llava_onevision": Family(("llava_onevision.video_processing_llava_onevision", "LlavaOnevisionVideoProcessor"),
                              ("llava_onevision.image_processing_pil_llava_onevision",
                               "LlavaOnevisionImageProcessorPil")),
    **{t: Family(("glm4v.video_processing_glm4v", "Glm4vVideoProcessor"),
                 ("glm4v.image_processing_pil_glm4v", "Glm4vImageProcessorPil")) for t in ("glm4v", "glm4v_moe")},
    **{t: Family(("qwen3_vl.video_processing_qwen3_vl", "Qwen3VLVideoProcessor"),
                 ("qwen2_vl.image_processing_pil_qwen2_vl", "Qwen2VLImageProcessorPil"))
       for t in ("qwen3_vl", "qwen3_vl_moe", "qwen3_5", "qwen3_5_moe")},
}


# --------------------------------------------------------------------------------------------------- the shim


class InterpolationMode(enum.Enum):
    """torchvision's `InterpolationMode` values (the strings `F.interpolate` takes)."""

    NEAREST = "nearest"
    NEAREST_EXACT = "nearest-exact"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    BOX = "box"
    HAMMING = "hamming"
    LANCZOS = "lanczos"


def _native_uint8_on_cpu(mode: InterpolationMode) -> bool:
    """torchvision v2: uint8 is resized natively on CPU for BICUBIC, and for BILINEAR on AVX2 builds."""
    import torch

    if mode == InterpolationMode.BILINEAR:
        return "AVX2" in torch.backends.cpu.get_cpu_capability()
    return mode == InterpolationMode.BICUBIC


def resize(image, size, interpolation=InterpolationMode.BILINEAR, max_size=None, antialias=True):
    """torchvision v2 `functional.resize` on a tensor (..., C, H, W), `size` = [h, w]: same dtype rules (uint8 natively
    on CPU for BICUBIC / AVX2 BILINEAR, else float32 interpolate, clamp (BICUBIC), round, cast back)."""
    import torch
    import torch.nn.functional as F

    if max_size is not None or len(size) != 2:
        raise TempbenchError(f"torch-only resize takes an explicit [h, w], got size={size} max_size={max_size}")
    mode = InterpolationMode(interpolation) if not isinstance(interpolation, InterpolationMode) else interpolation
    if mode in (InterpolationMode.BOX, InterpolationMode.HAMMING, InterpolationMode.LANCZOS):
        raise TempbenchError(f"torch-only resize has no {mode.value} interpolation")
    align = False if mode in (InterpolationMode.BILINEAR, InterpolationMode.BICUBIC) else None
    antialias = bool(antialias) and align is not None
    shape = image.shape
    c, h, w = shape[-3:]
    new_h, new_w = int(size[0]), int(size[1])
    if (new_h, new_w) == (h, w):
        return image
    if image.numel() == 0:
        return image.reshape(shape[:-3] + (c, new_h, new_w))
    dtype = image.dtype
    ok = [torch.float32, torch.float64]
    if mode in (InterpolationMode.NEAREST, InterpolationMode.NEAREST_EXACT):
        ok.append(torch.uint8)
    elif image.device.type == "cpu" and _native_uint8_on_cpu(mode):
        ok.append(torch.uint8)
    x = image.reshape(-1, c, h, w)
    cast = dtype not in ok
    if cast:
        x = x.to(torch.float32)
    x = F.interpolate(x, size=[new_h, new_w], mode=mode.value, align_corners=align, antialias=antialias)
    if cast:
        if mode == InterpolationMode.BICUBIC and dtype == torch.uint8:
            x = x.clamp_(min=0, max=255)
        if dtype in (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64):
            x = x.round_()
        x = x.to(dtype)
    return x.reshape(shape[:-3] + (c, new_h, new_w))


def normalize(image, mean, std, inplace=False):
    """torchvision v2 `functional.normalize`: `(x - mean) / std` per channel, on a float tensor."""
    import torch

    if not image.is_floating_point():
        raise TypeError(f"normalize needs a float tensor, got {image.dtype}")
    mean = torch.as_tensor(mean, dtype=image.dtype, device=image.device)
    std = torch.as_tensor(std, dtype=image.dtype, device=image.device)
    if (std == 0).any():
        raise ValueError("std evaluated to zero, leading to division by zero")
    if mean.ndim == 1:
        mean = mean.view(-1, 1, 1)
    if std.ndim == 1:
        std = std.view(-1, 1, 1)
    image = image.sub_(mean) if inplace else image.sub(mean)
    return image.div_(std)


def grayscale_to_rgb(image):
    """torchvision v2 `grayscale_to_rgb`: a 1-channel image repeated to 3; others unchanged."""
    if image.shape[-3] == 1:
        return image.repeat(*([1] * (image.ndim - 3)), 3, 1, 1)
    return image


def pad(image, padding, fill=0, padding_mode="constant"):
    """torchvision `pad` with `padding` = [left, top, right, bottom] (or 2 / 1 values), constant fill only."""
    import torch.nn.functional as F

    if padding_mode != "constant":
        raise TempbenchError(f"torch-only pad has no {padding_mode!r} mode")
    p = list(padding) if isinstance(padding, (list, tuple)) else [padding]
    if len(p) == 1:
        p = p * 4
    elif len(p) == 2:
        p = [p[0], p[1], p[0], p[1]]
    left, top, right, bottom = p
    return F.pad(image, [left, right, top, bottom], mode="constant", value=fill)


def crop(image, top, left, height, width):
    """torchvision `crop` (inside the image; `center_crop` pads first)."""
    return image[..., top:top + height, left:left + width]


tvf_shim = types.SimpleNamespace(resize=resize, normalize=normalize, grayscale_to_rgb=grayscale_to_rgb, pad=pad,
                                 crop=crop, InterpolationMode=InterpolationMode)


def _pil_mapping() -> dict:
    from transformers.image_utils import PILImageResampling

    return {PILImageResampling.NEAREST: InterpolationMode.NEAREST, PILImageResampling.BOX: InterpolationMode.BOX,
            PILImageResampling.BILINEAR: InterpolationMode.BILINEAR,
            PILImageResampling.HAMMING: InterpolationMode.HAMMING,
            PILImageResampling.BICUBIC: InterpolationMode.BICUBIC,
            PILImageResampling.LANCZOS: InterpolationMode.LANCZOS}


def _rebind(fn):
    """`fn` (a stock method) with `tvF` and the PIL -> torchvision mode table bound to the torch-only shim."""
    f = getattr(fn, "__func__", fn)
    g = dict(f.__globals__)
    g["tvF"] = tvf_shim
    g["pil_torch_interpolation_mapping"] = _pil_mapping()
    new = types.FunctionType(f.__code__, g, f.__name__, f.__defaults__, f.__closure__)
    new.__kwdefaults__ = f.__kwdefaults__
    new.__dict__.update(f.__dict__)
    return functools.wraps(f)(new)


def _uses_torchvision(value) -> bool:
    code = getattr(getattr(value, "__func__", value), "__code__", None)
    return code is not None and bool({"tvF", "pil_torch_interpolation_mapping"} & set(code.co_names))


@functools.cache
def _backend_mixin() -> type:
    """`TorchvisionBackend` with its torchvision-calling methods re-bound to the shim; a subclass puts it right
    before `TorchvisionBackend` in its MRO, so the family classes' `super().resize(...)` land here."""
    from transformers.image_processing_backends import TorchvisionBackend

    ns = {name: _rebind(v) for name, v in vars(TorchvisionBackend).items() if _uses_torchvision(v)}
    return type("TorchOnlyBackend", (TorchvisionBackend,), {"__module__": __name__, **ns})


@functools.cache
def torch_only(cls: type) -> type:
    """A subclass of the stock (video or image) processor `cls` whose torchvision calls run on the shim: the methods
    of `TorchvisionBackend` through a mixin placed before it in the MRO, the other classes' torchvision-calling
    methods (e.g. `BaseVideoProcessor.convert_to_rgb`) re-bound on the subclass. Refused when a re-bound method is
    overridden further down the MRO (its `super()` call would reach the unshimmed one)."""
    from transformers.image_processing_backends import TorchvisionBackend

    mro = [k for k in cls.__mro__ if k is not object]
    if TorchvisionBackend not in mro:
        raise TempbenchError(f"{cls.__name__} is not a torchvision-backend processor")
    namespace: dict[str, Any] = {"__module__": __name__, "torch_only": True}
    for i, klass in enumerate(mro):
        if klass is TorchvisionBackend or issubclass(TorchvisionBackend, klass):
            continue
        for name, value in vars(klass).items():
            if not _uses_torchvision(value) or name in namespace:
                continue
            if any(name in vars(k) for k in mro[:i]):
                raise TempbenchError(f"{cls.__name__}: {klass.__name__}.{name} calls torchvision below an override")
            namespace[name] = _rebind(value)
    return type(f"TorchOnly{cls.__name__}", (cls, _backend_mixin()), namespace)


def _import_class(module: str, name: str) -> type:
    import importlib

    return getattr(importlib.import_module(f"transformers.models.{module}"), name)


def load_processor(path: Path, model_type: str, trust_remote_code: bool = False, force_torch_only: bool = False):
    """The checkpoint's processor. With torchvision (and not `force_torch_only`): `AutoProcessor`. Without it (or
    forced): the processor class of the checkpoint built around torch-only subclasses of its own image and video
    processor classes (`TORCH_ONLY` families); other families are refused with the reason."""
    from transformers import AutoProcessor, AutoTokenizer
    from transformers.utils import is_torchvision_available

    if is_torchvision_available() and not force_torch_only:
        proc = AutoProcessor.from_pretrained(path, trust_remote_code=trust_remote_code)
        if getattr(proc, "video_processor", None) is None:
            raise TempbenchError(f"{path}: AutoProcessor has no video processor ({type(proc).__name__})",
                                 "the checkpoint ships no video processor config")
        return proc
    fam = TORCH_ONLY.get(model_type)
    if fam is None:
        raise TempbenchError(f"{path}: no torch-only video processor for model_type {model_type!r}, and transformers' "
                             "own needs torchvision", "install torchvision, or use a family of "
                             + ", ".join(sorted(TORCH_ONLY)))
    video = torch_only(_import_class(*fam.video)).from_pretrained(path)
    image = _import_class(*fam.image).from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    proc_cls = _torch_only_processor(_processor_class(path, model_type))
    kwargs = _processor_kwargs(path)
    kwargs.setdefault("chat_template", _chat_template(path, tokenizer))
    return proc_cls(image_processor=image, tokenizer=tokenizer, video_processor=video, **kwargs)


def _chat_template(path: Path, tokenizer) -> str | None:
    """The processor's chat template as `AutoProcessor` finds it: chat_template.jinja/.json, else the tokenizer's."""
    if (path / "chat_template.jinja").is_file():
        return (path / "chat_template.jinja").read_text()
    if (path / "chat_template.json").is_file():
        return json.loads((path / "chat_template.json").read_text())["chat_template"]
    return getattr(tokenizer, "chat_template", None)


def _accept(self, argument_name, argument):
    """The sub-processor type check of `ProcessorMixin`: without torchvision its lookup of `VideoProcessorMixin`
    fails (transformers' video registry is a placeholder then); the torch-only parts are checked here instead."""
    from transformers import video_processing_utils
    from transformers.image_processing_utils import BaseImageProcessor
    from transformers.tokenization_utils_base import PreTrainedTokenizerBase

    # 5.24: VideoProcessorMixin; 5.17: BaseVideoProcessor
    video_base = getattr(video_processing_utils, "VideoProcessorMixin", video_processing_utils.BaseVideoProcessor)
    want = {"video_processor": video_base, "image_processor": BaseImageProcessor,
            "tokenizer": PreTrainedTokenizerBase}.get(argument_name)
    if want is not None and not isinstance(argument, want):
        raise TypeError(f"{argument_name}: got {type(argument).__name__}, expected a {want.__name__}")
    return type(argument)


@functools.cache
def _torch_only_processor(cls: type) -> type:
    return type(f"TorchOnly{cls.__name__}", (cls,), {"__module__": __name__, "check_argument_for_proper_class": _accept})


def _processor_class(path: Path, model_type: str) -> type:
    import transformers
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING_NAMES

    name = None
    for f in ("processor_config.json", "preprocessor_config.json", "video_preprocessor_config.json"):
        p = path / f
        if p.is_file():
            name = json.loads(p.read_text()).get("processor_class") or name
            if name:
                break
    name = name or PROCESSOR_MAPPING_NAMES.get(model_type)
    cls = getattr(transformers, name, None) if name else None
    if cls is None:
        raise TempbenchError(f"{path}: no processor class for model_type {model_type!r}")
    return cls


def _processor_kwargs(path: Path) -> dict:
    """The processor's own init arguments from `processor_config.json` (e.g. LLaVA-OneVision's num_image_tokens)."""
    p = path / "processor_config.json"
    if not p.is_file():
        return {}
    d = json.loads(p.read_text())
    return {k: v for k, v in d.items() if k not in ("processor_class", "image_processor", "video_processor",
                                                     "auto_map")}


def video_metadata(clip):
    """transformers `VideoMetadata` of a decoded clip: SOURCE fps, SOURCE frame indices, total frame count, duration
    and size (what the stock processors compute timestamps from)."""
    from transformers.video_utils import VideoMetadata

    if clip.indices is None or clip.n_source_frames is None:
        raise TempbenchError(f"clip {clip.path!r} has no sampled frame indices: its frame times would be guessed",
                             "decode it with tempbench.video.decode_video")
    h, w = clip.resized_from if clip.resized_from is not None else clip.frames.shape[1:3]
    return VideoMetadata(total_num_frames=int(clip.n_source_frames), fps=float(clip.source_fps), width=int(w),
                         height=int(h), duration=float(clip.duration), video_backend="tempbench (PyAV)",
                         frames_indices=[int(i) for i in clip.indices])
