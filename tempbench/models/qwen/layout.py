"""The token layout of a Qwen3-VL / Qwen3.5 video: where its timestamps and vision tokens go in the prompt.

The chat template writes one `<|vision_start|><|video_pad|><|vision_end|>` per video. The processor then writes,
for each temporal patch k with `n = h * w / merge_size**2` tokens,

    <t_k seconds><|vision_start|><|video_pad|> * n<|vision_end|>

Two layouts exist (pinned in tests/test_models_qwen3.py):

- `"release"` (tempbench's reference): the Qwen3-VL release processor (transformers 4.57.0,
  `Qwen3VLProcessor.__call__`) replaces the template's whole `<|vision_start|><|video_pad|><|vision_end|>` by the
  per-patch blocks. This is the input the released checkpoints were trained and evaluated with.
- `"transformers"`: transformers 5.x (5.17 and 5.24, `replace_video_token`) replaces only `<|video_pad|>`, so the
  template's outer `<|vision_start|>` ... `<|vision_end|>` stay around the blocks: 2 tokens more, and every position
  after the first shifted by one (vLLM documents the same difference).

The 3-D position ids of both layouts follow one rule (`tempbench.models.qwen.rope3`); only the token sequences
differ.
"""

from __future__ import annotations

from collections.abc import Sequence

from tempbench.errors import TempbenchError
from tempbench.models.qwen.timestamps import timestamp_text

LAYOUTS = ("release", "transformers")
VISION_START, VISION_END, VIDEO_PAD = "<|vision_start|>", "<|vision_end|>", "<|video_pad|>"


def video_blocks(timestamps: Sequence[float], tokens_per_patch: int, pad: str = VIDEO_PAD,
                 start: str = VISION_START, end: str = VISION_END) -> str:
    """`<t seconds><|vision_start|><|video_pad|>*n<|vision_end|>` for every temporal patch, in order."""
    return "".join(f"{timestamp_text(t)}{start}{pad * int(tokens_per_patch)}{end}" for t in timestamps)


def expand_video(text: str, timestamps: Sequence[float], tokens_per_patch: int, layout: str = "release",
                 pad: str = VIDEO_PAD, start: str = VISION_START, end: str = VISION_END) -> str:
    """`text` (one video placeholder from the chat template) with the video's blocks in `layout`."""
    if layout not in LAYOUTS:
        raise TempbenchError(f"layout={layout!r} is unknown", f"use one of: {', '.join(LAYOUTS)}")
    if text.count(pad) != 1:
        raise TempbenchError(f"the chat text holds {text.count(pad)} {pad} placeholders (expected 1)",
                             "the prompt must not contain vision tokens")
    blocks = video_blocks(timestamps, tokens_per_patch, pad, start, end)
    whole = f"{start}{pad}{end}"
    if layout == "release" and whole in text:
        return text.replace(whole, blocks, 1)
    return text.replace(pad, blocks, 1)
