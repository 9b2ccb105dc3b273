"""A tiny Qwen2.5-VL-architecture model built locally, and the public Qwen2.5-VL-7B config.

`build_tiny_qwen2_5_vl` makes a complete Hugging Face model folder (config, float32 safetensors weights, a
byte-level BPE tokenizer trained here on a small built-in corpus, the Qwen chat template, generation config)
that `Qwen2_5_VLForConditionalGeneration.from_pretrained` and `AutoTokenizer.from_pretrained` load offline.
Tests, the synthetic task and the trainer use it in place of a 7B checkpoint: same architecture, same special
token strings, same chat format, same video position-id logic (M-RoPE with `second_per_grid_ts`).

Build is deterministic: the same seed gives the same bytes of weights and tokenizer files.

`qwen2_5_vl_7b_config()` returns the values of the public Qwen/Qwen2.5-VL-7B-Instruct `config.json`, for speed and
memory measurements with random weights (the work per token does not depend on weight values).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

# Special tokens of the Qwen2 / Qwen2.5-VL tokenizer (the same strings; the tiny vocabulary gives them small ids).
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# The pre-tokenisation pattern of the Qwen2 tokenizer (digits are split one by one, which suits timestamps).
QWEN2_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Qwen2-VL / Qwen2.5-VL chat format: a default system turn when none is given, vision placeholders in the user
# turn, `<|im_start|>assistant\n` as generation prompt. Written for this project from the documented format.
QWEN_VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}"
    "{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n"
    "{% else %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}"
    "{{ content['text'] }}"
    "{% endif %}"
    "{% endfor %}"
    "<|im_end|>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}"
    "<|im_start|>assistant\n"
    "{% endif %}"
)

_QUERIES = (
    "person opens the door",
    "a person is putting a book on a shelf",
    "person sitting on a chair",
    "the person turns on the light",
    "a person takes a phone from the table",
    "person closes the laptop",
    "someone is drinking from a cup",
    "a man walks into the room",
    "a woman throws a pillow",
    "person eating a sandwich",
    "the red square moves to the left",
    "a bright flash appears on the screen",
    "the ball bounces across the floor",
    "person laughing at the television",
    "a person holds a blanket and smiles",
)

_WORDS = (
    "the a an and or of in on at to from for with within by is are was be this that these those video event "
    "time period start end seconds second precise two decimal places format example provide determine accurately "
    "pinpoint query sentence highlight timestamps saliency score scale output thought process tags including "
    "analysis either specific ranges then please find contents described return salient scores their they "
    "moment when what where which does happen occur begin finish frame frames clip during after before answer "
    "think timestep person people man woman someone something object door light chair table cup phone book "
    "shelf room floor window box red green blue white black square circle appears disappears moves left right "
    "up down opens closes takes puts holds walks runs sits stands turns looks smiles eats drinks"
)


def _corpus() -> list[str]:
    """A small deterministic corpus: prompt templates, answers with timestamps, task words."""
    lines: list[str] = []
    try:
        from tempbench.prompts import PROMPTS

        templates = [p.template for p in PROMPTS.values()]
    except Exception:  # pragma: no cover - prompts module is part of the package; keep the build independent
        templates = []
    for i, q in enumerate(_QUERIES):
        duration = 10.0 + 7.3 * i
        for t in templates:
            lines.append(t.replace("{query}", q).replace("{duration}", f"{duration:.2f}"))
        s, e = 0.37 * i + 1.1, 0.37 * i + 5.9 + i
        lines.append(f"<answer> {s:.2f} to {e:.2f} </answer>")
        lines.append(f"<think> The event starts at <timestep> {s:.2f} </timestep> seconds. </think>")
        lines.append(f"<think>The {q} happens from {s:.1f} to {e:.1f}.</think><answer>{s:.2f} to {e:.2f}</answer>")
        lines.append(f"The event happens in the {s:.1f} - {e:.1f} seconds. Frame at {s:.1f}s:")
    for a in range(0, 200, 3):
        lines.append(f"{a / 2:.2f} to {a / 2 + 3.75:.2f}, {a} to {a + 7} seconds, {a}.{a % 10}s")
    lines.append(_WORDS)
    lines.append(" ".join(str(n) for n in range(100)))
    return lines


def build_tokenizer(vocab_size: int = 1024):
    """Train a byte-level BPE tokenizer (Qwen2 pre-tokenisation) on the built-in corpus; return a `tokenizers.Tokenizer`."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    return tok


