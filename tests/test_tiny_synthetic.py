"""`tiny-synthetic`, the embedded default: a trained model shipped as package data with its sha256 pinned in the
zoo. The loading path is tested with stand-in weights; the trained model's own tests run when its weights are
installed (benchmarks/install_tiny_synthetic.py) and skip, saying so, until then."""

from __future__ import annotations

import dataclasses
import re
import shutil

import pytest
from click.testing import CliRunner

from tempbench.cli import main
from tempbench.errors import TempbenchError
from tempbench.io import sha256_file
from tempbench.models import zoo

ENTRY = zoo.get("tiny-synthetic")
SHIPPED = zoo.PACKAGE_MODELS / str(ENTRY.package_dir)
WEIGHTS = SHIPPED / "model.safetensors"
NOT_BUILT = (f"tiny-synthetic's trained weights are not installed ({WEIGHTS} is absent): train them with "
             "benchmarks/train_tiny_synthetic.py on a GPU, then benchmarks/install_tiny_synthetic.py")


def _package(tmp_path, monkeypatch, weights: bytes | None = None, pin: str | None = None):
    """A copy of the package folder (without the shipped weights) that the zoo reads instead."""
    root = tmp_path / "pkg"
    folder = root / str(ENTRY.package_dir)
    folder.mkdir(parents=True)
    for f in SHIPPED.iterdir():
        if f.is_file() and f.name != "model.safetensors":
            shutil.copy2(f, folder / f.name)
    if weights is not None:
        (folder / "model.safetensors").write_bytes(weights)
    monkeypatch.setattr(zoo, "PACKAGE_MODELS", root)
    monkeypatch.setitem(zoo._INDEX, "tiny-synthetic", dataclasses.replace(ENTRY, weights_sha256=pin))
    return folder


def test_entry():
    assert ENTRY.local_builder == "package" and ENTRY.hub_id is None and ENTRY.verified
    assert ENTRY.weights_sha256 == zoo.TINY_SYNTHETIC_SHA256
    # the prompt it was trained with: the paper's CoT prompt (it describes every object, then answers)
    assert ENTRY.video == zoo.TEMPSAMP_VIDEO and ENTRY.prompt == zoo.TINY_SYNTHETIC_PROMPT == "tempsamp-r1-cot"
    assert ENTRY.setting == {"synthetic": "fine-tuned", "synthetic-hard": "fine-tuned"}
    assert zoo.get("tiny").alias == "tiny-qwen2.5-vl" and zoo.get("tiny-qwen2.5-vl").local_builder == "tiny"
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
                 "generation_config.json", "preprocessor_config.json"):
        assert (SHIPPED / name).is_file(), name


def test_absent_weights_are_one_clear_line(tmp_path, monkeypatch):
    _package(tmp_path, monkeypatch)
    res = CliRunner().invoke(main, ["run", "--model", "tiny-synthetic", "--task", "synthetic", "--out",
                                    str(tmp_path / "run")])
    assert res.exit_code == 2 and "Traceback" not in res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: tiny-synthetic: its trained weights are not in this")
    assert "benchmarks/train_tiny_synthetic.py" in lines[1] and "install_tiny_synthetic.py" in lines[1]


def test_weights_must_match_the_pin(tmp_path, monkeypatch):
    _package(tmp_path, monkeypatch, weights=b"not the weights", pin="0" * 64)
    with pytest.raises(TempbenchError, match="has sha256 .* the zoo pins 0000"):
        zoo.resolve_local(zoo.get("tiny-synthetic"))
    _package(tmp_path / "b", monkeypatch, weights=b"not the weights", pin=None)
    with pytest.raises(TempbenchError, match="no sha256 is pinned"):
        zoo.resolve_local(zoo.get("tiny-synthetic"))


