"""Policy forward with video, and the GRPO / TempSamp-R1 policy loss.

`VideoPolicy` wraps a Qwen-VL model (Qwen2.5-VL, Qwen3-VL, Qwen3.5) so that ONE forward (the one
accelerate/DDP/DeepSpeed wraps) runs the vision tower once per query, places the video features at the
`<|video_pad|>` positions of every row of that query (Qwen3-VL: its DeepStack features too, added to the hidden
states of the first decoder layers at the same positions), computes the 3-D M-RoPE position ids (with
`second_per_grid_ts` where the family has it) and returns per-token log-probs of the completion tokens. Gradients
reach the vision tower through this forward (unless it is frozen).

`policy_loss` is the clipped importance-ratio surrogate of PPO/GRPO with an optional k3 KL penalty to a frozen
reference (Shao et al. 2024, DeepSeekMath, eq. 3-4; Schulman's k3 estimator):

    ratio_t = exp(logp_t - old_logp_t)
    L_t = -min(ratio_t A, clip(ratio_t, 1 - eps_low, 1 + eps_high) A) + beta (exp(ref_t - logp_t) - (ref_t - logp_t) - 1)

aggregated as `sequence` (mean over the tokens of each row, then over rows: GRPO) or `token` (mean over all
completion tokens of the batch). `old_logp` is the log-prob under the policy that sampled the batch; with one update
per batch it equals `logp.detach()` (ratio 1), with several updates it is computed once before the first update.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from torch import nn

from tempbench.train.rollout import base_model, mm_token_type_ids

SMALL_LOGITS = 1 << 24  # below this many logits the batch is done in one go (a small vocabulary, short answers)


def selective_log_softmax(logits: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """log_softmax(logits)[..., index] (float32), row by row for large logits so that the full log-prob tensor is
    never materialised; in one batched call when the logits are small (fewer kernels per step)."""
    if logits.numel() <= SMALL_LOGITS:
        lf = logits.float()
        return torch.gather(lf, -1, index.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(lf, dim=-1)
    out = []
    for row_logits, row_index in zip(logits, index):
        lf = row_logits.float()
        lse = torch.logsumexp(lf, dim=-1)
        out.append(torch.gather(lf, -1, row_index.unsqueeze(-1)).squeeze(-1) - lse)
    return torch.stack(out)


def video_features(hf, pixel_values_videos: torch.Tensor, video_grid_thw: torch.Tensor):
    """Vision-tower output per video (list of (tokens_v, hidden)) and, for Qwen3-VL, its DeepStack features per
    layer and video (list over layers of lists over videos; empty otherwise); works with the 5.x return types
    (5.17 returns DeepStack features unsplit, 5.24 split per video)."""
    out = hf.model.get_video_features(pixel_values_videos, video_grid_thw)
    feats = getattr(out, "pooler_output", out)
    merge = hf.config.vision_config.spatial_merge_size
    sizes = (video_grid_thw.prod(-1) // merge**2).tolist()

    def per_video(x):
        return list(torch.split(x, sizes)) if isinstance(x, torch.Tensor) else list(x)

    deep = [per_video(layer) for layer in (getattr(out, "deepstack_features", None) or [])]
    return per_video(feats), deep


def rope_position_ids(hf, input_ids, attention_mask, video_grid_thw, second_per_grid_ts,
                      prompt_len: int | None = None) -> torch.Tensor:
    """3-D M-RoPE position ids (3, B, L) for rows with one video each (Qwen2.5-VL: with `second_per_grid_ts`).
    Vision placeholders count only in the first `prompt_len` columns (a sampled completion may contain a placeholder
    id: it is text there)."""
    fn = hf.model.get_rope_index
    params = inspect.signature(fn).parameters
    kw = {
        "input_ids": input_ids,
        "video_grid_thw": video_grid_thw,
        "second_per_grid_ts": second_per_grid_ts,
        "attention_mask": attention_mask,
    }
    if "mm_token_type_ids" in params:
        types = mm_token_type_ids(input_ids, hf.config)
        if prompt_len is not None:
            types[:, prompt_len:] = 0
        kw["mm_token_type_ids"] = types
    if "image_grid_thw" in params:
        kw["image_grid_thw"] = None
    pos, _ = fn(**kw)
    return pos


class VideoPolicy(nn.Module):
    """Wraps the HF model (plain or peft) for the training forward; see the module docstring."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        completion_len: int,
        pixel_values_videos: torch.Tensor | None = None,
        video_grid_thw: torch.Tensor | None = None,
        second_per_grid_ts: torch.Tensor | None = None,
        row_video: torch.Tensor | None = None,
        temperature: float = 1.0,
    ) -> torch.Tensor:
        """Per-token log-probs (B, completion_len) of the last `completion_len` tokens of each row."""
        hf = base_model(self.model)
        embeds = hf.get_input_embeddings()(input_ids)
        pos = None
        deep: list = []
        if pixel_values_videos is not None:
            feats, deep = video_features(hf, pixel_values_videos, video_grid_thw)
            if row_video is None:
                row_video = torch.arange(input_ids.shape[0], device=input_ids.device)
            rows = [int(v) for v in row_video.tolist()]
            row_feats = torch.cat([feats[v] for v in rows]).to(embeds.dtype)
            prompt_len = input_ids.shape[1] - completion_len
            mask = input_ids == hf.config.video_token_id
            mask[:, prompt_len:] = False
            if int(mask.sum()) != row_feats.shape[0]:
                raise ValueError(
                    f"{int(mask.sum())} <|video_pad|> tokens in the batch but {row_feats.shape[0]} video features"
                )
            embeds = embeds.masked_scatter(mask.unsqueeze(-1), row_feats)
            pos = rope_position_ids(
                hf, input_ids, attention_mask, video_grid_thw[row_video],
                second_per_grid_ts[row_video] if second_per_grid_ts is not None else None, prompt_len
            )
        if deep:  # Qwen3-VL: the language model adds each layer's DeepStack features at the video positions
            row_deep = [torch.cat([layer[v] for v in rows]).to(embeds.dtype) for layer in deep]
            hidden = hf.model.language_model(inputs_embeds=embeds, attention_mask=attention_mask, position_ids=pos,
                                             use_cache=False, visual_pos_masks=mask,
                                             deepstack_visual_embeds=row_deep).last_hidden_state
            logits = hf.lm_head(hidden[:, -(completion_len + 1):])[:, :-1, :]
        else:
            out = hf(
                inputs_embeds=embeds,
                attention_mask=attention_mask,
                position_ids=pos,
                logits_to_keep=completion_len + 1,
                use_cache=False,
            )
            logits = out.logits[:, :-1, :]
        if temperature != 1.0:
            logits = logits / temperature
        return selective_log_softmax(logits, input_ids[:, -completion_len:])


