"""Qwen2-VL / Qwen2.5-VL multimodal (3-D) RoPE position ids, as released with the models.

Definition (Qwen2.5-VL release, transformers 4.49 `get_rope_index`; Qwen2-VL the same without time scaling):
walk the unpadded sequence in runs of one modality (0 text, 1 image, 2 video);
- a text run of length n gets positions `s, s+1, ..., s+n-1` on all three axes;
- a vision run with grid (t, h, w) and merge size m gets, for merged patch (k, i, j):
  temporal `s + floor(k * second_per_grid_t * tokens_per_second)` (Qwen2.5-VL videos; `s + k` for Qwen2-VL and
  images), height `s + i`, width `s + j` (i < h/m, j < w/m), computed in float32 as `(k * sp) * tps`;
- `s` of each run is (max position of everything before) + 1, i.e. the run after a video starts after the
  video's LAST TEMPORAL position, not after its spatial extent.
`rope_delta = max position + 1 - number of unpadded tokens` (used for the decoding steps).

Why our own: transformers 5.x changed this function. 5.17 truncates `second_per_grid_ts` to an integer
before scaling (fps 4 -> all frames at one temporal position; sampled fps 1.28 -> interval 2 instead of 3.125);
later 5.x fixed that (PR #48669) but, in both, the text after a video starts at `s + max(h, w) / m`, overlapping
the video's temporal positions. The released checkpoints (and the papers' evaluations) used the definition above.
`HFQwenVL` installs this function on the model (`rope_index="reference"`, default) so results do not depend on
the installed transformers version; `rope_index="transformers"` keeps the library's.
"""

from __future__ import annotations

from typing import Any

from tempbench.errors import TempbenchError


def qwen_vl_rope_index(
    input_ids,
    mm_token_type_ids,
    image_grid_thw=None,
    video_grid_thw=None,
    second_per_grid_ts=None,
    attention_mask=None,
    *,
    spatial_merge_size: int = 2,
    tokens_per_second: float | None = 2,
    **_: Any,
):
    """Position ids (3, batch, seq) and rope deltas (batch, 1) per the module docstring.

    `tokens_per_second=None` selects Qwen2-VL (temporal index = grid index). Padded positions get 0.
    """
    import numpy as np
    import torch

    # computed on the host in numpy and moved once: on an accelerator, per-row small kernels and host syncs would
    # cost more than the whole training step of a small model
    device = input_ids.device
    batch, length = input_ids.shape
    types_all = torch.as_tensor(mm_token_type_ids).cpu().numpy()
    keep_all = (
        torch.as_tensor(attention_mask).cpu().numpy().astype(bool)
        if attention_mask is not None
        else np.ones((batch, length), dtype=bool)
    )
    position_ids = np.zeros((3, batch, length), dtype=np.int64)
    images = iter(image_grid_thw.tolist() if image_grid_thw is not None else [])
    videos = iter(video_grid_thw.tolist() if video_grid_thw is not None else [])
    seconds = iter(
        torch.as_tensor(second_per_grid_ts, dtype=torch.float32).reshape(-1).tolist()
        if second_per_grid_ts is not None
        else []
    )
    m = int(spatial_merge_size)
    deltas = []
    for b in range(batch):
        keep = keep_all[b]
        types = types_all[b][keep]
        n = len(types)
        bounds = np.concatenate([[0], np.flatnonzero(types[1:] != types[:-1]) + 1, [n]]) if n else np.zeros(1, int)
        chunks = []
        start = 0
        for i, j in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            kind = int(types[i])
            if kind == 0:
                chunk = np.broadcast_to(np.arange(j - i, dtype=np.int64) + start, (3, j - i))
            elif kind in (1, 2):
                grid = next(images if kind == 1 else videos, None)
                if grid is None:
                    raise TempbenchError(f"row {b}: more {'image' if kind == 1 else 'video'} runs than grids")
                t, h, w = (int(x) for x in grid)
                lh, lw = h // m, w // m
                if (j - i) != t * lh * lw:
                    raise TempbenchError(
                        f"row {b}: a vision run of {j - i} tokens does not match grid {grid} (merge {m})"
                    )
                k = np.arange(t, dtype=np.float32)
                if kind == 2 and tokens_per_second is not None:
                    sp = next(seconds, None)
                    sp = 1.0 if sp is None else sp
                    # float32 products truncated toward zero, as the release computes them in torch
                    tt = (k * np.float32(sp) * np.float32(tokens_per_second)).astype(np.int64)
                else:
                    tt = k.astype(np.int64)
                t_idx = np.broadcast_to(tt[:, None, None], (t, lh, lw)).reshape(-1)
                h_idx = np.broadcast_to(np.arange(lh)[None, :, None], (t, lh, lw)).reshape(-1)
                w_idx = np.broadcast_to(np.arange(lw)[None, None, :], (t, lh, lw)).reshape(-1)
                chunk = np.stack([t_idx, h_idx, w_idx]) + start
            else:
                raise TempbenchError(f"row {b}: unsupported modality type {kind} in mm_token_type_ids")
            chunks.append(chunk)
            start = int(chunk.max()) + 1
        if chunks:
            pos = np.concatenate(chunks, axis=1)
            position_ids[:, b, keep] = pos
            deltas.append(int(pos.max()) + 1 - n)
        else:
            deltas.append(0)
    return (
        torch.from_numpy(position_ids).to(device),
        torch.tensor(deltas, dtype=torch.long).unsqueeze(1).to(device),
    )


def install_reference_rope_index(model) -> None:
    """Make `model` (a Qwen2(.5)-VL ForConditionalGeneration) use `qwen_vl_rope_index`."""
    inner = model.model
    cfg = model.config
    vc = cfg.vision_config
    tps = getattr(vc, "tokens_per_second", None) if cfg.model_type == "qwen2_5_vl" else None
    merge = int(vc.spatial_merge_size)

    def get_rope_index(input_ids, mm_token_type_ids=None, image_grid_thw=None, video_grid_thw=None,
                       second_per_grid_ts=None, attention_mask=None, **kwargs):
        if mm_token_type_ids is None:
            raise TempbenchError("mm_token_type_ids is required for 3-D position ids")
        return qwen_vl_rope_index(
            input_ids, mm_token_type_ids, image_grid_thw, video_grid_thw, second_per_grid_ts, attention_mask,
            spatial_merge_size=merge, tokens_per_second=tps,
        )

    inner.get_rope_index = get_rope_index
