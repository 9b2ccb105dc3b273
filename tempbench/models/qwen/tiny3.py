"""Tiny Qwen3-VL and Qwen3.5 models built locally (random weights), and the public Qwen3-VL-8B config.

`build_tiny_qwen3(out_dir, family, seed)` writes a complete Hugging Face folder (config, float32 safetensors, the
byte-level BPE tokenizer of `tempbench.models.qwen.tiny` with the Qwen special tokens, a Qwen3-format chat template,
generation config, `preprocessor_config.json` / `video_preprocessor_config.json` with the Qwen3 patch size 16 and
mean/std 0.5) that `AutoModelForImageTextToText` and `AutoTokenizer` load offline:

- `family="qwen3_vl"`: `Qwen3VLForConditionalGeneration`, hidden 64, 3 text layers, 3 vision blocks with DeepStack
  taps after blocks 0 and 1 (the real model taps 8, 16, 24), added after text layers 0 and 1 (a tap after the
  last text layer could not reach the answer), interleaved M-RoPE;
- `family="qwen3_5"`: `Qwen3_5ForConditionalGeneration`, 4 text layers = 3 Gated-DeltaNet (linear attention with
  conv + recurrent state) + 1 full attention, as the released 3:1 pattern, partial rotary 0.25, no DeepStack.

Both write `<t seconds>` before each temporal patch (the processor's job, `tempbench.models.qwen.timestamps`), so
the same architectures, special-token strings and position-id logic as the released checkpoints are exercised.
The build is deterministic in `seed`.

`qwen3_vl_8b_config()` returns the values of the public Qwen/Qwen3-VL-8B-Instruct `config.json` for speed and memory
measurements with random weights.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

FAMILIES = ("qwen3_vl", "qwen3_5")

# Qwen3-VL / Qwen3.5 chat format as documented (no default system turn, unlike Qwen2.5-VL): vision placeholders
# `<|vision_start|><|video_pad|><|vision_end|>` in the user turn, `<|im_start|>assistant\n` as generation prompt.
# Written for this project; real checkpoints bring their own template.
QWEN3_VL_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}"
    "{{ message['content'] }}"
    "{% else %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}"
    "{{ content['text'] }}"
    "{% endif %}"
    "{% endfor %}"
    "{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}"
    "<|im_start|>assistant\n"
    "{% endif %}"
)

QWEN3_MEAN_STD = (0.5, 0.5, 0.5)


def _vision(ids: dict, family: str) -> dict:
    v = {
        "depth": 3,
        "hidden_size": 32,
        "hidden_act": "gelu_pytorch_tanh",
        "intermediate_size": 64,
        "num_heads": 2,
        "in_channels": 3,
        "patch_size": 16,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "out_hidden_size": 64,
        "num_position_embeddings": 64,  # an 8 x 8 learned grid, interpolated to each frame's grid
        "initializer_range": 0.02,
    }
    if family == "qwen3_vl":
        v.update(model_type="qwen3_vl", deepstack_visual_indexes=[0, 1])
    else:
        v.update(model_type="qwen3_5_vision")
    return v


def tiny_config_dict(ids: dict[str, int], vocab_size: int, family: str) -> dict:
    """Config values of the tiny model of `family` (see module docstring)."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    common = {
        "vocab_size": vocab_size,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "hidden_act": "silu",
        "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6,
        "attention_dropout": 0.0,
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
        "initializer_range": 0.02,
        "tie_word_embeddings": False,
    }
    if family == "qwen3_vl":
        # head_dim 16 -> 8 rotary frequencies, interleaved over (t, h, w) as [3, 3, 2] (released: [24, 20, 20])
        text = {**common, "model_type": "qwen3_vl_text", "num_hidden_layers": 3, "head_dim": 16,
                "rope_parameters": {"rope_type": "default", "rope_theta": 5000000.0, "mrope_section": [3, 3, 2],
                                    "mrope_interleaved": True}}
        arch, model_type = "Qwen3VLForConditionalGeneration", "qwen3_vl"
    else:
        # head_dim 32, partial rotary 0.25 -> 4 frequencies as [2, 1, 1] (released: head 256, [11, 11, 10]);
        # 3 linear-attention layers then one full-attention layer (full_attention_interval 4, as released)
        text = {**common, "model_type": "qwen3_5_text", "num_hidden_layers": 4, "head_dim": 32,
                "layer_types": ["linear_attention"] * 3 + ["full_attention"],
                "linear_conv_kernel_dim": 4, "linear_key_head_dim": 16, "linear_value_head_dim": 16,
                "linear_num_key_heads": 2, "linear_num_value_heads": 4,
                "rope_parameters": {"rope_type": "default", "rope_theta": 10000000.0, "mrope_section": [2, 1, 1],
                                    "mrope_interleaved": True, "partial_rotary_factor": 0.25}}
        arch, model_type = "Qwen3_5ForConditionalGeneration", "qwen3_5"
    return {
        "architectures": [arch],
        "model_type": model_type,
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
        "tie_word_embeddings": False,
        "text_config": text,
        "vision_config": _vision(ids, family),
    }


