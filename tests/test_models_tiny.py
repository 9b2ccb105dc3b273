"""The locally built tiny Qwen2.5-VL model and the public 7B config."""

from __future__ import annotations

import hashlib
import json

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tempbench.models.qwen.tiny import (  # noqa: E402
    SPECIAL_TOKENS,
    build_tiny_qwen2_5_vl,
    qwen2_5_vl_7b_config,
    tiny_model_dir,
)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_qwen2_5_vl(tmp_path_factory.mktemp("tiny") / "seed0", seed=0)


def test_same_seed_same_bytes_other_seed_other_weights(tiny, tmp_path):
    again = build_tiny_qwen2_5_vl(tmp_path / "again", seed=0)
    other = build_tiny_qwen2_5_vl(tmp_path / "other", seed=1)
    for name in ("model.safetensors", "tokenizer.json", "config.json", "chat_template.jinja"):
        assert _sha(tiny / name) == _sha(again / name), name
    assert _sha(tiny / "model.safetensors") != _sha(other / "model.safetensors")
    assert _sha(tiny / "tokenizer.json") == _sha(other / "tokenizer.json")  # tokenizer does not depend on the seed


def test_folder_loads_offline_with_consistent_special_tokens(tiny, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from transformers import AutoConfig, AutoTokenizer, Qwen2_5_VLForConditionalGeneration

    tok = AutoTokenizer.from_pretrained(tiny)
    cfg = AutoConfig.from_pretrained(tiny)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny)
    assert model.dtype == torch.float32
    assert cfg.model_type == "qwen2_5_vl"
    assert tok.convert_tokens_to_ids("<|video_pad|>") == cfg.video_token_id
    assert tok.convert_tokens_to_ids("<|image_pad|>") == cfg.image_token_id
    assert tok.convert_tokens_to_ids("<|vision_start|>") == cfg.vision_start_token_id
    assert tok.convert_tokens_to_ids("<|vision_end|>") == cfg.vision_end_token_id
    ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    assert len(set(ids.values())) == len(SPECIAL_TOKENS) and max(ids.values()) < cfg.text_config.vocab_size
    # special tokens are single tokens, also when glued to text
    enc = tok("<|vision_start|><|video_pad|><|video_pad|><|vision_end|>x", add_special_tokens=False)["input_ids"]
    assert enc[:4] == [ids["<|vision_start|>"], ids["<|video_pad|>"], ids["<|video_pad|>"], ids["<|vision_end|>"]]
    gen = json.loads((tiny / "generation_config.json").read_text())
    assert gen["do_sample"] is False and ids["<|im_end|>"] in gen["eos_token_id"]
    assert len(tok) == model.get_input_embeddings().weight.shape[0]


def test_tokenizer_round_trips_answers_and_splits_digits(tiny):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny)
    for text in ("<think> at 3.5s </think><answer> 12.54 to 17.83 </answer>", "Frame at 120.00s:", "ünïcode ✓"):
        assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    pieces = tok.tokenize(" 12.54")
    assert [p for p in pieces if p.strip("Ġ")] == ["1", "2", ".", "5", "4"]  # Qwen2 pre-tokenisation: one digit each
    assert len(tok.tokenize(" to")) == 1 and len(tok.tokenize("<answer>")) <= 3


def test_chat_template_is_qwen_format(tiny):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny)
    msgs = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Q?"}]}]
    text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n<|vision_start|><|video_pad|><|vision_end|>Q?<|im_end|>\n<|im_start|>assistant\n"
    )
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=False)
    assert text.endswith("<|im_start|>user\nhi<|im_end|>\n")


