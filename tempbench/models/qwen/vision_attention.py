"""A faster vision tower for the Qwen VL families without flash-attn: grouped block attention, the patch embedding
as one matmul, an aligned MLP width and SDPA kernels that build no per-shape plan. Each computes the same function
as transformers' modules (tested to rounding); parameters are never changed.

1. **Block attention.** The vision tower attends within blocks given by `cu_seqlens` (Qwen2.5-VL: 112-pixel windows
   in most layers, whole frame groups in `fullatt_block_indexes`; Qwen2-VL / Qwen3-VL / Qwen3.5: frame groups).
   Without flash-attn, transformers runs one `scaled_dot_product_attention` call per block in a Python loop:
   thousands of tiny kernels per video (measured on an H100: 0.58 s of vision tower per 30-s video at 2 fps, ~20x
   off its FLOP bound). Blocks of equal length need no mask and no padding, so the blocks are grouped by length and
   ONE batched SDPA call runs per distinct length (a handful per layer). The grouping is computed once per
   `cu_seqlens` tensor (every layer of a forward pass gets the same one) and kept on it, so the layers after the
   first neither synchronise with the GPU nor rebuild their indices.
2. **Patch embedding.** transformers embeds patches with a `Conv3d` whose stride equals its kernel over inputs that
   are exactly one kernel each: that is a matrix product of the flattened patches (C x T x P x P values, in the
   weight's order) with the flattened weight. cuDNN's 3-D convolution is slow on such shapes; the product is one
   GEMM.
3. **MLP width.** Qwen2.5-VL-7B's vision MLP is 3,420 wide, not a multiple of 8: its GEMMs cannot use the
   16-byte-aligned Hopper kernels and fall back to slow ones (measured on an H200: 633 of the tower's 1,452 ms of
   kernels). The gated MLP is computed with its weights zero-padded to a multiple of 64 at each call (a copy of a
   few MB per layer; the parameters themselves are untouched, so training and saving see the model as it is): the
   padded units give act(0) * 0 = 0 and add nothing. Where a weight is partitioned away (DeepSpeed ZeRO-3, which
   gathers it only when its own module runs), the patched modules run transformers' forward instead.
4. **Attention kernel.** On a GPU the block attention asks SDPA for flash (then memory-efficient) attention, not
   cuDNN's, which builds an execution plan for every new shape, and every batch of videos brings new block counts.
"""

from __future__ import annotations

import sys
import types

_BLOCKS = "_tempbench_blocks"  # attribute of a cu_seqlens tensor: its blocks grouped by length


def _blocks_by_length(cu_seqlens, device) -> list[tuple[int, int, object]]:
    """[(block length, number of blocks, token indices)] of `cu_seqlens`, computed once per tensor."""
    import torch

    cached = getattr(cu_seqlens, _BLOCKS, None)
    if cached is not None and cached[0] == device:
        return cached[1]
    cu = cu_seqlens.to(device)
    lengths = cu[1:] - cu[:-1]
    starts = cu[:-1]
    groups = []
    for ell in torch.unique(lengths).tolist():
        if ell == 0:
            continue
        idx = (lengths == ell).nonzero().squeeze(1)
        tokens = (starts[idx][:, None] + torch.arange(ell, device=device)[None, :]).reshape(-1)
        groups.append((int(ell), int(idx.numel()), tokens))
    try:
        setattr(cu_seqlens, _BLOCKS, (device, groups))
    except (AttributeError, RuntimeError):  # pragma: no cover - a tensor subclass without a __dict__
        pass
    return groups


def _grouped_block_attention(self, hidden_states, cu_seqlens, position_embeddings=None, max_seqlen=None, **kwargs):

    rotary = sys.modules[type(self).__module__].apply_rotary_pos_emb_vision
    length = hidden_states.shape[0]
    q, k, v = self.qkv(hidden_states).reshape(length, 3, self.num_heads, -1).permute(1, 0, 2, 3).unbind(0)
    cos, sin = position_embeddings
    q, k = rotary(q, k, cos, sin)
    head_dim = q.shape[-1]
    scale = getattr(self, "scaling", head_dim**-0.5)
    with sdpa_without_plans(q.device):
        out = _attend_blocks(self, q, k, v, cu_seqlens, length, head_dim, scale)
    return self.proj(out.reshape(length, -1))


def sdpa_without_plans(device):
    """A context in which SDPA picks, on a GPU, backends that build no execution plan per new shape (flash, then
    memory-efficient, then math) rather than cuDNN's; elsewhere it changes nothing."""
    from contextlib import nullcontext

    if device.type != "cuda":
        return nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])


