"""Qwen2-VL / Qwen2.5-VL / Qwen3-VL / Qwen3.5 through transformers (the exact path).

The tokenizer and model are loaded directly, not through `AutoProcessor` (which, in transformers 5 without
torchvision, silently returns only a tokenizer). Per query:

1. chat = one user message [video, text], no system message (the checkpoint's chat template adds its default one,
   if any, as in the published evaluations), `add_generation_prompt=True`;
2. the clip's frames go through a torch-only port of the family's video pipeline:
   - Qwen2-VL / Qwen2.5-VL: `tempbench.models.qwen.processor.process_video` -> `pixel_values_videos`,
     `video_grid_thw` and `second_per_grid_ts` (= temporal_patch_size / the SAMPLED fps; Qwen2.5-VL's M-RoPE spaces
     temporal position ids by `tokens_per_second * second_per_grid_ts`): time reaches the model as
     `mrope-seconds` (Qwen2-VL: `frame-index-only`, its temporal ids count frame groups);
   - Qwen3-VL / Qwen3.5 (MoE included): `tempbench.models.qwen.processor3.process_video3` -> `pixel_values_videos`,
     `video_grid_thw` and each temporal patch's seconds (`tempbench.models.qwen.timestamps`: the stock formula from
     the clip's source frame indices and source fps, option `timestamps="pts"` for decoded times): time reaches
     the model as `text-timestamps`, `<t seconds>` before each patch;
3. the one `<|video_pad|>` of the chat is expanded: Qwen2: to `t*h*w / merge_size**2` tokens; Qwen3: to the
   per-patch blocks in the chosen `layout` (`tempbench.models.qwen.layout`: `release`, the reference, or
   `transformers`, 2 tokens more); the count is checked after tokenisation;
4. `mm_token_type_ids` (0 text, 1 image, 2 video) is passed: transformers 5.x computes 3-D position ids only when
   it is given, and silently falls back to 1-D positions otherwise; the 3-D position ids follow the models'
   release definition (`tempbench.models.qwen.rope`, `rope3`), not the installed transformers version's variant;
5. batches are LEFT padded; decoding follows `GenerationSettings` exactly (greedy by default), not the checkpoint's
   own sampling defaults.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tempbench.errors import TempbenchError
from tempbench.models.base import GenerationSettings, ModelInput, zoo_info
from tempbench.models.checkpoint import hub_revision, resolve_model_path, weights_fingerprint
from tempbench.results import ModelIdentity

QWEN2_TYPES = ("qwen2_vl", "qwen2_5_vl")
QWEN3_TYPES = ("qwen3_vl", "qwen3_vl_moe", "qwen3_5", "qwen3_5_moe")
QWEN_VL_TYPES = QWEN2_TYPES + QWEN3_TYPES
MODEL_CLASSES = {"qwen2_vl": "Qwen2VLForConditionalGeneration", "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
                 "qwen3_vl": "Qwen3VLForConditionalGeneration", "qwen3_vl_moe": "Qwen3VLMoeForConditionalGeneration",
                 "qwen3_5": "Qwen3_5ForConditionalGeneration", "qwen3_5_moe": "Qwen3_5MoeForConditionalGeneration"}
# how the model learns when each frame was (run.json `model.info.time_convention`)
TIME_CONVENTIONS = {"qwen2_vl": "frame-index-only", "qwen2_5_vl": "mrope-seconds",
                    **{t: "text-timestamps" for t in QWEN3_TYPES}}
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # no fork warnings from the runner's prefetch


def _mean_std(path: Path, names: tuple[str, ...], default: tuple) -> tuple[tuple, tuple]:
    """The checkpoint's normalisation constants: the first of `names` (processor configs) that has them."""
    for name in names:
        pre = path / name
        if pre.is_file():
            try:
                d = json.loads(pre.read_text())
            except ValueError as e:
                raise TempbenchError(f"{pre}: invalid JSON ({e})") from e
            if "image_mean" in d and "image_std" in d:
                return tuple(d["image_mean"]), tuple(d["image_std"])
    return default


