"""Tiny LLaVA-OneVision and GLM-4.1V models built locally (random weights) for the generic adapter's tests.

Each folder is what `AutoModelForImageTextToText`, `AutoTokenizer` and the family's processor load offline: config,
float32 safetensors, the byte-level BPE tokenizer of `tempbench.models.qwen.tiny` with the family's special tokens
added, a chat template written here in the family's documented format, and the processor configs of the stock
checkpoints (sizes shrunk):

- `llava_onevision`: SigLIP vision (32 x 32 frames, patch 8 -> 16 patches, pooled 2 x 2 per frame) + Qwen2 text;
  the video is one `<video>` run of `frames * 4 + 1` tokens: the model sees frame order, no times
  (`frame-index-only`);
- `glm4v`: GLM-4.1V vision (patch 14, merge 2, temporal patch 2) + GLM-4 text with M-RoPE; each 2-frame group is
  `<|begin_of_image|><|image|>*n<|end_of_image|>{int seconds}`: times as text (`text-timestamps`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

LLAVA_OV_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'video' %}<video>\n{% elif content['type'] == 'image' %}<image>\n"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
GLM4V_TEMPLATE = (
    "[gMASK]<sop>{% for message in messages %}<|{{ message['role'] }}|>\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'video' %}<|begin_of_video|><|video|><|end_of_video|>"
    "{% elif content['type'] == 'image' %}<|begin_of_image|><|image|><|end_of_image|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
FAMILIES = ("llava_onevision", "glm4v")
_EXTRA = {"llava_onevision": ("<image>", "<video>"),
          "glm4v": ("[gMASK]", "<sop>", "<|user|>", "<|assistant|>", "<|system|>", "<|image|>", "<|video|>",
                    "<|begin_of_image|>", "<|end_of_image|>", "<|begin_of_video|>", "<|end_of_video|>")}


def _tokenizer(out: Path, family: str, vocab_size: int):
    from transformers import PreTrainedTokenizerFast

    from tempbench.models.qwen.tiny import SPECIAL_TOKENS, build_tokenizer

    tok = build_tokenizer(vocab_size)
    tok.add_special_tokens(list(_EXTRA[family]))
    eos = "<|im_end|>" if family == "llava_onevision" else "<|user|>"
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=eos, pad_token="<|endoftext|>", unk_token=None, bos_token=None,
        additional_special_tokens=[t for t in (*SPECIAL_TOKENS, *_EXTRA[family]) if t not in (eos, "<|endoftext|>")],
        model_max_length=32768, padding_side="left", clean_up_tokenization_spaces=False,
        chat_template=LLAVA_OV_TEMPLATE if family == "llava_onevision" else GLM4V_TEMPLATE)
    hf.save_pretrained(out)
    return {t: tok.token_to_id(t) for t in (*SPECIAL_TOKENS, *_EXTRA[family])}, tok.get_vocab_size(), eos


def _config(family: str, ids: dict, vocab: int) -> dict:
    text = {"vocab_size": vocab, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 32768,
            "rms_norm_eps": 1e-6, "pad_token_id": ids["<|endoftext|>"], "tie_word_embeddings": False}
    if family == "llava_onevision":
        return {"model_type": "llava_onevision", "architectures": ["LlavaOnevisionForConditionalGeneration"],
                "image_token_index": ids["<image>"], "video_token_index": ids["<video>"],
                "vision_feature_select_strategy": "full", "vision_feature_layer": -1,
                "image_grid_pinpoints": [[32, 32]], "vision_aspect_ratio": "anyres_max_9", "tie_word_embeddings": False,
                "text_config": {**text, "model_type": "qwen2"},
                "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 32, "intermediate_size": 64,
                                  "num_hidden_layers": 2, "num_attention_heads": 2, "image_size": 32, "patch_size": 8,
                                  "num_channels": 3}}
    return {"model_type": "glm4v", "architectures": ["Glm4vForConditionalGeneration"],
            "image_token_id": ids["<|image|>"], "video_token_id": ids["<|video|>"],
            "image_start_token_id": ids["<|begin_of_image|>"], "image_end_token_id": ids["<|end_of_image|>"],
            "video_start_token_id": ids["<|begin_of_video|>"], "video_end_token_id": ids["<|end_of_video|>"],
            "tie_word_embeddings": False,
            # head_dim 16 -> M-RoPE sections over (t, h, w) of 8 rotary pairs, partial rotary 0.5 as GLM-4
            "text_config": {**text, "model_type": "glm4v_text",
                            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                                                "mrope_section": [1, 1, 2], "partial_rotary_factor": 0.5}},
            "vision_config": {"model_type": "glm4v", "depth": 2, "hidden_size": 32, "intermediate_size": 64,
                              "num_heads": 2, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
                              "out_hidden_size": 64, "image_size": 56}}


def _processor_files(out: Path, family: str) -> None:
    if family == "llava_onevision":
        common = {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "resample": 3, "do_resize": True,
                  "do_rescale": True, "do_normalize": True, "do_convert_rgb": True, "rescale_factor": 1 / 255,
                  "size": {"height": 32, "width": 32}}
        image = {**common, "image_processor_type": "LlavaOnevisionImageProcessor", "image_grid_pinpoints": [[32, 32]],
                 "do_pad": True}
        video = {**common, "video_processor_type": "LlavaOnevisionVideoProcessor"}
        proc = {"processor_class": "LlavaOnevisionProcessor", "num_image_tokens": 16,
                "vision_feature_select_strategy": "full", "vision_aspect_ratio": "anyres_max_9"}
    else:
        common = {"image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
                  "resample": 3, "do_resize": True, "do_rescale": True, "do_normalize": True, "do_convert_rgb": True,
                  "rescale_factor": 1 / 255, "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2}
        image = {**common, "image_processor_type": "Glm4vImageProcessor",
                 "size": {"shortest_edge": 28 * 28, "longest_edge": 56 * 56}}
        video = {**common, "video_processor_type": "Glm4vVideoProcessor", "fps": 2, "max_duration": 300,
                 "do_sample_frames": True, "size": {"shortest_edge": 28 * 28 * 2, "longest_edge": 56 * 84 * 16}}
        proc = {"processor_class": "Glm4vProcessor"}
    for name, data in (("preprocessor_config.json", image), ("video_preprocessor_config.json", video),
                       ("processor_config.json", proc)):
        (out / name).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def build_tiny_vlm(out_dir: str | os.PathLike, family: str = "llava_onevision", seed: int = 0,
                   vocab_size: int = 1024) -> Path:
    """Write a tiny float32 `family` ("llava_onevision" | "glm4v") folder to `out_dir`; return its path."""
    from transformers import AutoConfig, AutoModelForImageTextToText, GenerationConfig

    from tempbench.models.qwen.tiny import seeded_init

    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ids, vocab, eos = _tokenizer(out, family, vocab_size)
    config = AutoConfig.for_model(**_config(family, ids, vocab))
    config.dtype = "float32"
    model = seeded_init(lambda: AutoModelForImageTextToText.from_config(config), seed)
    model.generation_config = GenerationConfig(eos_token_id=[ids[eos], ids["<|endoftext|>"]],
                                               pad_token_id=ids["<|endoftext|>"], do_sample=False)
    model.save_pretrained(out)
    _processor_files(out, family)
    (out / "TEMPBENCH_TINY.json").write_text(json.dumps(
        {"builder": "tempbench.models.tiny_vlm.build_tiny_vlm", "family": family, "seed": seed}) + "\n")
    return out
