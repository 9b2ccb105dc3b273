"""Hugging Face transformers: other chat VLMs (the generic, best-effort path) and the loader that picks the adapter.

Qwen2-VL / Qwen2.5-VL / Qwen3-VL / Qwen3.5 checkpoints go to the exact path (`tempbench.models.qwen.adapter.HFQwenVL`).
Other chat VLMs (`AutoModelForImageTextToText` + the checkpoint's processor and chat template) go to
`HFGenericVLM`: frames sampled by tempbench are handed to the processor as one video with their true metadata, and
the processor's own conventions for time apply (`tempbench.models.hf_video`). Check a few outputs before trusting
scores.
"""

from __future__ import annotations

import os
from typing import Any

from tempbench.errors import TempbenchError
from tempbench.models.base import GenerationSettings, ModelInput, zoo_info
from tempbench.models.checkpoint import hub_revision, read_model_type, resolve_model_path, weights_fingerprint
from tempbench.results import ModelIdentity

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # no fork warnings from the runner's prefetch

# The transformers adapters' options a user may set (`tempbench run --model-args k=v,k=v`), name -> type. dtype and
# attn_implementation are identity fields of run.json; revision picks the hub snapshot (recorded as
# `model.revision`); device is recorded (`model.info.device`), not compared; trust_remote_code (off unless asked)
# is recorded in `model.options` when on; the Qwen options (rope_index, timestamps, layout) and time_hint are in
# `model.options`. Pixel budgets are video settings (`--video`), not model options.
HF_MODEL_ARGS: dict[str, type] = {
    "dtype": str, "attn_implementation": str, "revision": str, "device": str, "trust_remote_code": bool,
    "rope_index": str, "timestamps": str, "layout": str, "time_hint": bool, "torch_processor": bool,
    "decoder": str, "share_prefix": bool, "stage_times": bool,
}
DTYPES = ("float32", "bfloat16", "float16")
ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2", "flash_attention_3", "flex_attention")


def check_hf_options(options: dict) -> None:
    """One clear line for an HF option of the wrong type or value (the adapter validates its own keys)."""
    for key, value in options.items():
        want = HF_MODEL_ARGS.get(key)
        if want is None or value is None:
            continue
        if want is bool and not isinstance(value, bool):
            raise TempbenchError(f"model option {key}={value!r} must be true or false", f"e.g. --model-args {key}=true")
        if want is str and not isinstance(value, str):
            raise TempbenchError(f"model option {key}={value!r} must be a string")
    if options.get("dtype") is not None and options["dtype"] not in DTYPES:
        raise TempbenchError(f"model option dtype={options['dtype']!r} is unknown", f"use one of: {', '.join(DTYPES)}")
    attn = options.get("attn_implementation")
    if attn is not None and attn not in ATTN_IMPLEMENTATIONS:
        raise TempbenchError(f"model option attn_implementation={attn!r} is unknown",
                             f"use one of: {', '.join(ATTN_IMPLEMENTATIONS)}")
    device = options.get("device")
    if device is not None:
        import re

        if not re.fullmatch(r"cpu|cuda(:\d+)?|mps", device):
            raise TempbenchError(f"model option device={device!r} is not a device", "e.g. cpu, cuda, cuda:1")


