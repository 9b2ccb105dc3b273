"""The generic transformers adapter on tiny LLaVA-OneVision and GLM-4.1V models built locally (CPU, no torchvision):
the checkpoint's own processor around torch-only video processors, true frame metadata, time conventions,
`--time-hint`, batching; and the torch-only torchvision kernels."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tempbench.errors import TempbenchError  # noqa: E402
from tempbench.models.base import GenerationSettings, ModelInput  # noqa: E402
from tempbench.models.hf import HFGenericVLM, load_hf_model  # noqa: E402
from tempbench.models.hf_video import (  # noqa: E402
    TORCH_ONLY,
    InterpolationMode,
    _import_class,
    normalize,
    resize,
    time_convention,
    torch_only,
    video_metadata,
)
from tempbench.models.tiny_vlm import build_tiny_vlm  # noqa: E402
from tempbench.video import Clip, VideoSettings  # noqa: E402

FAMILIES = ("llava_onevision", "glm4v")


def make_clip(t=6, h=48, w=64, src_fps=30.0, step=15, seed=0) -> Clip:
    rng = np.random.default_rng(seed)
    idx = np.arange(t) * step
    return Clip(frames=rng.integers(0, 256, (t, h, w, 3), dtype=np.uint8), timestamps=idx / src_fps, fps=src_fps / step,
                duration=(idx[-1] + 1) / src_fps, source_fps=src_fps, path=f"m{seed}", indices=idx,
                n_source_frames=int(idx[-1]) + 1)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-vlm")
    return {fam: build_tiny_vlm(root / fam, fam) for fam in FAMILIES}


@pytest.fixture(scope="module")
def adapters(folders):
    return {fam: load_hf_model(str(p), generation=GenerationSettings(max_new_tokens=6)) for fam, p in folders.items()}


@pytest.mark.parametrize("family, convention", [("llava_onevision", "frame-index-only"),
                                                ("glm4v", "text-timestamps")])
def test_generic_adapter_runs_the_family_with_torch_only_processors(adapters, family, convention):
    a = adapters[family]
    assert isinstance(a, HFGenericVLM) and a.processor_kind == "torch-only"
    assert type(a.processor.video_processor).__name__.startswith("TorchOnly")
    ident = a.identity()
    assert ident.model_type == family and ident.info["time_convention"] == convention
    assert ident.info["processor"] == "torch-only" and ident.options["time_hint"] is False
    batch = [ModelInput(make_clip(seed=1), "when?", 0),
             ModelInput(make_clip(t=4, step=20, seed=2), "a much longer question about when it happens", 1),
             ModelInput(None, "text only", 2)]
    together = a.generate(batch)
    assert together == [a.generate([x])[0] for x in batch] and len(set(together)) > 1


def test_glm4v_writes_the_true_seconds_of_each_frame_group(adapters):
    a = adapters["glm4v"]
    clip = make_clip(t=6, src_fps=25.0, step=50)  # frames at 0, 2, 4, ... 10 s: groups start at 0, 4, 8 s
    ids = a.build_inputs([ModelInput(clip, "x", 0)])["input_ids"][0]
    text = a.processor.tokenizer.decode(ids)
    assert "<|end_of_image|>0<|begin_of_image|>" in text and "<|end_of_image|>4<|begin_of_image|>" in text
    assert text.count("<|end_of_image|>") == 3 and "<|end_of_image|>8<|end_of_video|>" in text
    meta = video_metadata(clip)
    assert meta.fps == 25.0 and meta.frames_indices == clip.indices.tolist() and meta.total_num_frames == 251


def test_metadata_lost_is_refused(adapters):
    clip = make_clip()
    bare = Clip(frames=clip.frames, timestamps=clip.timestamps, fps=clip.fps, duration=clip.duration,
                source_fps=clip.source_fps, path="bare")
    with pytest.raises(TempbenchError, match="no sampled frame indices"):
        adapters["glm4v"].build_inputs([ModelInput(bare, "x", 0)])


def test_time_hint_only_where_the_model_sees_no_times(folders):
    hint = load_hf_model(str(folders["llava_onevision"]), time_hint=True, generation=GenerationSettings(max_new_tokens=2))
    clip = make_clip(t=4, step=15)
    text = hint.processor.tokenizer.decode(hint.build_inputs([ModelInput(clip, "when?", 0)])["input_ids"][0])
    assert "Frame at 0.0 s\nFrame at 0.5 s\nFrame at 1.0 s\nFrame at 1.5 s\nwhen?" in text
    ident = hint.identity()
    assert ident.options["time_hint"] is True and ident.info["time_convention"] == "text-timestamps (hint)"
    glm = load_hf_model(str(folders["glm4v"]), time_hint=True, generation=GenerationSettings(max_new_tokens=2))
    assert "Frame at" not in glm.processor.tokenizer.decode(glm.build_inputs([ModelInput(clip, "q", 0)])["input_ids"][0])
    assert glm.identity().info["time_convention"] == "text-timestamps"
    assert time_convention("internvl") == "frame-index-only" and time_convention("new_family") == "unknown"


def test_run_end_to_end_with_a_generic_family(tb_home, synthetic_split, folders, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from tempbench.cli import main

    (tb_home / "synthetic").mkdir(parents=True)
    (tb_home / "synthetic" / "test").symlink_to(synthetic_split, target_is_directory=True)
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["run", "--model", str(folders["glm4v"]), "--task", "synthetic", "--out", str(out),
                                    "--gen", "max_new_tokens=4", "--no-progress", "--limit", "4",
                                    "--video", "min_pixels=784,max_pixels=3136,total_pixels=50176"])
    assert res.exit_code == 0, res.output
    mi = json.loads((out / "run.json").read_text())["model"]
    assert mi["backend"] == "transformers-generic" and mi["model_type"] == "glm4v"
    assert mi["info"]["time_convention"] == "text-timestamps" and mi["weights"].startswith("sha256:")


# ------------------------------------------------------------------------------------------------ kernels


def test_resize_follows_torchvision_v2_dtype_rules():
    import torch.nn.functional as F

    x = torch.randint(0, 256, (2, 3, 20, 30), dtype=torch.uint8)
    cubic = resize(x, [11, 17], InterpolationMode.BICUBIC)  # CPU uint8: the native kernel
    assert cubic.dtype == torch.uint8
    assert torch.equal(cubic, F.interpolate(x, size=[11, 17], mode="bicubic", align_corners=False, antialias=True))
    f = x.float()
    assert torch.equal(resize(f, [11, 17], InterpolationMode.BILINEAR),
                       F.interpolate(f, size=[11, 17], mode="bilinear", align_corners=False, antialias=True))
    near = resize(x, [40, 60], InterpolationMode.NEAREST)
    assert near.dtype == torch.uint8 and torch.equal(near[..., ::2, ::2], x)
    assert resize(x, [20, 30], InterpolationMode.BICUBIC) is x
    v = torch.randint(0, 256, (1, 4, 3, 20, 30), dtype=torch.uint8)  # (B, T, C, H, W) keeps its leading dims
    assert resize(v, [10, 15], InterpolationMode.BICUBIC).shape == (1, 4, 3, 10, 15)
    with pytest.raises(TempbenchError, match="lanczos"):
        resize(x, [5, 5], InterpolationMode.LANCZOS)


def test_normalize_is_per_channel():
    x = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
    mean, std = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 4.0, 8.0])
    assert torch.equal(normalize(x, mean, std), (x - mean.view(-1, 1, 1)) / std.view(-1, 1, 1))
    assert torch.equal(x, torch.arange(24, dtype=torch.float32).reshape(2, 3, 2, 2))  # not in place


def test_torch_only_qwen3_video_processor_equals_tempbench_port():
    """transformers' own Qwen3-VL video processor code (torch-only kernels) = `process_video3` in its
    `resize_mode="transformers"` pipeline, bit for bit (the GPU check compares both with torchvision)."""
    from tempbench.models.qwen.processor3 import process_video3

    cls = torch_only(_import_class(*TORCH_ONLY["qwen3_vl"].video))
    settings = VideoSettings(min_pixels=4096, total_pixels=24576 * 32 * 32, max_pixels=768 * 32 * 32,
                             resize_mode="transformers", sampling="transformers")
    proc = cls(size={"shortest_edge": settings.min_pixels, "longest_edge": settings.total_pixels},
               image_mean=[0.5] * 3, image_std=[0.5] * 3, do_sample_frames=False)
    rng = np.random.default_rng(0)
    for t, h, w in [(4, 96, 128), (5, 240, 320), (7, 360, 640)]:
        idx = np.arange(t) * 3
        clip = Clip(frames=rng.integers(0, 256, (t, h, w, 3), dtype=np.uint8), timestamps=idx / 29.97, fps=10.0,
                    duration=t * 0.1, source_fps=29.97, path="x", indices=idx, n_source_frames=int(idx[-1]) + 1)
        stock = proc(videos=[clip.frames], video_metadata=[video_metadata(clip)], return_tensors="pt",
                     cap_pixels_per_frame=False)
        ours = process_video3(clip, settings)
        assert stock["video_grid_thw"].tolist() == ours["video_grid_thw"].tolist()
        assert torch.equal(stock["pixel_values_videos"], ours["pixel_values_videos"])


def test_hf_options_are_checked_in_one_line(folders):
    from tempbench.models import load_model
    from tempbench.models.hf import check_hf_options

    with pytest.raises(TempbenchError, match="dtype='float33' is unknown"):
        check_hf_options({"dtype": "float33"})
    with pytest.raises(TempbenchError, match="must be true or false"):
        check_hf_options({"trust_remote_code": "yes"})
    with pytest.raises(TempbenchError, match="attn_implementation"):
        load_model(str(folders["glm4v"]), attn_implementation="flash")
    with pytest.raises(TempbenchError, match="not a device"):
        check_hf_options({"device": "gpu0"})
    check_hf_options({"dtype": "bfloat16", "device": "cuda:1", "trust_remote_code": False})