def _attend_blocks(self, q, k, v, cu_seqlens, length, head_dim, scale):
    """(length, heads, head_dim) attention output, one SDPA call per distinct block length."""
    import torch
    import torch.nn.functional as F

    groups = _blocks_by_length(cu_seqlens, q.device)
    if len(groups) == 1 and groups[0][0] * groups[0][1] == length:  # one length: the blocks are a plain view
        ell, m, _ = groups[0]

        def view(x):
            return x.view(m, ell, self.num_heads, head_dim).transpose(1, 2)

        o = F.scaled_dot_product_attention(view(q), view(k), view(v), scale=scale)
        return o.transpose(1, 2).reshape(length, self.num_heads, head_dim)
    out = torch.empty_like(q)
    for ell, m, tokens in groups:

        def block(x, tokens=tokens, m=m, ell=ell):
            return x.index_select(0, tokens).view(m, ell, self.num_heads, head_dim).transpose(1, 2)

        o = F.scaled_dot_product_attention(block(q), block(k), block(v), scale=scale)
        out.index_copy_(0, tokens, o.transpose(1, 2).reshape(m * ell, self.num_heads, head_dim))
    return out


MLP_MULTIPLE = 64


def _partitioned(*linears) -> bool:
    """Whether a weight is held elsewhere until its own module runs (DeepSpeed ZeRO-3 gathers a module's parameters
    in that module's forward hooks): then only the stock forward may touch it."""
    return any(m.weight.numel() == 0 for m in linears)


def _padded_mlp_forward(self, hidden_state):
    import torch.nn.functional as F

    if _partitioned(self.gate_proj, self.up_proj, self.down_proj):
        return type(self).forward(self, hidden_state)
    pad = (-self.gate_proj.out_features) % MLP_MULTIPLE

    def widened(linear):
        bias = None if linear.bias is None else F.pad(linear.bias, (0, pad))
        return F.linear(hidden_state, F.pad(linear.weight, (0, 0, 0, pad)), bias)

    inner = self.act_fn(widened(self.gate_proj)) * widened(self.up_proj)
    return F.linear(inner, F.pad(self.down_proj.weight, (0, pad)), self.down_proj.bias)


def _is_unaligned_gated_mlp(module) -> bool:
    gate = getattr(module, "gate_proj", None)
    return (gate is not None and hasattr(module, "up_proj") and hasattr(module, "down_proj")
            and hasattr(module, "act_fn") and gate.out_features % MLP_MULTIPLE != 0)


def _patch_embed_as_matmul(self, hidden_states):
    if _partitioned(self.proj):
        return type(self).forward(self, hidden_states)
    weight = self.proj.weight  # (embed, C, T, P, P)
    x = hidden_states.reshape(-1, weight[0].numel()).to(weight.dtype)
    out = x @ weight.reshape(weight.shape[0], -1).t()
    if self.proj.bias is not None:
        out = out + self.proj.bias
    return out


def _is_patch_conv(module) -> bool:
    import torch

    conv = getattr(module, "proj", None)
    return (isinstance(conv, torch.nn.Conv3d) and tuple(conv.kernel_size) == tuple(conv.stride)
            and tuple(conv.padding) == (0, 0, 0) and tuple(conv.dilation) == (1, 1, 1) and conv.groups == 1)


def install_fast_vision_tower(model) -> dict[str, int]:
    """Patch a loaded Qwen VL model's vision tower in place (forward methods only, never parameters): the blocks'
    attention (sdpa or eager, not flash-attn, which already has a varlen kernel), the patch embedding and
    unaligned gated MLPs. Returns how many modules of each kind were patched: {"attention", "patch_embed", "mlp"}."""
    impl = getattr(getattr(model, "config", None), "_attn_implementation", None) or ""
    patched = {"attention": 0, "patch_embed": 0, "mlp": 0}
    for name, module in model.named_modules():
        if ".visual." not in f".{name}." and not name.startswith("visual"):
            continue
        if type(module).__name__.endswith("PatchEmbed") and _is_patch_conv(module):
            module.forward = types.MethodType(_patch_embed_as_matmul, module)
            patched["patch_embed"] += 1
        elif _is_unaligned_gated_mlp(module):
            module.forward = types.MethodType(_padded_mlp_forward, module)
            patched["mlp"] += 1
        elif "flash" not in impl and hasattr(module, "qkv") and hasattr(module, "proj") and hasattr(module, "num_heads"):
            if not hasattr(sys.modules[type(module).__module__], "apply_rotary_pos_emb_vision"):
                continue
            module.forward = types.MethodType(_grouped_block_attention, module)
            patched["attention"] += 1
    return patched


def uninstall_fast_vision_tower(model) -> int:
    """Restore transformers' own vision modules (e.g. to measure the stock path). Returns modules restored."""
    restored = 0
    for module in model.modules():
        if "forward" in module.__dict__ and getattr(module.forward, "__func__", None) in (
                _grouped_block_attention, _patch_embed_as_matmul, _padded_mlp_forward):
            del module.forward
            restored += 1
    return restored