class HFGenericVLM:
    """Other chat VLMs: `AutoModelForImageTextToText` + the checkpoint's processor and chat template.

    Frames sampled by tempbench (`VideoSettings`) are handed to the processor with their `VideoMetadata` (source
    fps, source frame indices, frame count, duration; `do_sample_frames=False`), so a processor that writes frame
    times writes the true ones (`tempbench.models.hf_video`). Without torchvision the processor is built around a
    torch-only subclass of the family's own video processor (`TORCH_ONLY` families). `run.json` records the time
    convention of the family (`model.info.time_convention`); `time_hint=True` adds `Frame at t s` lines for families
    that would see no times. Processors differ in how they sample and use time: validate a family on a few queries
    before comparing its scores.
    """

    backend = "transformers-generic"
    needs_video = True

    def __init__(
        self,
        model: str,
        *,
        revision: str | None = None,
        allow_download: bool = False,
        device: str | None = None,
        dtype: str | None = None,
        attn_implementation: str = "sdpa",
        generation: GenerationSettings | None = None,
        video_settings: Any = None,
        name: str | None = None,
        trust_remote_code: bool = False,
        time_hint: bool = False,
        torch_processor: bool | None = None,
    ):
        import torch
        import transformers
        from transformers import AutoModelForImageTextToText

        from tempbench.models.hf_video import load_processor, time_convention

        self.model_id = model
        self.path = resolve_model_path(model, revision, allow_download)
        self.revision = hub_revision(self.path)
        self.weights = weights_fingerprint(self.path)
        self.name = name or model
        self.generation = generation or GenerationSettings()
        self.video_settings = video_settings
        self.model_type = read_model_type(self.path)
        self.time_hint = bool(time_hint)
        self.trust_remote_code = bool(trust_remote_code)
        self.time_convention = time_convention(self.model_type, self.time_hint)
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.dtype = getattr(torch, dtype or ("bfloat16" if self.device.type == "cuda" else "float32"))
        self.attn_implementation = attn_implementation
        self.processor = load_processor(self.path, self.model_type, trust_remote_code,
                                        force_torch_only=bool(torch_processor))
        self.processor_kind = "torch-only" if getattr(self.processor.video_processor, "torch_only", False) else "stock"
        if not hasattr(self.processor, "tokenizer"):
            raise TempbenchError(
                f"{self.path}: AutoProcessor returned only a tokenizer ({type(self.processor).__name__})",
                hint="the model's video/image processor is unavailable (often: torchvision missing); "
                "Qwen2-VL models use the built-in path instead",
            )
        self.processor.tokenizer.padding_side = "left"
        self.model = AutoModelForImageTextToText.from_pretrained(
            self.path, dtype=self.dtype, attn_implementation=attn_implementation, trust_remote_code=trust_remote_code
        )
        self.model.to(self.device).eval()
        tok = self.processor.tokenizer
        gc = getattr(self.model, "generation_config", None)
        eos = getattr(gc, "eos_token_id", None) if gc is not None else None
        eos = eos if eos is not None else tok.eos_token_id
        self.eos_token_id = eos if isinstance(eos, list) else [eos]
        pad = tok.pad_token_id if tok.pad_token_id is not None else getattr(gc, "pad_token_id", None)
        self.pad_token_id = pad if pad is not None else self.eos_token_id[0]
        self._versions = {"transformers": transformers.__version__, "torch": torch.__version__}

    def prompt_text(self, item: ModelInput) -> str:
        """The query's prompt, with the frame-time lines first when `time_hint` applies."""
        if self.time_hint and item.clip is not None and not isinstance(item.clip, dict) \
                and self.time_convention == "text-timestamps (hint)":
            from tempbench.models.hf_video import time_hint_text

            return time_hint_text(item.clip.timestamps) + "\n" + item.prompt
        return item.prompt

    def build_inputs(self, batch: list[ModelInput]):
        """Processor outputs for a batch (left-padded), every video with its own metadata."""
        from tempbench.models.hf_video import video_metadata

        texts, videos, metadata = [], [], []
        for item in batch:
            content = ([{"type": "video"}] if item.clip is not None else []) + \
                [{"type": "text", "text": self.prompt_text(item)}]
            texts.append(self.processor.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                                            add_generation_prompt=True))
            if item.clip is not None:
                videos.append(item.clip.frames)
                metadata.append(video_metadata(item.clip))
        kwargs: dict = {"text": texts, "return_tensors": "pt", "padding": True}
        if videos:
            kwargs.update(videos=videos, video_metadata=metadata, do_sample_frames=False)
        return self.processor(**kwargs)

    def generate(self, batch: list[ModelInput]) -> list[str]:
        """Answers in order. Queries are run in groups of equal frame count: some processors (LLaVA-OneVision)
        stack the videos of a batch into one tensor."""
        groups: dict[int, list[int]] = {}
        for i, item in enumerate(batch):
            key = -1 if item.clip is None or isinstance(item.clip, dict) else int(item.clip.frames.shape[0])
            groups.setdefault(key, []).append(i)
        out: list[str] = [""] * len(batch)
        for rows in groups.values():
            for i, text in zip(rows, self._generate([batch[i] for i in rows])):
                out[i] = text
        return out

    def _generate(self, batch: list[ModelInput]) -> list[str]:
        import torch

        if not batch:
            return []
        inputs = self.build_inputs(batch).to(self.device)
        for k, v in inputs.items():
            if hasattr(v, "is_floating_point") and v.is_floating_point():
                inputs[k] = v.to(self.dtype)
        g = self.generation
        if g.do_sample and g.seed is not None:
            torch.manual_seed(int(g.seed))
        with torch.inference_mode():
            out = self.model.generate(**inputs,
                                      generation_config=g.transformers_config(self.eos_token_id, self.pad_token_id))
        new = out[:, inputs["input_ids"].shape[1] :]
        return [s.strip() for s in self.processor.batch_decode(new, skip_special_tokens=True)]

    def identity(self) -> ModelIdentity:
        import hashlib

        template = getattr(self.processor, "chat_template", None) or ""
        return ModelIdentity(
            spec=self.model_id, id=str(self.path), backend=self.backend, revision=self.revision, weights=self.weights,
            model_type=self.model_type, dtype=str(self.dtype).replace("torch.", ""),
            attn_implementation=self.attn_implementation,
            options={"time_hint": self.time_hint,
                     "chat_template_sha256": hashlib.sha256(template.encode()).hexdigest(),
                     **({"trust_remote_code": True} if self.trust_remote_code else {})},
            info={"name": self.name, "device": str(self.device), "versions": dict(self._versions),
                  "time_convention": self.time_convention, "processor": self.processor_kind,
                  "best_effort": True, **zoo_info(self)},
        )

    def close(self) -> None:
        self.model = None


def load_hf_model(model: str, **options):
    """The right transformers adapter for a folder or hub id: Qwen2-VL family -> `HFQwenVL`, else `HFGenericVLM`."""
    from tempbench.models.qwen.adapter import QWEN_VL_TYPES, HFQwenVL

    check_hf_options(options)
    path = resolve_model_path(model, options.get("revision"), options.get("allow_download", False))
    if read_model_type(path) in QWEN_VL_TYPES:
        options.pop("torch_processor", None)  # the Qwen path always runs tempbench's own torch-only processors
        return HFQwenVL(model, **options)
    for key in ("video_processor", "rope_index", "timestamps", "layout", "decoder", "share_prefix", "stage_times"):
        options.pop(key, None)
    return HFGenericVLM(model, **options)


__all__ = ["HF_MODEL_ARGS", "HFGenericVLM", "check_hf_options", "load_hf_model"]