def _processor_configs(out: Path) -> None:
    """Image and video processor configs with the Qwen3 values (patch 16, merge 2, mean/std 0.5, bicubic)."""
    base = {"patch_size": 16, "temporal_patch_size": 2, "merge_size": 2, "image_mean": list(QWEN3_MEAN_STD),
            "image_std": list(QWEN3_MEAN_STD), "resample": 3, "rescale_factor": 1 / 255, "do_resize": True,
            "do_rescale": True, "do_normalize": True, "do_convert_rgb": True, "processor_class": "Qwen3VLProcessor"}
    image = {**base, "image_processor_type": "Qwen2VLImageProcessor",
             "size": {"shortest_edge": 65536, "longest_edge": 16777216}}
    video = {**base, "video_processor_type": "Qwen3VLVideoProcessor", "fps": 2, "min_frames": 4,
             "max_frames": 768, "do_sample_frames": True,
             "size": {"shortest_edge": 4096, "longest_edge": 25165824}}
    for name, data in (("preprocessor_config.json", image), ("video_preprocessor_config.json", video)):
        (out / name).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def build_tiny_qwen3(out_dir: str | os.PathLike, family: str = "qwen3_vl", seed: int = 0,
                     vocab_size: int = 1024) -> Path:
    """Write a tiny float32 model folder of `family` ("qwen3_vl" | "qwen3_5") to `out_dir`; return its path."""
    from transformers import AutoConfig, AutoModelForImageTextToText

    from tempbench.models.qwen.tiny import (
        SPECIAL_TOKENS,
        build_tokenizer,
        save_tokenizer,
        seeded_init,
        tiny_generation_config,
    )

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(vocab_size)
    ids = {t: tok.token_to_id(t) for t in SPECIAL_TOKENS}
    save_tokenizer(tok, out, chat_template=QWEN3_VL_CHAT_TEMPLATE)
    cfg = tiny_config_dict(ids, tok.get_vocab_size(), family)
    config = AutoConfig.for_model(**cfg)
    config.dtype = "float32"
    model = seeded_init(lambda: AutoModelForImageTextToText.from_config(config), seed)
    model.generation_config = tiny_generation_config(ids)
    model.save_pretrained(out)
    _processor_configs(out)
    (out / "TEMPBENCH_TINY.json").write_text(json.dumps(
        {"builder": "tempbench.models.qwen.tiny3.build_tiny_qwen3", "family": family, "seed": seed,
         "vocab_size": vocab_size}) + "\n")
    return out


TINY3_BUILDER_VERSION = 1  # bump when the build changes, so cached copies are rebuilt


def tiny3_model_dir(family: str = "qwen3_vl", seed: int = 0, cache_dir: str | os.PathLike | None = None) -> Path:
    """Path of the tiny model of `family` for `seed`, built on first use into `$TEMPBENCH_HOME/models/`
    (into a temporary folder renamed into place, so concurrent callers are safe)."""
    import shutil
    import tempfile

    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    if cache_dir is None:
        base = os.environ.get("TEMPBENCH_HOME") or Path.home() / ".cache" / "tempbench"
        cache_dir = Path(base).expanduser() / "models"
    cache = Path(cache_dir)
    target = cache / f"tiny-{family}-v{TINY3_BUILDER_VERSION}-seed{seed}"
    if (target / "model.safetensors").is_file() and (target / "TEMPBENCH_TINY.json").is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=cache))
    try:
        build_tiny_qwen3(tmp, family, seed=seed)
        try:
            os.replace(tmp, target)
        except OSError:  # another process won the race
            if not (target / "model.safetensors").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def qwen3_vl_8b_config():
    """`Qwen3VLConfig` with the values of the public Qwen/Qwen3-VL-8B-Instruct config.json (bf16)."""
    from transformers import Qwen3VLConfig

    cfg = Qwen3VLConfig(
        image_token_id=151655,
        video_token_id=151656,
        vision_start_token_id=151652,
        vision_end_token_id=151653,
        tie_word_embeddings=False,
        text_config={
            "model_type": "qwen3_vl_text",
            "vocab_size": 151936,
            "hidden_size": 4096,
            "intermediate_size": 12288,
            "num_hidden_layers": 36,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "head_dim": 128,
            "hidden_act": "silu",
            "max_position_embeddings": 262144,
            "rms_norm_eps": 1e-6,
            "attention_bias": False,
            "attention_dropout": 0.0,
            "rope_parameters": {"rope_type": "default", "rope_theta": 5000000.0, "mrope_section": [24, 20, 20],
                                "mrope_interleaved": True},
            "bos_token_id": 151643,
            "eos_token_id": 151645,
            "initializer_range": 0.02,
            "tie_word_embeddings": False,
        },
        vision_config={
            "model_type": "qwen3_vl",
            "depth": 27,
            "hidden_size": 1152,
            "hidden_act": "gelu_pytorch_tanh",
            "intermediate_size": 4304,
            "num_heads": 16,
            "in_channels": 3,
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "out_hidden_size": 4096,
            "num_position_embeddings": 2304,
            "deepstack_visual_indexes": [8, 16, 24],
            "initializer_range": 0.02,
        },
    )
    cfg.dtype = "bfloat16"
    return cfg
