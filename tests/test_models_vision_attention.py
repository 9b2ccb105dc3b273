"""The grouped vision attention computes the same features as transformers' per-block loop."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tempbench.models.qwen import vision_attention  # noqa: E402
from tempbench.models.qwen.vision_attention import install_grouped_vision_attention  # noqa: E402


def _features(model, pix, grid):
    out = model.model.get_video_features(pix, grid)
    out = getattr(out, "pooler_output", out)
    return torch.cat(list(out)) if isinstance(out, (list, tuple)) else out


def test_grouped_attention_matches_stock_loop(tiny_model, monkeypatch):
    from transformers import Qwen2_5_VLForConditionalGeneration

    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny_model, attn_implementation="sdpa").eval()
    # two videos of different sizes: windows of several lengths and full-attention blocks of two lengths
    grid = torch.tensor([[4, 16, 20], [2, 8, 12]])
    torch.manual_seed(0)
    pix = torch.randn(int(grid.prod(1).sum()), 3 * 2 * 14 * 14)
    with torch.no_grad():
        stock = _features(model, pix, grid)
        calls = []
        original = vision_attention._grouped_block_attention

        def counting(self, *args, **kwargs):
            calls.append(1)
            return original(self, *args, **kwargs)

        monkeypatch.setattr(vision_attention, "_grouped_block_attention", counting)
        n = install_grouped_vision_attention(model)
        grouped = _features(model, pix, grid)
    assert n == model.config.vision_config.depth
    assert len(calls) == n  # every block went through the grouped path
    assert grouped.shape == stock.shape
    assert torch.allclose(grouped, stock, atol=1e-5, rtol=1e-5)
    # gradients flow through it (the trainer may use it)
    pix.requires_grad_(True)
    _features(model, pix, grid).sum().backward()
    assert pix.grad is not None and torch.isfinite(pix.grad).all()
