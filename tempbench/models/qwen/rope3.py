"""Qwen3-VL / Qwen3.5 multimodal (3-D) RoPE position ids, as released with the models.

Definition (Qwen3-VL release, transformers 4.57.0 `Qwen3VLModel.get_rope_index`; Qwen3.5 uses the same): a video
of grid (t, h, w) is t separate vision runs of grid (1, h, w), one per temporal patch, because each is preceded by
its `<t seconds>` text (the time reaches the model as text, not as a temporal position). Walk the unpadded
sequence in runs of one modality (0 text, 1 image, 2 video):
- a text run of length n gets positions `s, s+1, ..., s+n-1` on all three axes;
- a vision run with grid (t, h, w) and merge size m gets, for merged patch (k, i, j): temporal `s + k` (k = 0 for
  a video's per-patch run), height `s + i`, width `s + j` (i < h/m, j < w/m);
- `s` of each run is (max position of everything before) + 1, so the text after a frame starts at
  `s + max(h, w) / m`.
`rope_delta = max position + 1 - number of unpadded tokens`.

transformers 5.17 and 5.24 compute the same ids for the same token sequence (tested), but their processor builds a
sequence 2 tokens longer than the release (`tempbench.models.qwen.layout`); the layout, not this function, decides
which one the model sees. `HFQwenVL` installs this function (`rope_index="reference"`, default) so that results do
not depend on a future transformers change; `rope_index="transformers"` keeps the library's.
"""

from __future__ import annotations

from typing import Any

from tempbench.errors import TempbenchError


def _split_video_grids(video_grid_thw):
    """(n, 3) grids -> one (1, h, w) grid per temporal patch, in order."""
    out = []
    for t, h, w in (video_grid_thw.tolist() if video_grid_thw is not None else []):
        out.extend([(1, int(h), int(w))] * int(t))
    return out


def qwen3_vl_rope_index(input_ids, mm_token_type_ids, image_grid_thw=None, video_grid_thw=None, attention_mask=None,
                        *, spatial_merge_size: int = 2, **_: Any):
    """Position ids (3, batch, seq) and rope deltas (batch, 1) per the module docstring. Padded positions get 0."""
    import numpy as np
    import torch

    # computed on the host in numpy and moved once, as in `rope.qwen_vl_rope_index`: a row of a long video has two
    # runs per frame, and per-run kernels and host syncs on an accelerator would cost more than the ids
    device = input_ids.device
    batch, length = input_ids.shape
    types_all = torch.as_tensor(mm_token_type_ids).cpu().numpy()
    keep_all = (torch.as_tensor(attention_mask).cpu().numpy().astype(bool) if attention_mask is not None
                else np.ones((batch, length), dtype=bool))
    position_ids = np.zeros((3, batch, length), dtype=np.int64)
    images = iter([tuple(int(v) for v in g) for g in (image_grid_thw.tolist() if image_grid_thw is not None else [])])
    videos = iter(_split_video_grids(video_grid_thw))
    m = int(spatial_merge_size)
    deltas = []
    for b in range(batch):
        keep = keep_all[b]
        types = types_all[b][keep]
        n = len(types)
        bounds = np.concatenate([[0], np.flatnonzero(types[1:] != types[:-1]) + 1, [n]]) if n else np.zeros(1, int)
        chunks, start = [], 0
        for i, j in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            kind = int(types[i])
            if kind == 0:
                chunks.append(np.broadcast_to(np.arange(j - i, dtype=np.int64) + start, (3, j - i)))
                start = start + (j - i)
                continue
            if kind not in (1, 2):
                raise TempbenchError(f"row {b}: unsupported modality type {kind} in mm_token_type_ids")
            # a run of one modality may hold several grids back to back (consecutive frames without text)
            while i < j:
                grid = next(images if kind == 1 else videos, None)
                if grid is None:
                    raise TempbenchError(f"row {b}: more {'image' if kind == 1 else 'video'} tokens than grids")
                t, h, w = grid
                lh, lw = h // m, w // m
                size = t * lh * lw
                if size > j - i:
                    raise TempbenchError(f"row {b}: a vision run of {j - i} tokens does not match grid {grid} "
                                         f"(merge {m})")
                t_idx = np.broadcast_to(np.arange(t)[:, None, None], (t, lh, lw)).reshape(-1)
                h_idx = np.broadcast_to(np.arange(lh)[None, :, None], (t, lh, lw)).reshape(-1)
                w_idx = np.broadcast_to(np.arange(lw)[None, None, :], (t, lh, lw)).reshape(-1)
                chunk = np.stack([t_idx, h_idx, w_idx]).astype(np.int64) + start
                chunks.append(chunk)
                start = int(chunk.max()) + 1
                i += size
        if chunks:
            pos = np.concatenate(chunks, axis=1)
            position_ids[:, b, keep] = pos
            deltas.append(int(pos.max()) + 1 - n)
        else:
            deltas.append(0)
    return (torch.from_numpy(position_ids).to(device),
            torch.tensor(deltas, dtype=torch.long).unsqueeze(1).to(device))


def install_reference_rope_index3(model) -> None:
    """Make `model` (a Qwen3-VL / Qwen3.5 ForConditionalGeneration, MoE included) use `qwen3_vl_rope_index`."""
    inner = model.model
    merge = int(model.config.vision_config.spatial_merge_size)

    def get_rope_index(input_ids, mm_token_type_ids=None, image_grid_thw=None, video_grid_thw=None,
                       attention_mask=None, **kwargs):
        if mm_token_type_ids is None:
            raise TempbenchError("mm_token_type_ids is required for 3-D position ids")
        return qwen3_vl_rope_index(input_ids, mm_token_type_ids, image_grid_thw, video_grid_thw, attention_mask,
                                   spatial_merge_size=merge)

    inner.get_rope_index = get_rope_index