def tiny_config_dict(token_ids: dict[str, int], vocab_size: int) -> dict:
    """Config values of the tiny model (Qwen2.5-VL layout; hidden 64, 2 text layers, 2 vision blocks)."""
    return {
        "architectures": ["Qwen2_5_VLForConditionalGeneration"],
        "model_type": "qwen2_5_vl",
        "image_token_id": token_ids["<|image_pad|>"],
        "video_token_id": token_ids["<|video_pad|>"],
        "vision_start_token_id": token_ids["<|vision_start|>"],
        "vision_end_token_id": token_ids["<|vision_end|>"],
        "tie_word_embeddings": False,
        "text_config": {
            "model_type": "qwen2_5_vl_text",
            "vocab_size": vocab_size,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "hidden_act": "silu",
            "max_position_embeddings": 32768,
            "rms_norm_eps": 1e-6,
            "use_sliding_window": False,
            "max_window_layers": 2,
            "attention_dropout": 0.0,
            # head_dim 16 -> 8 rotary frequencies split over (t, h, w)
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, 3]},
            "bos_token_id": token_ids["<|endoftext|>"],
            "eos_token_id": token_ids["<|im_end|>"],
            "pad_token_id": token_ids["<|endoftext|>"],
            "initializer_range": 0.02,
        },
        "vision_config": {
            "model_type": "qwen2_5_vl_vision",
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "in_channels": 3,
            "out_hidden_size": 64,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "tokens_per_second": 2,
            "window_size": 112,
            "fullatt_block_indexes": [1],
            "hidden_act": "silu",
            "initializer_range": 0.02,
        },
    }


def seeded_init(make, seed: int):
    """`make()` (a model built from its config) with weights drawn under `torch.manual_seed(seed)` on the CPU, in
    float32; the global RNG state is left as it was."""
    import torch

    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        with torch.device("cpu"):
            return make().to(torch.float32)
    finally:
        torch.random.set_rng_state(state)


def save_tokenizer(tok, out: Path, chat_template: str = QWEN_VL_CHAT_TEMPLATE) -> None:
    """The tokenizer as a Hugging Face fast tokenizer (Qwen special tokens, left padding, `chat_template`)."""
    from transformers import PreTrainedTokenizerFast

    PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        bos_token=None,
        additional_special_tokens=[t for t in SPECIAL_TOKENS if t not in ("<|im_end|>", "<|endoftext|>")],
        model_max_length=32768,
        padding_side="left",
        clean_up_tokenization_spaces=False,
        chat_template=chat_template,
    ).save_pretrained(out)


def add_word_tokens(folder: str | os.PathLike, words: list[str] | tuple[str, ...]) -> list[str]:
    """Give each of `words`, after a space (" red"), one token of the byte-level BPE tokenizer of `folder`: merges
    appended after the tokenizer's own (lowest priority, so no other text changes unless it holds those pieces),
    one per adjacent pair until the word encodes as one token; `config.json`'s `text_config.vocab_size` follows.
    Idempotent (a word already one token adds nothing). Returns the tokens added to the vocabulary."""
    from tokenizers import Tokenizer

    folder = Path(folder)
    tok_path, cfg_path = folder / "tokenizer.json", folder / "config.json"
    data = json.loads(tok_path.read_text(encoding="utf-8"))
    model = data["model"]
    if model.get("type") != "BPE":
        raise ValueError(f"{tok_path}: a {model.get('type')} model, not BPE")
    vocab, merges = model["vocab"], model["merges"]
    pairs_as_lists = bool(merges) and isinstance(merges[0], list)
    added: list[str] = []
    for word in words:
        while True:
            pieces = Tokenizer.from_str(json.dumps(data)).encode(" " + word, add_special_tokens=False).tokens
            if len(pieces) == 1:
                break
            left, right = pieces[0], pieces[1]
            merged = left + right
            if merged in vocab:  # the merge would already apply; its rank keeps it from firing here
                raise ValueError(f"{tok_path}: {merged!r} is in the vocabulary but {word!r} encodes as {pieces}")
            merges.append([left, right] if pairs_as_lists else f"{left} {right}")
            vocab[merged] = max(vocab.values()) + 1
            added.append(merged)
    if not added:
        return added
    tok_path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    cfg = json.loads(cfg_path.read_text())
    size = max(vocab.values()) + 1
    section = cfg["text_config"] if "text_config" in cfg else cfg
    section["vocab_size"] = max(int(section.get("vocab_size", 0)), size)
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    return added


