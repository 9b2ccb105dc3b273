"""Supervised fine-tuning baseline: cross-entropy on the ground-truth answers, prompt tokens masked.

The SFT rows are exactly the off-policy rows of TempSamp-R1 (`rollout.gt_answer_text` + EOS), so the two methods
see the same target text. Loss = mean over completion tokens of -log p(token | prompt, video, previous tokens)
(token-mean over the batch).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from tempbench.train.rollout import QueryItem, RolloutBatch, collate_rows, completion_ids


def sft_batch(tokenizer, items: Sequence[QueryItem], gt_texts: Sequence[str], pad_id: int) -> RolloutBatch:
    """One GT row per query: left-padded prompt, right-padded `gt_texts[q]` + EOS."""
    eos = tokenizer.eos_token_id
    comps = [completion_ids(tokenizer, t, eos) for t in gt_texts]
    return collate_rows(
        [it.prompt_ids for it in items],
        comps,
        pad_id,
        row_query=range(len(items)),
        is_gt=[True] * len(items),
        videos=[it.video for it in items],
        texts=list(gt_texts),
    )


def sft_loss(logp: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Token-mean negative log-likelihood of the completion tokens (mask 1) ."""
    m = mask.to(logp.dtype)
    return -(logp * m).sum() / m.sum().clamp(min=1.0)