def test_forward_with_video_inputs(tiny):
    from transformers import AutoTokenizer, Qwen2_5_VLForConditionalGeneration

    tok = AutoTokenizer.from_pretrained(tiny)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny).eval()
    vid = model.config.video_token_id
    grid = torch.tensor([[2, 4, 4]])  # 2 temporal groups, 4x4 patches -> 8 tokens after 2x2 merge
    n = int(grid.prod()) // 4
    ids = tok("<|vision_start|>" + "<|video_pad|>" * n + "<|vision_end|>go", add_special_tokens=False)["input_ids"]
    ids = torch.tensor([ids])
    mm = (ids == vid).to(torch.int32) * 2
    pix = torch.randn(int(grid.prod()), 3 * 2 * 14 * 14, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model(input_ids=ids, pixel_values_videos=pix, video_grid_thw=grid, mm_token_type_ids=mm,
                    second_per_grid_ts=torch.tensor([1.0]))
    assert out.logits.shape == (1, ids.shape[1], model.config.text_config.vocab_size)
    assert torch.isfinite(out.logits).all()


def test_tiny_model_dir_caches(tmp_path):
    a = tiny_model_dir(0, cache_dir=tmp_path)
    mtime = (a / "model.safetensors").stat().st_mtime_ns
    b = tiny_model_dir(0, cache_dir=tmp_path)
    assert a == b and (b / "model.safetensors").stat().st_mtime_ns == mtime
    assert [p.name for p in tmp_path.iterdir()] == [a.name]  # no temporary folders left behind


def test_7b_config_matches_public_checkpoint():
    from transformers import Qwen2_5_VLForConditionalGeneration

    cfg = qwen2_5_vl_7b_config()
    t, v = cfg.text_config, cfg.vision_config
    assert (t.hidden_size, t.num_hidden_layers, t.num_attention_heads, t.num_key_value_heads) == (3584, 28, 28, 4)
    assert t.rope_parameters["mrope_section"] == [16, 24, 24] and v.tokens_per_second == 2
    with torch.device("meta"):
        model = Qwen2_5_VLForConditionalGeneration(cfg)
    # Qwen/Qwen2.5-VL-7B-Instruct: 8,292,166,656 parameters (safetensors total)
    assert sum(p.numel() for p in model.parameters()) == 8_292_166_656


def test_add_word_tokens_gives_each_word_one_token_and_changes_nothing_else(tmp_path):
    """`add_word_tokens`: merges appended after the tokenizer's own: each word after a space is one token, other
    text encodes as before, the config's vocab size follows, and a second call adds nothing."""
    import shutil

    from transformers import AutoTokenizer

    from tempbench.models import zoo
    from tempbench.models.qwen.tiny import add_word_tokens
    from tempbench.prompts import render

    src = zoo.PACKAGE_MODELS / "tiny_synthetic"
    folder = tmp_path / "files"
    folder.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "config.json", "chat_template.jinja"):
        shutil.copy2(src / name, folder / name)
    before = AutoTokenizer.from_pretrained(str(folder))
    words = ["yellow", "magenta", "circle"]
    assert all(len(before.tokenize(" " + w)) > 1 for w in words)
    added = add_word_tokens(folder, words)
    assert added[-1] == "Ġcircle" and len(added) == len(set(added))
    after = AutoTokenizer.from_pretrained(str(folder))
    assert len(after) == len(before) + len(added)
    assert json.loads((folder / "config.json").read_text())["text_config"]["vocab_size"] == len(after)
    for w in words:
        assert after.tokenize(" " + w) == ["Ġ" + w]
    for text in (render("tempsamp-r1-plain", query="the red square appears", duration=12.5),
                 "<answer> 12.50 to 13.75 </answer>", "You are a helpful assistant."):
        assert after(text)["input_ids"] == before(text)["input_ids"]
    prompt = render("tempsamp-r1-plain", query="the yellow circle appears", duration=9.0)
    assert after.decode(after(prompt)["input_ids"]) == prompt
    assert len(after(prompt)["input_ids"]) == len(before(prompt)["input_ids"]) - 5 - 3  # " yellow": 6 pieces, " circle": 4
    assert add_word_tokens(folder, words) == []