def tiny_generation_config(token_ids: dict[str, int]):
    """Greedy generation that ends at <|im_end|> or <|endoftext|> (the tiny models' shared settings)."""
    from transformers import GenerationConfig

    return GenerationConfig(
        bos_token_id=token_ids["<|endoftext|>"],
        eos_token_id=[token_ids["<|im_end|>"], token_ids["<|endoftext|>"]],
        pad_token_id=token_ids["<|endoftext|>"],
        do_sample=False,
    )


def sized_config_dict(token_ids: dict[str, int], vocab_size: int, sizes: dict | None = None) -> dict:
    """`tiny_config_dict` with `sizes` (`{"text": {...}, "vision": {...}}`, text may hold `mrope_section`)."""
    cfg = tiny_config_dict(token_ids, vocab_size)
    if sizes:
        text = dict(sizes.get("text", {}))
        if "mrope_section" in text:
            cfg["text_config"]["rope_parameters"] = {**cfg["text_config"]["rope_parameters"],
                                                     "mrope_section": text.pop("mrope_section")}
        cfg["text_config"].update(text)
        cfg["vision_config"].update(sizes.get("vision", {}))
    return cfg


# The network of the `tiny-synthetic` zoo model (4.40 M parameters; 8.8 MB in bf16): text hidden 256, 4 layers,
# 4 heads of 64, 2 KV heads, M-RoPE sections [8, 12, 12]; vision 2 blocks of width 128. The size of the model of
# benchmarks/train_synthetic_gpu.py, which learned the synthetic task given enough steps.
SYNTHETIC_SIZES = {
    "text": {"hidden_size": 256, "intermediate_size": 768, "num_hidden_layers": 4, "num_attention_heads": 4,
             "num_key_value_heads": 2, "max_window_layers": 4, "mrope_section": [8, 12, 12]},
    "vision": {"depth": 2, "hidden_size": 128, "intermediate_size": 256, "num_heads": 2, "out_hidden_size": 256,
               "fullatt_block_indexes": [1]},
}


def write_model_files(out_dir: str | os.PathLike, sizes: dict | None = None, vocab_size: int = 1024) -> Path:
    """A model folder WITHOUT weights: the tokenizer trained here, the chat template, and `config.json`,
    `generation_config.json` and `preprocessor_config.json` written as plain JSON (no keys of one transformers
    version, so that every 5.x reads them). `init_weights` then draws its weights."""

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(vocab_size)
    ids = {t: tok.token_to_id(t) for t in SPECIAL_TOKENS}
    save_tokenizer(tok, out)
    for name in ("special_tokens_map.json",):
        (out / name).unlink(missing_ok=True)
    cfg = {**sized_config_dict(ids, tok.get_vocab_size(), sizes), "dtype": "float32"}
    (out / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    gen = {"bos_token_id": ids["<|endoftext|>"], "eos_token_id": [ids["<|im_end|>"], ids["<|endoftext|>"]],
           "pad_token_id": ids["<|endoftext|>"], "do_sample": False}
    (out / "generation_config.json").write_text(json.dumps(gen, indent=2, sort_keys=True) + "\n")
    _write_preprocessor_config(out)
    return out


def init_weights(folder: str | os.PathLike, seed: int = 0, out_dir: str | os.PathLike | None = None) -> Path:
    """Draw float32 weights for the `config.json` of `folder` under `torch.manual_seed(seed)` (CPU) and save the
    model with the folder's tokenizer files into `out_dir` (default: the folder itself)."""
    import shutil

    from transformers import AutoConfig, GenerationConfig, Qwen2_5_VLForConditionalGeneration

    src = Path(folder)
    out = Path(out_dir) if out_dir is not None else src
    if out != src:
        out.mkdir(parents=True, exist_ok=True)
        for f in src.iterdir():
            if f.is_file() and not f.name.endswith(".safetensors"):
                shutil.copy2(f, out / f.name)
    config = AutoConfig.from_pretrained(src)
    model = seeded_init(lambda: Qwen2_5_VLForConditionalGeneration(config), seed)
    model.generation_config = GenerationConfig.from_pretrained(src)
    model.save_pretrained(out)
    return out


def _write_preprocessor_config(out: Path) -> None:
    """A processor-style preprocessor config so that other tools can see the video settings of the model."""
    (out / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "image_processor_type": "Qwen2VLImageProcessor",
                "patch_size": 14,
                "temporal_patch_size": 2,
                "merge_size": 2,
                "min_pixels": 3136,
                "max_pixels": 12845056,
                "image_mean": [0.48145466, 0.4578275, 0.40821073],
                "image_std": [0.26862954, 0.26130258, 0.27577711],
            },
            indent=2,
            sort_keys=True,
        )
        + "\n"
    )


