"""The fast vision tower (grouped block attention, the patch embedding as a matmul) computes the same features as
transformers' modules."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tempbench.models.qwen import vision_attention  # noqa: E402
from tempbench.models.qwen.vision_attention import install_fast_vision_tower  # noqa: E402


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
        n = install_fast_vision_tower(model)
        grouped = _features(model, pix, grid)
    assert n == {"attention": model.config.vision_config.depth, "patch_embed": 1, "mlp": 0}  # 256 wide: aligned
    n = n["attention"]
    assert len(calls) == n  # every block went through the grouped path
    assert grouped.shape == stock.shape
    assert torch.allclose(grouped, stock, atol=1e-5, rtol=1e-5)
    # gradients flow through it (the trainer may use it)
    pix.requires_grad_(True)
    _features(model, pix, grid).sum().backward()
    assert pix.grad is not None and torch.isfinite(pix.grad).all()


def test_patch_embed_matmul_equals_conv3d(tiny_model):
    from transformers import Qwen2_5_VLForConditionalGeneration

    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny_model, attn_implementation="sdpa").eval()
    embed = model.model.visual.patch_embed
    torch.manual_seed(1)
    pix = torch.randn(37, 3 * 2 * 14 * 14)
    with torch.no_grad():
        conv = embed(pix)
        install_fast_vision_tower(model)
        assert "forward" in embed.__dict__
        matmul = embed(pix)
        # with a bias too (Qwen3-VL's patch embedding has one)
        embed.proj.bias = torch.nn.Parameter(torch.randn(embed.proj.out_channels))
        with_bias = embed(pix)
        vision_attention.uninstall_fast_vision_tower(model)
        assert "forward" not in embed.__dict__
        conv_bias = embed(pix)
    torch.testing.assert_close(matmul, conv, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(with_bias, conv_bias, atol=1e-5, rtol=1e-5)


def test_blocks_grouped_once_per_forward(tiny_model, monkeypatch):
    """Every layer of a forward pass gets the same cu_seqlens tensor: its blocks are grouped once (one GPU sync and
    one set of indices per distinct tensor, not per layer); a uniform block length needs no gather."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny_model, attn_implementation="sdpa").eval()
    install_fast_vision_tower(model)
    uniques = []
    original = torch.unique

    def counting(x, *args, **kwargs):
        uniques.append(x.shape)
        return original(x, *args, **kwargs)

    monkeypatch.setattr(torch, "unique", counting)
    grid = torch.tensor([[2, 8, 8]])  # windows of 8x8 patches: every block (window and frame) has one length
    pix = torch.randn(int(grid.prod()), 3 * 2 * 14 * 14)
    with torch.no_grad():
        _features(model, pix, grid)
    assert 1 <= len(uniques) <= 2  # window blocks and full-attention blocks: at most one grouping each
    uniques.clear()
    cu = torch.tensor([0, 4, 8, 11])
    groups = vision_attention._blocks_by_length(cu, torch.device("cpu"))
    for _ in range(5):  # the next layers reuse it
        assert vision_attention._blocks_by_length(cu, torch.device("cpu")) is groups
    assert len(uniques) == 1
    assert [(ell, m) for ell, m, _ in groups] == [(3, 1), (4, 2)]
    assert groups[1][2].tolist() == [0, 1, 2, 3, 4, 5, 6, 7]


class GatedMLP(torch.nn.Module):
    """A gated MLP shaped like the Qwen VL vision towers' (gate, up, down, SiLU)."""

    def __init__(self, width: int, inner: int):
        super().__init__()
        self.gate_proj, self.up_proj = torch.nn.Linear(width, inner), torch.nn.Linear(width, inner)
        self.down_proj = torch.nn.Linear(inner, width)
        self.act_fn = torch.nn.SiLU()

    def forward(self, x):
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


def test_padded_mlp_equals_the_unaligned_one():
    """A gated MLP 30 units wide (not a multiple of 64, like Qwen2.5-VL-7B's 3,420) computed with zero-padded
    weights gives the same output and gradients, and its parameters keep their shapes."""
    import types

    torch.manual_seed(2)
    mlp = GatedMLP(16, 30)
    x = torch.randn(7, 16, requires_grad=True)
    ref = mlp(x)
    (g_ref,) = torch.autograd.grad(ref.sum(), x)
    assert vision_attention._is_unaligned_gated_mlp(mlp)
    mlp.forward = types.MethodType(vision_attention._padded_mlp_forward, mlp)
    got = mlp(x)
    (g_got,) = torch.autograd.grad(got.sum(), x)
    torch.testing.assert_close(got, ref, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(g_got, g_ref, atol=1e-6, rtol=1e-6)
    assert mlp.gate_proj.weight.shape == (30, 16) and mlp.down_proj.weight.shape == (16, 30)


def test_partitioned_weights_take_the_stock_forward():
    """Under DeepSpeed ZeRO-3 a module's weight is an empty placeholder until that module's own forward gathers it:
    the patched patch embedding and MLP then call transformers' forward, which runs the submodules (and their
    hooks)."""
    import types

    mlp = GatedMLP(4, 6)
    calls = []
    mlp.gate_proj.register_forward_pre_hook(lambda module, args: calls.append("gathered"))
    mlp.forward = types.MethodType(vision_attention._padded_mlp_forward, mlp)
    x = torch.randn(3, 4)
    mlp(x)
    assert calls == []  # materialised weights: the padded path, which calls no submodule
    full = mlp.gate_proj.weight.data
    mlp.gate_proj.weight.data = torch.empty(0)  # what ZeRO-3 leaves outside the module's own forward
    with pytest.raises(RuntimeError):  # the stock forward runs gate_proj (here, with nothing gathering it)
        mlp(x)
    assert calls == ["gathered"]
    mlp.gate_proj.weight.data = full