def policy_logprobs(policy: nn.Module, batch, device=None, temperature: float = 1.0) -> torch.Tensor:
    """Run `policy` (a VideoPolicy, possibly wrapped by accelerate) on a RolloutBatch."""
    kw = batch.video_kwargs(device) if batch.videos else {}
    return policy(
        input_ids=batch.input_ids.to(device),
        attention_mask=batch.attention_mask.to(device),
        completion_len=batch.completion_len,
        temperature=temperature,
        **kw,
    )


@dataclass(frozen=True)
class LossSettings:
    beta: float = 0.04
    clip_low: float = 0.2
    clip_high: float = 0.2
    aggregation: str = "sequence"  # "sequence" | "token"


def aggregate(per_token: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """Sequence-mean (mean over each row's tokens, then rows with >= 1 token) or token-mean."""
    mask = mask.to(per_token.dtype)
    if how == "token":
        return (per_token * mask).sum() / mask.sum().clamp(min=1.0)
    if how == "sequence":
        n = mask.sum(-1)
        rows = n > 0
        per_row = (per_token * mask).sum(-1) / n.clamp(min=1.0)
        return per_row[rows].sum() / rows.sum().clamp(min=1)
    raise ValueError(f"unknown aggregation {how!r}; use 'sequence' or 'token'")


def policy_loss(
    logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    old_logp: torch.Tensor | None = None,
    ref_logp: torch.Tensor | None = None,
    settings: LossSettings | None = None,
) -> tuple[torch.Tensor, dict]:
    """Clipped surrogate + beta * k3 KL. Shapes: logp/old/ref/mask (B, C), advantages (B,). Returns (loss, stats)."""
    s = settings or LossSettings()
    old = logp.detach() if old_logp is None else old_logp
    adv = advantages.to(logp.dtype).unsqueeze(-1)
    ratio = torch.exp(logp - old)
    clipped = torch.clamp(ratio, 1.0 - s.clip_low, 1.0 + s.clip_high)
    per_token = -torch.min(ratio * adv, clipped * adv)
    stats: dict = {}
    m = mask.to(logp.dtype)
    if ref_logp is not None and s.beta > 0:
        d = ref_logp - logp
        kl = torch.exp(d) - d - 1.0
        per_token = per_token + s.beta * kl
        stats["kl"] = float((kl.detach() * m).sum() / m.sum().clamp(min=1.0))
    loss = aggregate(per_token, mask, s.aggregation)
    with torch.no_grad():
        is_clipped = ((ratio < 1.0 - s.clip_low) & (adv < 0)) | ((ratio > 1.0 + s.clip_high) & (adv > 0))
        stats["clip_frac"] = float((is_clipped.to(m.dtype) * m).sum() / m.sum().clamp(min=1.0))
    return loss, stats