def _default_video_processor(settings: Any, path: Path, vision_config: Any, model_type: str = "qwen2_5_vl",
                             timestamps: str = "frame-indices") -> Callable[[Any], dict]:
    """The family's torch-only video processor with the checkpoint's patch sizes and normalisation constants."""
    try:
        from tempbench.models.qwen.processor import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, process_video
        from tempbench.models.qwen.processor3 import QWEN3_MEAN, QWEN3_STD, process_video3
        from tempbench.video import VideoSettings
    except ImportError as e:  # pragma: no cover
        raise TempbenchError("tempbench.models.qwen.processor is not available", hint="install tempbench with [hf]") from e

    if settings is None:
        settings = VideoSettings()
    qwen3 = model_type in QWEN3_TYPES
    if qwen3:
        mean, std = _mean_std(path, ("video_preprocessor_config.json", "preprocessor_config.json"),
                              (QWEN3_MEAN, QWEN3_STD))
    else:
        mean, std = _mean_std(path, ("preprocessor_config.json",), (OPENAI_CLIP_MEAN, OPENAI_CLIP_STD))
    kw = dict(
        patch_size=int(getattr(vision_config, "patch_size", 16 if qwen3 else 14)),
        temporal_patch_size=int(getattr(vision_config, "temporal_patch_size", 2)),
        merge_size=int(getattr(vision_config, "spatial_merge_size", 2)),
        image_mean=mean,
        image_std=std,
    )
    if qwen3:
        return functools.partial(process_video3, settings=settings, timestamps=timestamps, **kw)
    return functools.partial(process_video, settings=settings, **kw)  # picklable: runs in prefetch processes