@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    """The package folder with seeded random weights of the shipped architecture, pinned: the loading path."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tempbench.models.qwen.tiny import init_weights

    made = init_weights(SHIPPED, seed=0, out_dir=tmp_path / "made")
    return _package(tmp_path, monkeypatch, weights=(made / "model.safetensors").read_bytes(),
                    pin=sha256_file(made / "model.safetensors"))


def test_loads_offline_from_the_package_folder(stand_in, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from tempbench.models import load_model
    from tempbench.models.base import GenerationSettings

    m = load_model("tiny-synthetic", generation=GenerationSettings(max_new_tokens=2))
    ident = m.identity()
    assert ident.info["zoo"]["alias"] == "tiny-synthetic" and ident.id == str(stand_in)
    assert ident.model_type == "qwen2_5_vl" and m.video_settings.total_pixels == zoo.TEMPSAMP_VIDEO["total_pixels"]
    n = sum(p.numel() for p in m.model.parameters())
    assert 4.3e6 < n < 4.5e6


def test_demo_prints_the_model_beside_the_baselines(stand_in, tb_home, synthetic_split, monkeypatch):
    monkeypatch.chdir(tb_home.parent)  # run folders under ./runs
    (tb_home / "synthetic").mkdir(parents=True)
    (tb_home / "synthetic" / "test").symlink_to(synthetic_split, target_is_directory=True)
    res = CliRunner().invoke(main, ["demo", "--no-progress"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    header = next(line for line in lines if "metric" in line)
    assert [c.strip() for c in header.split("┃")[1:-1]] == ["metric", "tiny-synthetic", "baseline:center",
                                                            "baseline:prior"]
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
            for line in lines if line.startswith("│")}
    assert set(rows) == {"R1@0.3", "R1@0.5", "R1@0.7", "mIoU", "failures"}
    assert all(re.fullmatch(r"\d+\.\d \[\d+\.\d, \d+\.\d\]", c) for c in rows["mIoU"])  # value [95% CI]
    assert rows["failures"][1:] == ["0.0%", "0.0%"]  # the baselines always answer
    table = [x for x in lines if x[:1] in "┏┃┡│└"]
    assert "synthetic test · n=16" in res.output and max(len(x) for x in table) <= 80  # fits a terminal


# ---------------------------------------------------------------------------------------------------------------
# the trained model itself (runs when its weights are installed)

needs_weights = pytest.mark.skipif(not WEIGHTS.is_file(), reason=NOT_BUILT)


@needs_weights
def test_shipped_weights(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    assert WEIGHTS.stat().st_size <= 10 * 1000 * 1000 and sha256_file(WEIGHTS) == zoo.TINY_SYNTHETIC_SHA256
    state = load_file(WEIGHTS)
    assert all(v.dtype == torch.bfloat16 for v in state.values())
    assert 4.3e6 < sum(v.numel() for v in state.values()) < 4.5e6
    from tempbench.models import load_model

    # what the loader made of the file, saved again: every tensor of the file, none left at an initial value
    model = load_model("tiny-synthetic").model
    model.save_pretrained(tmp_path / "again")
    again = load_file(tmp_path / "again" / "model.safetensors")
    assert set(again) == set(state)
    for name, value in state.items():
        assert torch.equal(again[name].to(torch.bfloat16), value), name


@needs_weights
@pytest.mark.slow
@pytest.mark.parametrize("task, target", [("synthetic", 75.0), ("synthetic-hard", 60.0)])
def test_trained_model_grounds_the_heldout_split(task, target, tmp_path, monkeypatch):
    """On a CPU with the shipped bf16 weights (float32 compute): issue 14's bars, 75 on `synthetic` and 60 on
    `synthetic-hard` (measured: 85.94 and 75.73, docs/training.md). On `synthetic-hard` its answers depend on the
    query: nearly all land on the object the query names."""
    import sys
    from pathlib import Path

    monkeypatch.setenv("TEMPBENCH_HOME", str(tmp_path / "home"))
    from tempbench.api import run

    result = run("tiny-synthetic", task, "heldout", out_dir=tmp_path / "run", progress=False).result
    assert result.n == 256 and result.failure_rate <= 5.0
    assert result.metrics["mIoU"] >= target, result.metrics
    if task == "synthetic-hard":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
        from reasoning_accuracy import analyse

        q = analyse(tmp_path / "run")["pct_of_queries"]
        assert q["answer_on_target"] >= 85 and q["count_right"] >= 90, q  # a random pick: 41.7 %
