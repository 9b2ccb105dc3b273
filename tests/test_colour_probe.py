"""benchmarks/colour_probe.py: token labels from made-up patches, the probe on separable and on random features,
and one run on the shipped model."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("colour_probe", REPO / "benchmarks" / "colour_probe.py")
CP = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(CP)
MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
COLOURS = np.array([[225, 30, 30], [30, 200, 40], [35, 70, 230]], dtype=float)


def _patches(rgb_per_token: list[tuple[float, float, float]]) -> np.ndarray:
    rows = []
    for rgb in rgb_per_token:
        x = (np.array(rgb)[:, None, None, None] / 255.0 - np.array(MEAN)[:, None, None, None]) / np.array(STD)[:, None, None, None]
        rows += [np.broadcast_to(x, (3, 2, 14, 14)).reshape(-1)] * 4
    return np.stack(rows)


def test_token_labels():
    labels = CP.token_labels(_patches([(120, 120, 120), (30, 200, 40), (40, 60, 220)]), MEAN, STD, COLOURS)
    assert labels.tolist() == [-1, 1, 2]


def test_probe_separates_what_is_separable_and_not_noise():
    pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 600)
    train = np.arange(600) < 420
    x_good = np.eye(3)[y] * 3 + rng.normal(size=(600, 3))
    assert CP.fit_probe(np.concatenate([x_good, rng.normal(size=(600, 5))], 1), y, train, 3) > 90
    assert CP.fit_probe(rng.normal(size=(600, 8)), y, train, 3) < 50


def test_runs_on_the_shipped_model(tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("av")
    monkeypatch.setenv("TEMPBENCH_HOME", str(tmp_path / "home"))
    import json

    assert CP.main(["tiny-synthetic", "--videos", "4", "--out", str(tmp_path / "p.json")]) == 0
    res = json.loads((tmp_path / "p.json").read_text())
    assert res["tokens_with_an_object"] > res["held_out_tokens"] > 0 and 0 <= res["colour_probe_accuracy_pct"] <= 100
    assert "held-out object tokens" in capsys.readouterr().out
    assert CP.main([str(tmp_path / "no-model")]) == 2
