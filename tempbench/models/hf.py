"""Hugging Face transformers: other chat VLMs (the generic, best-effort path) and the loader that picks the adapter.

Qwen2-VL / Qwen2.5-VL checkpoints go to the exact path (`tempbench.models.qwen.adapter.HFQwenVL`). Other chat VLMs
(`AutoModelForImageTextToText` + `AutoProcessor`) are supported best-effort: frames are handed to the processor as
a video, and the processor's own sampling/fps conventions apply. Check their outputs before trusting scores.
"""

from __future__ import annotations

import os
from typing import Any

from tempbench.errors import TempbenchError
from tempbench.models.base import GenerationSettings, ModelInput, zoo_info
from tempbench.models.checkpoint import hub_revision, read_model_type, resolve_model_path, weights_fingerprint
from tempbench.results import ModelIdentity

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # no fork warnings from the runner's prefetch


class HFGenericVLM:
    """Best-effort path for other chat VLMs: `AutoModelForImageTextToText` + `AutoProcessor`.

    The clip's frames are passed to the processor as one video (`videos=[frames]`, with `fps` of the sampled frames
    where the processor accepts it); the processor's chat template builds the prompt. Processors differ in how they
    use fps and timestamps: validate a new model family on a few queries before comparing its scores.
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
    ):
        import torch
        import transformers
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.model_id = model
        self.path = resolve_model_path(model, revision, allow_download)
        self.revision = hub_revision(self.path)
        self.weights = weights_fingerprint(self.path)
        self.name = name or model
        self.generation = generation or GenerationSettings()
        self.video_settings = video_settings
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.dtype = getattr(torch, dtype or ("bfloat16" if self.device.type == "cuda" else "float32"))
        self.attn_implementation = attn_implementation
        self.processor = AutoProcessor.from_pretrained(self.path, trust_remote_code=trust_remote_code)
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
        self._versions = {"transformers": transformers.__version__, "torch": torch.__version__}

    def generate(self, batch: list[ModelInput]) -> list[str]:
        import torch
        from transformers import GenerationConfig

        texts, videos = [], []
        for item in batch:
            content = ([{"type": "video"}] if item.clip is not None else []) + [{"type": "text", "text": item.prompt}]
            texts.append(
                self.processor.apply_chat_template(
                    [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
                )
            )
            if item.clip is not None:
                videos.append(item.clip.frames)
        kwargs: dict = {"text": texts, "return_tensors": "pt", "padding": True}
        if videos:
            kwargs["videos"] = videos
            fps = [float(it.clip.fps) for it in batch if it.clip is not None]
            try:
                inputs = self.processor(**kwargs, fps=fps, do_sample_frames=False)
            except TypeError:
                inputs = self.processor(**kwargs)
        else:
            inputs = self.processor(**kwargs)
        inputs = inputs.to(self.device)
        for k, v in inputs.items():
            if hasattr(v, "is_floating_point") and v.is_floating_point():
                inputs[k] = v.to(self.dtype)
        g = self.generation
        gc = GenerationConfig(
            max_new_tokens=g.max_new_tokens,
            do_sample=g.do_sample,
            repetition_penalty=g.repetition_penalty,
            **({"temperature": g.temperature, "top_p": g.top_p, "top_k": 0} if g.do_sample else {}),
        )
        if g.do_sample and g.seed is not None:
            torch.manual_seed(g.seed)
        with torch.inference_mode():
            out = self.model.generate(**inputs, generation_config=gc)
        new = out[:, inputs["input_ids"].shape[1] :]
        return [s.strip() for s in self.processor.batch_decode(new, skip_special_tokens=True)]

    def identity(self) -> ModelIdentity:
        return ModelIdentity(
            spec=self.model_id, id=str(self.path), backend=self.backend, revision=self.revision, weights=self.weights,
            model_type=getattr(self.model.config, "model_type", None) if self.model is not None else None,
            dtype=str(self.dtype).replace("torch.", ""), attn_implementation=self.attn_implementation,
            info={"name": self.name, "device": str(self.device), "versions": dict(self._versions),
                  "best_effort": True, **zoo_info(self)},
        )

    def close(self) -> None:
        self.model = None


def load_hf_model(model: str, **options):
    """The right transformers adapter for a folder or hub id: Qwen2-VL family -> `HFQwenVL`, else `HFGenericVLM`."""
    from tempbench.models.qwen.adapter import QWEN_VL_TYPES, HFQwenVL

    path = resolve_model_path(model, options.get("revision"), options.get("allow_download", False))
    if read_model_type(path) in QWEN_VL_TYPES:
        return HFQwenVL(model, **options)
    options.pop("video_processor", None)
    options.pop("rope_index", None)
    return HFGenericVLM(model, **options)


__all__ = ["HFGenericVLM", "load_hf_model"]