def build_tiny_qwen2_5_vl(out_dir: str | os.PathLike, seed: int = 0, vocab_size: int = 1024,
                          sizes: dict | None = None) -> Path:
    """Write a tiny float32 Qwen2.5-VL model folder to `out_dir` (created) and return its path.

    Deterministic in `seed`: weights are initialised under `torch.manual_seed(seed)` on CPU. `sizes`
    (`{"text": {...}, "vision": {...}}`, text may hold `mrope_section`) overrides the network's sizes, e.g. for the
    small model of benchmarks/train_synthetic_gpu.py; tokenizer and chat format stay the same.
    """
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
    )

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    tok = build_tokenizer(vocab_size)
    ids = {t: tok.token_to_id(t) for t in SPECIAL_TOKENS}
    save_tokenizer(tok, out)
    cfg = sized_config_dict(ids, tok.get_vocab_size(), sizes)
    config = Qwen2_5_VLConfig(**cfg)
    config.dtype = "float32"
    model = seeded_init(lambda: Qwen2_5_VLForConditionalGeneration(config), seed)
    model.generation_config = tiny_generation_config(ids)
    model.save_pretrained(out)
    _write_preprocessor_config(out)
    (out / "TEMPBENCH_TINY.json").write_text(
        json.dumps({"builder": "tempbench.models.qwen.tiny.build_tiny_qwen2_5_vl", "seed": seed, "vocab_size": vocab_size,
                    **({"sizes": sizes} if sizes else {})})
        + "\n"
    )
    return out


def qwen2_5_vl_7b_config():
    """`Qwen2_5_VLConfig` with the values of the public Qwen/Qwen2.5-VL-7B-Instruct config.json (bf16)."""
    from transformers import Qwen2_5_VLConfig

    cfg = Qwen2_5_VLConfig(
        image_token_id=151655,
        video_token_id=151656,
        vision_start_token_id=151652,
        vision_end_token_id=151653,
        tie_word_embeddings=False,
        text_config={
            "model_type": "qwen2_5_vl_text",
            "vocab_size": 152064,
            "hidden_size": 3584,
            "intermediate_size": 18944,
            "num_hidden_layers": 28,
            "num_attention_heads": 28,
            "num_key_value_heads": 4,
            "hidden_act": "silu",
            "max_position_embeddings": 128000,
            "max_window_layers": 28,
            "rms_norm_eps": 1e-6,
            "use_sliding_window": False,
            "sliding_window": 32768,
            "attention_dropout": 0.0,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
            "bos_token_id": 151643,
            "eos_token_id": 151645,
            "initializer_range": 0.02,
        },
        vision_config={
            "model_type": "qwen2_5_vl_vision",
            "depth": 32,
            "hidden_act": "silu",
            "hidden_size": 1280,
            "intermediate_size": 3420,
            "num_heads": 16,
            "in_channels": 3,
            "out_hidden_size": 3584,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "tokens_per_second": 2,
            "window_size": 112,
            "fullatt_block_indexes": [7, 15, 23, 31],
            "initializer_range": 0.02,
        },
    )
    cfg.dtype = "bfloat16"
    return cfg


TINY_BUILDER_VERSION = 1  # bump when the build changes, so cached copies are rebuilt


def tiny_model_dir(seed: int = 0, cache_dir: str | os.PathLike | None = None) -> Path:
    """Path of the tiny model for `seed`, built on first use into the cache (`$TEMPBENCH_HOME/models/`).

    Concurrent callers are safe: the model is built into a temporary folder that is renamed into place.
    """
    import shutil
    import tempfile

    if cache_dir is None:
        base = os.environ.get("TEMPBENCH_HOME") or Path.home() / ".cache" / "tempbench"
        cache_dir = Path(base).expanduser() / "models"
    cache = Path(cache_dir)
    target = cache / f"tiny-qwen2_5_vl-v{TINY_BUILDER_VERSION}-seed{seed}"
    if (target / "model.safetensors").is_file() and (target / "TEMPBENCH_TINY.json").is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=cache))
    try:
        build_tiny_qwen2_5_vl(tmp, seed=seed)
        try:
            os.replace(tmp, target)
        except OSError:  # another process won the race (target exists and is not empty)
            if not (target / "model.safetensors").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