def _load_chat_template(path: Path, tokenizer, model_type: str = "qwen2_5_vl") -> str:
    """The checkpoint's chat template: the tokenizer's, else chat_template.jinja/.json, else the family's format."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.chat_template
    if (path / "chat_template.jinja").is_file():
        return (path / "chat_template.jinja").read_text()
    if (path / "chat_template.json").is_file():
        return json.loads((path / "chat_template.json").read_text())["chat_template"]
    if model_type in QWEN3_TYPES:
        from tempbench.models.qwen.tiny3 import QWEN3_VL_CHAT_TEMPLATE

        return QWEN3_VL_CHAT_TEMPLATE
    from tempbench.models.qwen.tiny import QWEN_VL_CHAT_TEMPLATE

    return QWEN_VL_CHAT_TEMPLATE


class HFQwenVL:
    """Qwen2-VL / Qwen2.5-VL / Qwen3-VL / Qwen3.5 through transformers (see module docstring)."""

    backend = "transformers"
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
        video_processor: Callable[[Any], dict] | None = None,
        name: str | None = None,
        rope_index: str = "reference",
        timestamps: str = "frame-indices",
        layout: str = "release",
        trust_remote_code: bool = False,
        time_hint: bool = False,
        decoder: str = "auto",
        share_prefix: bool = True,
        stage_times: bool = False,
    ):
        import torch
        import transformers
        from transformers import AutoConfig, AutoTokenizer

        path = resolve_model_path(model, revision, allow_download)
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
        if config.model_type not in QWEN_VL_TYPES:
            raise TempbenchError(
                f"{path}: model_type {config.model_type!r} is not one of {', '.join(QWEN_VL_TYPES)}",
                hint="use HFGenericVLM (best-effort) for other chat VLMs",
            )
        cls = getattr(transformers, MODEL_CLASSES[config.model_type], None)
        if cls is None:
            raise TempbenchError(f"{path}: transformers {transformers.__version__} has no "
                                 f"{MODEL_CLASSES[config.model_type]}", hint="upgrade transformers (5.x)")
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dev = torch.device(device)
        torch_dtype = getattr(torch, dtype or ("bfloat16" if dev.type == "cuda" else "float32"))
        net = cls.from_pretrained(path, dtype=torch_dtype, attn_implementation=attn_implementation,
                                  trust_remote_code=trust_remote_code)
        net.to(dev).eval()
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        self.trust_remote_code = bool(trust_remote_code)
        self._setup(net, tokenizer, model_id=model, path=path, revision=hub_revision(path),
                    weights=weights_fingerprint(path), name=name,
                    generation=generation, video_settings=video_settings, video_processor=video_processor,
                    rope_index=rope_index, attn_implementation=attn_implementation,
                    chat_template=_load_chat_template(path, tokenizer, config.model_type), timestamps=timestamps,
                    layout=layout, time_hint=time_hint, decoder=decoder, share_prefix=share_prefix,
                    stage_times=stage_times)

    @classmethod
    def from_loaded(cls, model, tokenizer, *, name: str = "in-memory", revision: str | None = None,
                    generation: GenerationSettings | None = None, video_settings: Any = None,
                    video_processor: Callable[[Any], dict] | None = None, rope_index: str = "reference",
                    chat_template: str | None = None, timestamps: str = "frame-indices",
                    layout: str = "release", decoder: str = "dynamic", share_prefix: bool = True) -> HFQwenVL:
        """An adapter around an already loaded model + tokenizer (e.g. a policy during training, or a
        random-weight model built from `qwen2_5_vl_7b_config()` for speed measurements). The model's device and
        dtype are used as they are."""
        if model.config.model_type not in QWEN_VL_TYPES:
            raise TempbenchError(f"model_type {model.config.model_type!r} is not one of {', '.join(QWEN_VL_TYPES)}")
        self = cls.__new__(cls)
        name_or_path = getattr(model.config, "_name_or_path", "") or name
        path = Path(name_or_path) if name_or_path and Path(name_or_path).is_dir() else None
        if chat_template is None:
            chat_template = _load_chat_template(path or Path("/nonexistent"), tokenizer, model.config.model_type)
        self._setup(model, tokenizer, model_id=name, path=path, revision=revision, weights=None, name=name,
                    generation=generation,
                    video_settings=video_settings, video_processor=video_processor, rope_index=rope_index,
                    attn_implementation=getattr(model.config, "_attn_implementation", None),
                    chat_template=chat_template, timestamps=timestamps, layout=layout, decoder=decoder,
                    share_prefix=share_prefix)
        return self

    def _setup(self, model, tokenizer, *, model_id, path, revision, weights, name, generation, video_settings,
               video_processor, rope_index, attn_implementation, chat_template, timestamps="frame-indices",
               layout="release", time_hint=False, decoder="dynamic", share_prefix=True,
               stage_times=False) -> None:
        import torch
        import transformers

        from tempbench.models.qwen.layout import LAYOUTS
        from tempbench.models.qwen.timestamps import TIME_SOURCES

        config = model.config
        self.qwen3 = config.model_type in QWEN3_TYPES
        if timestamps not in TIME_SOURCES:
            raise TempbenchError(f"timestamps={timestamps!r} is unknown", f"use one of: {', '.join(TIME_SOURCES)}")
        if layout not in LAYOUTS:
            raise TempbenchError(f"layout={layout!r} is unknown", f"use one of: {', '.join(LAYOUTS)}")
        if not self.qwen3 and (timestamps != "frame-indices" or layout != "release"):
            raise TempbenchError(f"timestamps / layout apply to Qwen3-VL and Qwen3.5, not {config.model_type}",
                                 "Qwen2.5-VL takes its time from second_per_grid_ts (the sampled fps)")
        self.timestamps = timestamps
        self.layout = layout
        from tempbench.models.qwen.decoding import BACKENDS, DecodeStats

        if decoder not in (*BACKENDS, "auto"):
            raise TempbenchError(f"decoder={decoder!r} is unknown", f"use one of: auto, {', '.join(BACKENDS)}")
        if decoder == "auto":  # measured (docs/benchmarks.md): the graph step is about 17x faster than the dynamic one on an H200
            decoder = "cuda-graph" if next(model.parameters()).device.type == "cuda" else "dynamic"
        if not isinstance(share_prefix, bool):
            raise TempbenchError(f"share_prefix={share_prefix!r} must be true or false")
        if not isinstance(stage_times, bool):
            raise TempbenchError(f"stage_times={stage_times!r} must be true or false")
        # how answers are decoded: in float32 neither changes an answer (tested token for token), so both are
        # recorded in the identity's info, not in its options; in bf16 / on a GPU, RunConfig.numerics keeps a run
        # folder to one setting
        self.decoder = decoder
        self.share_prefix = share_prefix
        # the static / graph step's attention (decoding.STEP_ATTENTION): "grouped" reads each KV head once
        self.step_attention = "grouped"
        # stage_times (benchmarks): each batch's shape and synchronised stage seconds, in run.json's
        # model.info.decoding.batches
        self.decode_stats = DecodeStats(backend=decoder, record=stage_times)
        if time_hint and TIME_CONVENTIONS[config.model_type] != "frame-index-only":
            raise TempbenchError(f"--time-hint: {config.model_type} already reads frame times "
                                 f"({TIME_CONVENTIONS[config.model_type]})", "drop --time-hint for this model")
        self.time_hint = bool(time_hint)
        self.model_id = model_id
        self.path = path
        self.revision = revision
        self.weights = weights  # None for a model in memory (a policy mid-training): its folder is not its weights
        self.name = name or model_id
        self.generation = generation or GenerationSettings()
        if video_settings is None:
            from tempbench.video import VideoSettings

            video_settings = VideoSettings()
        self.video_settings = video_settings
        self._video_processor = video_processor or _default_video_processor(
            video_settings, path or Path("/nonexistent"), getattr(config, "vision_config", None), config.model_type,
            timestamps)
        #: clip -> model video inputs; picklable when it is the default, so the runner can run it in worker processes
        self.video_preprocessor = self._video_processor
        self.model_type = config.model_type
        self.model = model
        param = next(model.parameters())
        self.device = param.device
        self.dtype = param.dtype
        self.attn_implementation = attn_implementation
        if rope_index not in ("reference", "transformers"):
            raise TempbenchError(f"rope_index must be 'reference' or 'transformers', got {rope_index!r}")
        self.rope_index = rope_index
        if rope_index == "reference":
            if self.qwen3:
                from tempbench.models.qwen.rope3 import install_reference_rope_index3

                install_reference_rope_index3(model)
            else:
                from tempbench.models.qwen.rope import install_reference_rope_index

                install_reference_rope_index(model)
        from tempbench.models.qwen.vision_attention import install_fast_vision_tower

        # one batched SDPA call per distinct block length instead of one per block, the patch embedding as one
        # matmul instead of a 3-D convolution, an unaligned MLP computed at an aligned width (the same function,
        # far fewer and faster kernels); recorded in the identity's info (provenance)
        fast = install_fast_vision_tower(model)
        self.vision_tower = {"attention": "grouped" if fast["attention"] else "stock",
                             "patch_embed": "matmul" if fast["patch_embed"] else "stock",
                             "mlp": "zero-padded to a multiple of 64" if fast["mlp"] else "stock"}

        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        self.chat_template = chat_template
        tok = self.tokenizer
        self.video_token = "<|video_pad|>"
        self.video_token_id = int(config.video_token_id)
        self.image_token_id = int(config.image_token_id)
        vision_end = getattr(config, "vision_end_token_id", None)
        self.vision_end_token_id = int(vision_end) if vision_end is not None else None
        self.time_convention = TIME_CONVENTIONS[config.model_type]
        if self.time_hint:
            self.time_convention = "text-timestamps (hint)"
        if tok.convert_tokens_to_ids(self.video_token) != self.video_token_id:
            raise TempbenchError(
                f"{path}: tokenizer id of {self.video_token} ({tok.convert_tokens_to_ids(self.video_token)}) "
                f"differs from config.video_token_id ({self.video_token_id})",
                hint="tokenizer and model come from different checkpoints",
            )
        vc = config.vision_config
        self.merge_size = int(vc.spatial_merge_size)
        self.temporal_patch_size = int(getattr(vc, "temporal_patch_size", 2))
        gc = getattr(model, "generation_config", None)
        eos = getattr(gc, "eos_token_id", None) if gc is not None else None
        if eos is None:
            eos = [tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")]
        self.eos_token_id = eos if isinstance(eos, list) else [eos]
        pad = tok.pad_token_id
        if pad is None:
            pad = getattr(gc, "pad_token_id", None)
        if pad is None:
            pad = tok.convert_tokens_to_ids("<|endoftext|>")
        self.pad_token_id = int(pad)
        self._versions = {"transformers": transformers.__version__, "torch": torch.__version__}

    def prepare_video(self, clip) -> dict:
        """Resize, normalise and patchify a decoded clip (CPU work the runner does in its prefetch workers);
        `build_inputs` accepts the returned dict in place of the clip."""
        return self._video_processor(clip)

    # -- prompt building -------------------------------------------------------------------------------------
    def chat_text(self, prompt: str, with_video: bool) -> str:
        """The chat-formatted text for one query, with a single `<|video_pad|>` placeholder when `with_video`."""
        content = ([{"type": "video"}] if with_video else []) + [{"type": "text", "text": prompt}]
        return self.tokenizer.apply_chat_template(
            [{"role": "user", "content": content}],
            chat_template=self.chat_template,
            tokenize=False,
            add_generation_prompt=True,
        )

    def row(self, item: ModelInput, v: dict | None) -> tuple[list[int], Any, Any]:
        """One query's token ids (video placeholder expanded), its grid (1, 3) and its second_per_grid_ts (Qwen2.5)
        or None; `v` is the processed video (`prepare_video`) or None for a text-only query."""
        import torch

        prompt = item.prompt
        if self.time_hint and item.clip is not None:
            from tempbench.models.hf_video import time_hint_text

            times = item.clip.get("frame_times") if isinstance(item.clip, dict) else item.clip.timestamps
            if times is None:
                raise TempbenchError(f"qid {item.qid}: --time-hint needs the frames' times")
            prompt = time_hint_text(times) + "\n" + prompt
        text = self.chat_text(prompt, item.clip is not None)
        grid = seconds = None
        if item.clip is not None:
            if text.count(self.video_token) != 1:
                raise TempbenchError(
                    f"qid {item.qid}: the chat template produced {text.count(self.video_token)} "
                    f"{self.video_token} placeholders (expected 1)",
                    hint="the prompt must not contain vision tokens",
                )
            grid = torch.as_tensor(v["video_grid_thw"]).reshape(-1, 3).long()
            if grid.shape[0] != 1:
                raise TempbenchError(f"qid {item.qid}: expected one video, got grid {grid.tolist()}")
            n = int(grid.prod()) // self.merge_size**2
            if self.qwen3:
                text = self._expand_qwen3(text, v, grid, item)
            else:
                text = text.replace(self.video_token, self.video_token * n)
                sp = v.get("second_per_grid_ts")
                if sp is None:
                    sp = [self.temporal_patch_size / float(item.clip.fps)]
                seconds = torch.as_tensor(sp, dtype=torch.float32).reshape(-1)
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if item.clip is not None:
            got = sum(1 for t in ids if t == self.video_token_id)
            if got != n:
                raise TempbenchError(
                    f"qid {item.qid}: {got} video tokens after tokenisation, grid needs {n}",
                    hint="the tokenizer splits <|video_pad|>; check the checkpoint's tokenizer files",
                )
        return ids, grid, seconds

    def prompt_tokens_estimate(self, duration: float, prompt: str) -> int:
        """An upper bound of a query's prompt tokens from its annotated duration (no video is read): the frame count
        the sampling gives a 30-fps video of that length, each temporal patch at the largest size the pixel budget
        allows, plus the chat text (and Qwen3's `<t seconds>` markers). Used only to plan batches under a token
        budget (`tempbench.batching`); it changes no answer."""
        import math

        from tempbench.models.qwen.processor import frame_pixel_budget
        from tempbench.models.qwen.processor3 import qwen_vl_utils_frame_budget
        from tempbench.video import frame_plan

        vs = self.video_settings
        total = max(1, int(math.ceil(max(duration, 0.0) * 30.0)))
        n = len(frame_plan(total, 30.0, vs))
        patches = math.ceil(n / self.temporal_patch_size)
        factor = (14 if not self.qwen3 else 16) * self.merge_size
        if self.qwen3 and vs.resize_mode == "transformers":
            per_frame = vs.total_pixels / max(n, 1)
        elif self.qwen3:
            per_frame = qwen_vl_utils_frame_budget(n, vs, factor)
        else:
            per_frame = frame_pixel_budget(n, vs.min_pixels, vs.max_pixels, vs.total_pixels, vs.frame_factor)
        video = patches * int(per_frame // factor**2) + (patches * 8 if self.qwen3 else 0)
        text = len(self.tokenizer(self.chat_text(prompt, True), add_special_tokens=False)["input_ids"])
        return int(video + text)

    def videos_of(self, batch: list[ModelInput]) -> list[dict | None]:
        """Each query's processed video, processed once per distinct clip object (the runner hands every query of
        one video the same prepared clip)."""
        done: dict[int, dict] = {}
        out = []
        for item in batch:
            if item.clip is None:
                out.append(None)
                continue
            key = id(item.clip)
            if key not in done:
                done[key] = item.clip if isinstance(item.clip, dict) else self._video_processor(item.clip)
            out.append(done[key])
        return out

    def build_inputs(self, batch: list[ModelInput]) -> dict:
        """Model inputs for a batch: left-padded ids, attention mask, mm_token_type_ids and the video tensors."""
        import torch

        rows: list[list[int]] = []
        pixel_values, grids, seconds = [], [], []
        for item, v in zip(batch, self.videos_of(batch)):
            ids, grid, sp = self.row(item, v)
            if v is not None:
                pixel_values.append(torch.as_tensor(v["pixel_values_videos"]))
                grids.append(grid)
                if sp is not None:
                    seconds.append(sp)
            rows.append(ids)
        return self.pad_rows(rows, pixel_values, grids, seconds)

    def pad_rows(self, rows: list[list[int]], pixel_values: list, grids: list, seconds: list) -> dict:
        """Left-padded `input_ids`, `attention_mask`, `mm_token_type_ids` and the stacked video tensors."""
        import torch

        width = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            input_ids[i, width - len(r) :] = torch.tensor(r, dtype=torch.long)
            attention_mask[i, width - len(r) :] = 1
        mm = torch.zeros_like(input_ids, dtype=torch.int32)
        mm[(input_ids == self.image_token_id) & (attention_mask == 1)] = 1
        mm[(input_ids == self.video_token_id) & (attention_mask == 1)] = 2
        out = {"input_ids": input_ids, "attention_mask": attention_mask, "mm_token_type_ids": mm}
        if pixel_values:
            out["pixel_values_videos"] = torch.cat(pixel_values, 0)
            out["video_grid_thw"] = torch.cat(grids, 0)
            if self.model_type == "qwen2_5_vl":
                out["second_per_grid_ts"] = torch.cat(seconds, 0)
        return out

    def _expand_qwen3(self, text: str, v: dict, grid, item: ModelInput) -> str:
        """The chat text with this video's `<t seconds>` blocks in the adapter's layout (its own times only)."""
        from tempbench.models.qwen.layout import expand_video

        times = v.get("timestamps")
        t, h, w = (int(x) for x in grid[0].tolist())
        if times is None or len(times) != t:
            raise TempbenchError(f"qid {item.qid}: the processed video carries {None if times is None else len(times)}"
                                 f" patch times for {t} temporal patches",
                                 "Qwen3 videos need each patch's time: process clips with process_video3")
        if v.get("time_source", self.timestamps) != self.timestamps:
            raise TempbenchError(f"qid {item.qid}: video times from {v.get('time_source')!r}, the adapter uses "
                                 f"{self.timestamps!r}")
        return expand_video(text, times, h * w // self.merge_size**2, self.layout, pad=self.video_token)

    # -- protocol ----------------------------------------------------------------------------------------------
    def generate(self, batch: list[ModelInput]) -> list[str]:
        if not batch:
            return []
        if self.decoder != "transformers":
            new = self.generate_ids(batch)
            return [s.strip() for s in self.tokenizer.batch_decode(new, skip_special_tokens=True)]
        return self.generate_stock(batch)

    def generate_stock(self, batch: list[ModelInput]) -> list[str]:
        """The reference path: the whole left-padded batch through transformers' `generate`."""
        import torch

        inputs = self.build_inputs(batch)
        dev = self.device
        for k, v in inputs.items():
            v = v.to(dev)
            if k == "pixel_values_videos":
                v = v.to(self.dtype)
            inputs[k] = v
        if self.generation.do_sample and self.generation.seed is not None:
            torch.manual_seed(int(self.generation.seed))
        with torch.inference_mode():
            config = self.generation.transformers_config(self.eos_token_id, self.pad_token_id)
            out = self.model.generate(**inputs, generation_config=config)
        new = out[:, inputs["input_ids"].shape[1] :]
        return [s.strip() for s in self.tokenizer.batch_decode(new, skip_special_tokens=True)]

    def generate_ids(self, batch: list[ModelInput]):
        """(R, T) answer ids of tempbench's own loop (`decoder` != "transformers"): per-video prefix sharing when
        `share_prefix`, then `tempbench.models.qwen.decoding` (pad id after each row's EOS)."""
        import torch

        from tempbench.models.qwen.prefix import generate_ids

        if self.generation.do_sample and self.generation.seed is not None:
            torch.manual_seed(int(self.generation.seed))
        with torch.inference_mode():
            return generate_ids(self, batch, share=self.share_prefix, backend=self.decoder, stats=self.decode_stats)

    def identity(self) -> ModelIdentity:
        """What produced the answers: the weights' fingerprint, dtype, attention, and the options that change
        answers (position ids, chat template); library versions and the device are recorded, not compared."""
        options = {"rope_index": self.rope_index,
                   "chat_template_sha256": hashlib.sha256(self.chat_template.encode()).hexdigest()}
        if self.qwen3:  # which times the `<t seconds>` markers carry, and where the tokens go
            options.update(timestamps=self.timestamps, layout=self.layout)
        if self.time_hint:
            options["time_hint"] = True
        if getattr(self, "trust_remote_code", False):
            options["trust_remote_code"] = True
        return ModelIdentity(
            spec=self.model_id, id=str(self.path) if self.path else self.model_id, backend=self.backend,
            revision=self.revision, weights=self.weights, model_type=self.model_type,
            dtype=str(self.dtype).replace("torch.", ""), attn_implementation=self.attn_implementation,
            options=options,
            info={"name": self.name, "device": str(self.device), "vision_tower": dict(self.vision_tower),
                  "time_convention": self.time_convention, "versions": dict(self._versions),
                  "decoding": self.decoding_info(), **zoo_info(self)},
        )

    def decoding_info(self) -> dict:
        """How answers were decoded (provenance): the loop, prefix sharing, and what the step backend did."""
        st = self.decode_stats
        info = {"decoder": self.decoder, "share_prefix": self.share_prefix if self.decoder != "transformers" else False}
        if self.decoder != "transformers":
            info.update(backend=st.backend, steps=st.steps, step_seconds=round(st.step_seconds, 3))
            if st.step_attention:
                info["step_attention"] = st.step_attention
            if st.captures:
                info.update(graph_captures=st.captures, capture_seconds=round(st.capture_seconds, 3))
            if st.fallbacks:
                info["fallbacks"] = sorted(set(st.fallbacks))
            if st.record:
                info["batches"] = list(st.batches)
        return info

    def close(self) -> None:
        model = getattr(self, "model", None)
        if model is None:
            return
        self.model = None
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except Exception:  # pragma: no cover
            pass


