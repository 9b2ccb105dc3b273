"""The transformers adapter on the tiny float32 Qwen2.5-VL model: batching, video tokens, M-RoPE timing."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tempbench.errors import TempbenchError  # noqa: E402
from tempbench.models.base import GenerationSettings, ModelInput  # noqa: E402
from tempbench.models.checkpoint import hub_revision, resolve_model_path, weights_fingerprint  # noqa: E402
from tempbench.models.hf import load_hf_model  # noqa: E402
from tempbench.models.qwen.adapter import HFQwenVL  # noqa: E402
from tempbench.models.qwen.tiny import build_tiny_qwen2_5_vl  # noqa: E402
from tempbench.video import Clip, VideoSettings  # noqa: E402

SMALL = VideoSettings(min_pixels=28 * 28, max_pixels=56 * 84, min_frames=2)


def make_clip(t=8, h=56, w=84, fps=2.0, seed=0) -> Clip:
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (t, h, w, 3), dtype=np.uint8)
    return Clip(frames=frames, timestamps=np.arange(t) / fps, fps=fps, duration=t / fps, source_fps=30.0,
                path=f"memory-{seed}")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_qwen2_5_vl(tmp_path_factory.mktemp("tiny-hf") / "m", seed=0)


@pytest.fixture(scope="module")
def adapter(tiny):
    a = HFQwenVL(str(tiny), generation=GenerationSettings(max_new_tokens=10), video_settings=SMALL)
    yield a
    a.close()


def test_batched_greedy_equals_batch_of_one(adapter):
    batch = [ModelInput(make_clip(seed=i), f"Where does event {i} happen?", qid=i) for i in range(3)]
    batch.append(ModelInput(make_clip(t=12, h=84, w=56, fps=1.0, seed=7), "short", qid=3))  # other length/shape
    batch.append(ModelInput(None, "a text-only question, longer than the others to force padding", qid=4))
    together = adapter.generate(batch)
    alone = [adapter.generate([x])[0] for x in batch]
    assert len(together) == len(batch) and all(isinstance(s, str) for s in together)
    assert together == alone
    assert len(set(together)) > 1  # the inputs matter


def test_video_pad_count_matches_grid_and_left_padding(adapter):
    batch = [ModelInput(make_clip(t=8), "a", 0), ModelInput(make_clip(t=4, h=28, w=28), "a much longer prompt", 1)]
    inputs = adapter.build_inputs(batch)
    ids, mask, mm = inputs["input_ids"], inputs["attention_mask"], inputs["mm_token_type_ids"]
    grids = inputs["video_grid_thw"]
    # 8 frames 56x84 -> grid (4, 4, 6) -> 24 tokens; 4 frames 28x28 -> (2, 2, 2) -> 2 tokens
    assert grids.tolist() == [[4, 4, 6], [2, 2, 2]]
    assert inputs["pixel_values_videos"].shape == (4 * 4 * 6 + 2 * 2 * 2, 3 * 2 * 14 * 14)
    for row, grid in enumerate(grids):
        n_video = int((ids[row] == adapter.video_token_id).sum())
        assert n_video == int(grid.prod()) // 4
        assert int((mm[row] == 2).sum()) == n_video and int((mm[row] == 1).sum()) == 0
    # left padding: masks are 0...0 1...1 and padded positions hold the pad id
    for row in range(2):
        m = mask[row].tolist()
        assert m == sorted(m) and m[-1] == 1
        assert (ids[row][mask[row] == 0] == adapter.pad_token_id).all()
    assert mask[0].sum() != mask[1].sum()
    assert inputs["second_per_grid_ts"].tolist() == [1.0, 1.0]  # temporal_patch_size 2 / sampled fps 2


def test_chat_has_single_user_turn_with_video_first(adapter):
    text = adapter.chat_text("Find it.", with_video=True)
    assert text.count("<|im_start|>user\n") == 1 and text.count("<|video_pad|>") == 1
    assert text.index("<|video_pad|>") < text.index("Find it.")
    assert text.endswith("<|im_start|>assistant\n")


def _spy_rope(adapter, monkeypatch):
    calls = []
    inner = adapter.model.model
    original = inner.get_rope_index

    def spy(*args, **kwargs):
        out = original(*args, **kwargs)
        calls.append({"second_per_grid_ts": kwargs.get("second_per_grid_ts"), "position_ids": out[0]})
        return out

    monkeypatch.setattr(inner, "get_rope_index", spy)
    return calls


@pytest.mark.parametrize("fps", [1.0, 2.0, 4.0])
def test_second_per_grid_ts_reaches_rope_index(adapter, monkeypatch, fps):
    calls = _spy_rope(adapter, monkeypatch)
    clip = make_clip(t=8, h=28, w=28, fps=fps)
    adapter.generate([ModelInput(clip, "when?", 0)])
    assert calls, "get_rope_index was not called: 3-D positions were not computed"
    sp = calls[0]["second_per_grid_ts"]
    assert sp is not None and torch.allclose(torch.as_tensor(sp, dtype=torch.float32), torch.tensor([2.0 / fps]))
    # temporal ids of the 4 temporal groups step by tokens_per_second * 2 / fps
    pos = calls[0]["position_ids"]  # (3, batch, seq)
    ids = adapter.build_inputs([ModelInput(clip, "when?", 0)])["input_ids"][0]
    t_ids = pos[0, 0][ids == adapter.video_token_id]  # 1 token per temporal group (2x2 patches merged)
    step = adapter.model.config.vision_config.tokens_per_second * 2.0 / fps
    assert (t_ids - t_ids[0]).tolist() == [int(k * step) for k in range(4)]


def test_position_ids_change_with_fps(adapter, monkeypatch):
    calls = _spy_rope(adapter, monkeypatch)
    for fps in (1.0, 4.0):
        adapter.generate([ModelInput(make_clip(t=8, h=28, w=28, fps=fps), "when?", 0)])
    assert not torch.equal(calls[0]["position_ids"], calls[1]["position_ids"])


def test_greedy_ignores_checkpoint_sampling_defaults(tiny, tmp_path):
    import json
    import shutil

    folder = tmp_path / "sampling-defaults"
    shutil.copytree(tiny, folder)
    gen = json.loads((folder / "generation_config.json").read_text())
    gen.update(do_sample=True, temperature=5.0, top_p=0.9, top_k=50, repetition_penalty=1.3)
    (folder / "generation_config.json").write_text(json.dumps(gen))
    a = HFQwenVL(str(folder), generation=GenerationSettings(max_new_tokens=8), video_settings=SMALL)
    b = HFQwenVL(str(tiny), generation=GenerationSettings(max_new_tokens=8), video_settings=SMALL)
    batch = [ModelInput(make_clip(seed=s), "q", s) for s in range(2)]
    assert a.generate(batch) == a.generate(batch) == b.generate(batch)


def test_sampling_is_seeded(adapter, tiny):
    s = HFQwenVL(str(tiny), generation=GenerationSettings(max_new_tokens=8, do_sample=True, temperature=1.5, seed=3),
                 video_settings=SMALL)
    batch = [ModelInput(make_clip(seed=1), "q", 0)]
    assert s.generate(batch) == s.generate(batch)
    assert s.generation.to_dict()["temperature"] == 1.5


def test_identity_records_provenance(adapter, tiny):
    ident = adapter.identity()
    assert ident.backend == "transformers" and ident.model_type == "qwen2_5_vl"
    assert ident.dtype == "float32" and ident.attn_implementation == "sdpa"
    assert adapter.generation.to_dict() == {"max_new_tokens": 10, "do_sample": False, "seed": 0,
                                            "repetition_penalty": 1.0}
    assert ident.weights == weights_fingerprint(tiny) and ident.weights.startswith("sha256:")
    assert ident.revision is None  # not a hub snapshot
    assert ident.options["rope_index"] == "reference" and len(ident.options["chat_template_sha256"]) == 64
    assert adapter.video_settings.max_pixels == 56 * 84


def test_revision_is_commit_hash_in_hub_cache(tiny, tmp_path):
    import shutil

    sha = "0123456789abcdef0123456789abcdef01234567"
    snap = tmp_path / "models--o--n" / "snapshots" / sha
    shutil.copytree(tiny, snap)
    assert hub_revision(snap) == sha and hub_revision(tiny) is None
    # and the content fingerprint changes with the weights
    other = tmp_path / "other"
    shutil.copytree(tiny, other)
    data = bytearray((other / "model.safetensors").read_bytes())
    data[-1] ^= 1
    (other / "model.safetensors").write_bytes(bytes(data))
    assert weights_fingerprint(other) != weights_fingerprint(tiny)


def test_bad_model_references_are_clear(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TempbenchError, match="not a model folder"):
        resolve_model_path(str(tmp_path))
    with pytest.raises(TempbenchError, match="neither a local folder"):
        resolve_model_path("./does/not/exist")
    with pytest.raises(TempbenchError, match="not available locally") as e:
        resolve_model_path("nobody-xyz/not-a-model-xyz")
    assert "download" in e.value.hint


def test_load_hf_model_picks_qwen_path(tiny):
    m = load_hf_model(str(tiny), video_settings=SMALL, generation=GenerationSettings(max_new_tokens=2))
    assert isinstance(m, HFQwenVL)
    m.close()
    m.close()


def test_from_loaded_matches_folder_loading(adapter, tiny):
    from transformers import AutoTokenizer, Qwen2_5_VLForConditionalGeneration

    net = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny).eval()
    m = HFQwenVL.from_loaded(net, AutoTokenizer.from_pretrained(tiny), name="policy",
                             generation=GenerationSettings(max_new_tokens=10), video_settings=SMALL)
    batch = [ModelInput(make_clip(seed=5), "find", 0), ModelInput(make_clip(t=6, fps=1.0, seed=6), "it", 1)]
    assert m.generate(batch) == adapter.generate(batch)
    assert m.identity().info["name"] == "policy" and m.identity().options["rope_index"] == "reference"
    assert m.identity().weights is None  # an in-memory policy has no folder to fingerprint
