"""Mixed-policy rollout: G-1 sampled completions per query plus one ground-truth completion (TempSamp-R1).

Batch layout (rows = completions): `[left-padded prompt | right-padded completion]`. All prompts of a batch are
left-padded to one length P, so every completion starts at column P; completions are right-padded to C.
`completion_mask` (B, C) marks the completion tokens that count in the loss (EOS included, padding excluded).

Video encoding. Sampling calls `generate` once per query with `num_return_sequences = n`. When the model's forward
accepts `mm_encoder_outputs` (transformers >= 5.2x), the video is encoded ONCE under no_grad and the encoder output
is handed to `generate`, which expands it per returned sequence. Otherwise the prompt row is repeated n times with
the pixel values concatenated n times (`torch.cat`, never `repeat_interleave`, which would interleave patch rows of
one video): the vision tower then runs n times, in inference only. In the loss step the video is always encoded
once per query, with gradients (see `loss.VideoPolicy`).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

# ---------------------------------------------------------------------------------------------------------------
# Ground-truth completions


def gt_answer_text(record: dict, kind: str = "grounding", cot: bool = False, think: str = "") -> str:
    """The off-policy completion in the phase's answer format.

    Grounding: `<answer> 13.90 to 22.40 </answer>` (two decimals, first GT window). Highlights: the prompt's
    sentence with the GT clips and mean saliency. CoT phase: `<think>{think}</think>` first (default empty) so
    that the format reward holds for the GT row."""
    if kind == "highlights":
        from tempbench.train.rewards import highlight_answer_text

        sal = record.get("saliency") or {}
        body = highlight_answer_text(sal.get("clip_ids", []), sal.get("scores", []))
    else:
        from tempbench.parsing import format_span

        s, e = record["windows"][0][:2]
        body = format_span(float(s), float(e))
    answer = f"<answer> {body} </answer>"
    return f"<think>{think}</think>{answer}" if cot else answer


def completion_ids(tokenizer, text: str, eos_id: int) -> list[int]:
    """Token ids of a teacher-forced completion: the text without special tokens, then EOS."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]) + [int(eos_id)]


# ---------------------------------------------------------------------------------------------------------------
# Batches


@dataclass
class VideoInputs:
    """Processed video of ONE query. Qwen2.5-VL carries `second_per_grid_ts` (its time axis); Qwen3-VL / Qwen3.5
    have none (their time is the `<t seconds>` text already in the prompt ids)."""

    pixel_values_videos: torch.Tensor  # (N_patches, C * t * p * p)
    video_grid_thw: torch.Tensor  # (1, 3)
    second_per_grid_ts: torch.Tensor | None = None  # (1,)

    @classmethod
    def from_dict(cls, d: dict) -> VideoInputs:
        grid = torch.as_tensor(d["video_grid_thw"]).reshape(-1, 3).long()
        spg = d.get("second_per_grid_ts")
        spg = None if spg is None else torch.as_tensor(spg, dtype=torch.float32).reshape(-1)
        return cls(torch.as_tensor(d["pixel_values_videos"]), grid, spg)


@dataclass
class RolloutBatch:
    """Rows of one training micro-step. `row_query[i]`: index into `videos` of row i's query."""

    input_ids: torch.Tensor  # (B, P + C)
    attention_mask: torch.Tensor  # (B, P + C)
    completion_mask: torch.Tensor  # (B, C)
    prompt_len: int
    row_query: torch.Tensor  # (B,) long
    is_gt: torch.Tensor  # (B,) bool
    videos: list[VideoInputs]
    texts: list[str] = field(default_factory=list)

    @property
    def completion_len(self) -> int:
        return self.completion_mask.shape[1]

    @property
    def completion_ids(self) -> torch.Tensor:
        return self.input_ids[:, self.prompt_len :]

    def video_kwargs(self, device=None) -> dict:
        """Video tensors of the batch, one entry per query (each video once), and the row -> video map."""
        v = self.videos
        out = {
            "pixel_values_videos": torch.cat([x.pixel_values_videos for x in v]).to(device),
            "video_grid_thw": torch.cat([x.video_grid_thw for x in v]).to(device),
            "row_video": self.row_query.to(device),
        }
        if all(x.second_per_grid_ts is not None for x in v):
            out["second_per_grid_ts"] = torch.cat([x.second_per_grid_ts for x in v]).to(device)
        return out


def collate_rows(
    prompts: Sequence[Sequence[int]],
    completions: Sequence[Sequence[int]],
    pad_id: int,
    row_query: Sequence[int] | None = None,
    is_gt: Sequence[bool] | None = None,
    videos: list[VideoInputs] | None = None,
    texts: list[str] | None = None,
) -> RolloutBatch:
    """Left-pad the prompts to a common length P, right-pad the completions to C, concatenate.

    `prompts[i]` is row i's prompt (repeated for rows of one query); masks: 1 on real tokens."""
    if len(prompts) != len(completions):
        raise ValueError("one prompt per completion row is needed")
    b = len(prompts)
    p = max(len(x) for x in prompts)
    c = max(1, max(len(x) for x in completions))
    ids = torch.full((b, p + c), int(pad_id), dtype=torch.long)
    att = torch.zeros((b, p + c), dtype=torch.long)
    cmask = torch.zeros((b, c), dtype=torch.long)
    for i, (pr, co) in enumerate(zip(prompts, completions)):
        pr = list(pr)
        co = list(co)
        ids[i, p - len(pr) : p] = torch.tensor(pr, dtype=torch.long)
        att[i, p - len(pr) : p] = 1
        if co:
            ids[i, p : p + len(co)] = torch.tensor(co, dtype=torch.long)
            att[i, p : p + len(co)] = 1
            cmask[i, : len(co)] = 1
    return RolloutBatch(
        input_ids=ids,
        attention_mask=att,
        completion_mask=cmask,
        prompt_len=p,
        row_query=torch.tensor(list(row_query) if row_query is not None else [0] * b, dtype=torch.long),
        is_gt=torch.tensor(list(is_gt) if is_gt is not None else [False] * b, dtype=torch.bool),
        videos=videos or [],
        texts=list(texts or []),
    )


# ---------------------------------------------------------------------------------------------------------------
# Sampling


@dataclass(frozen=True)
class SamplingSettings:
    max_new_tokens: int = 2048
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    do_sample: bool = True
    min_new_tokens: int = 0  # > 0 only for throughput measurements (random weights rarely emit EOS)


def base_model(model):
    """The HF model under peft / DDP / DeepSpeed wrappers."""
    m = model
    for _ in range(4):
        if hasattr(m, "module") and not hasattr(m, "generate"):
            m = m.module
    if hasattr(m, "get_base_model"):
        m = m.get_base_model()
    return m


def _accepts(fn, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def mm_token_type_ids(input_ids: torch.Tensor, config) -> torch.Tensor:
    """0 for text, 1 for image placeholders, 2 for video placeholders (the Qwen-VL M-RoPE input)."""
    t = torch.zeros_like(input_ids, dtype=torch.int32)
    t[input_ids == config.image_token_id] = 1
    t[input_ids == config.video_token_id] = 2
    return t


def eos_ids(model, tokenizer) -> list[int]:
    """EOS ids that end a completion: the generation config's, else the tokenizer's."""
    gc = getattr(model, "generation_config", None)
    e = getattr(gc, "eos_token_id", None) if gc is not None else None
    if e is None:
        e = tokenizer.eos_token_id
    return [int(x) for x in (e if isinstance(e, (list, tuple)) else [e])]


def cut_at_eos(tokens: Sequence[int], eos: Sequence[int], pad_id: int | None = None) -> list[int]:
    """Tokens up to and including the first EOS; trailing padding dropped when no EOS was produced."""
    out: list[int] = []
    eos = set(int(x) for x in eos)
    for t in tokens:
        t = int(t)
        out.append(t)
        if t in eos:
            return out
    if pad_id is not None:
        while out and out[-1] == pad_id:
            out.pop()
    return out


def _generate_kwargs(m, settings: SamplingSettings, eos: Sequence[int], pad_id: int, synced_gpus: bool) -> dict:
    """`generate` options of a rollout: sampling settings, EOS, padding, no vision placeholders."""
    gen_kwargs = {
        "max_new_tokens": settings.max_new_tokens,
        "do_sample": settings.do_sample,
        "pad_token_id": pad_id,
        "eos_token_id": list(eos),
        # never sample vision placeholders: they would be read as video/image slots in the loss forward
        "suppress_tokens": [int(m.config.image_token_id), int(m.config.video_token_id)],
    }
    if settings.do_sample:
        gen_kwargs.update(temperature=settings.temperature, top_p=settings.top_p, top_k=settings.top_k)
    if settings.min_new_tokens > 0:
        gen_kwargs["min_new_tokens"] = settings.min_new_tokens
    if synced_gpus:
        gen_kwargs["synced_gpus"] = True
    return gen_kwargs


@torch.no_grad()
def sample_completions(
    model,
    prompt_ids: Sequence[int],
    video: VideoInputs,
    n: int,
    settings: SamplingSettings,
    eos: Sequence[int],
    pad_id: int,
    encode_once: bool | None = None,
    synced_gpus: bool = False,
) -> list[list[int]]:
    """n sampled completions (token ids, cut after the first EOS) for one prompt + video.

    `encode_once=None` picks the single-encoding path when the model supports `mm_encoder_outputs`."""
    if n <= 0:
        return []
    if not settings.do_sample and n > 1:  # greedy: n identical rows
        one = sample_completions(model, prompt_ids, video, 1, settings, eos, pad_id, encode_once, synced_gpus)
        return [list(one[0]) for _ in range(n)]
    m = base_model(model)
    dev = next(m.parameters()).device
    if encode_once is None:
        encode_once = _accepts(m.forward, "mm_encoder_outputs")
    ids = torch.tensor([list(prompt_ids)], dtype=torch.long, device=dev)
    gen_kwargs = _generate_kwargs(m, settings, eos, pad_id, synced_gpus)
    grid = video.video_grid_thw.to(dev)
    spg = video.second_per_grid_ts.to(dev) if video.second_per_grid_ts is not None else None
    pix = video.pixel_values_videos.to(dev)
    if encode_once:
        feats = m.model.get_video_features(pix, grid, return_dict=True)
        inputs = {"input_ids": ids, "mm_encoder_outputs": {"video": feats}, "video_grid_thw": grid}
        rows = 1
        if n > 1:
            gen_kwargs["num_return_sequences"] = n
    else:
        inputs = {"input_ids": ids.repeat(n, 1), "pixel_values_videos": torch.cat([pix] * n),
                  "video_grid_thw": grid.repeat(n, 1)}
        spg = spg.repeat(n) if spg is not None else None
        rows = n
    inputs["attention_mask"] = torch.ones_like(inputs["input_ids"])
    if spg is not None:
        inputs["second_per_grid_ts"] = spg
    if _accepts(m.forward, "mm_token_type_ids"):
        inputs["mm_token_type_ids"] = mm_token_type_ids(inputs["input_ids"], m.config)
    was_training = m.training
    m.eval()
    try:
        out = m.generate(**inputs, **gen_kwargs)
    finally:
        m.train(was_training)
    p = ids.shape[1]
    seqs = out if isinstance(out, torch.Tensor) else out.sequences
    if seqs.shape[0] != n:
        raise RuntimeError(f"generate returned {seqs.shape[0]} sequences for {n} requested ({rows} prompt rows)")
    return [cut_at_eos(s[p:].tolist(), eos, pad_id) for s in seqs]


@torch.no_grad()
def sample_completions_batch(
    model,
    items: Sequence[QueryItem],
    n: int,
    settings: SamplingSettings,
    eos: Sequence[int],
    pad_id: int,
    synced_gpus: bool = False,
    encode_once: bool | None = None,
) -> list[list[list[int]]]:
    """n sampled completions for EACH of several queries in ONE `generate` call (`rollout.batch_generate`).

    Rows are every query's prompt n times (a query's rows contiguous), left-padded to one length, with the
    attention mask that M-RoPE and the cache read. Videos: with `mm_encoder_outputs` (transformers 5.2x,
    `encode_once=None` picks it when available) the vision tower runs once per query and each row gets its query's
    features; otherwise each row carries its query's pixel values (`torch.cat` in row order, whole videos). Small
    models are bound by the launch cost of each decoding step, so one call for the whole micro-step replaces
    `len(items)` calls. Returns, per query, n token lists cut after EOS."""
    if n <= 0 or not items:
        return [[] for _ in items]
    if not settings.do_sample and n > 1:  # greedy: n identical rows
        one = sample_completions_batch(model, items, 1, settings, eos, pad_id, synced_gpus, encode_once)
        return [[list(rows[0]) for _ in range(n)] for rows in one]
    m = base_model(model)
    dev = next(m.parameters()).device
    if encode_once is None:
        encode_once = _accepts(m.forward, "mm_encoder_outputs")
    prompts = [list(it.prompt_ids) for it in items for _ in range(n)]
    width = max(len(x) for x in prompts)
    ids = torch.full((len(prompts), width), int(pad_id), dtype=torch.long)
    att = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, pr in enumerate(prompts):
        ids[i, width - len(pr):] = torch.tensor(pr, dtype=torch.long)
        att[i, width - len(pr):] = 1
    videos = [it.video for it in items for _ in range(n)]
    inputs = {"input_ids": ids.to(dev), "attention_mask": att.to(dev),
              "video_grid_thw": torch.cat([v.video_grid_thw.to(dev) for v in videos])}
    if all(v.second_per_grid_ts is not None for v in videos):  # Qwen2.5-VL's time axis (Qwen3-VL: none)
        inputs["second_per_grid_ts"] = torch.cat([v.second_per_grid_ts.to(dev) for v in videos])
    feats = None
    if encode_once:
        grid = torch.cat([it.video.video_grid_thw.to(dev) for it in items])
        feats = m.model.get_video_features(torch.cat([it.video.pixel_values_videos.to(dev) for it in items]), grid,
                                           return_dict=True)
        if getattr(feats, "deepstack_features", None):  # Qwen3-VL: DeepStack taps are per row too; use pixels
            feats = None
    if feats is not None:
        per_query = feats.pooler_output
        if isinstance(per_query, torch.Tensor):  # unsplit: tokens of all videos in one tensor
            merge = m.config.vision_config.spatial_merge_size
            per_query = torch.split(per_query, (grid.prod(-1) // merge**2).tolist())
        per_query = list(per_query)
        if len(per_query) != len(items):
            raise RuntimeError(f"the vision tower returned {len(per_query)} videos for {len(items)} queries")
        inputs["mm_encoder_outputs"] = {"video": type(feats)(pooler_output=[per_query[q] for q in range(len(items))
                                                                            for _ in range(n)])}
    else:
        inputs["pixel_values_videos"] = torch.cat([v.pixel_values_videos.to(dev) for v in videos])
    if _accepts(m.forward, "mm_token_type_ids"):
        inputs["mm_token_type_ids"] = mm_token_type_ids(inputs["input_ids"], m.config)
    was_training = m.training
    m.eval()
    try:
        out = m.generate(**inputs, **_generate_kwargs(m, settings, eos, pad_id, synced_gpus))
    finally:
        m.train(was_training)
    seqs = out if isinstance(out, torch.Tensor) else out.sequences
    if seqs.shape[0] != len(prompts):
        raise RuntimeError(f"generate returned {seqs.shape[0]} sequences for {len(prompts)} rows")
    tail = seqs[:, width:].tolist()
    return [[cut_at_eos(tail[q * n + j], eos, pad_id) for j in range(n)] for q in range(len(items))]


@dataclass
class QueryItem:
    """One query ready for a rollout: tokenised prompt (video placeholders expanded), its video and record."""

    prompt_ids: list[int]
    video: VideoInputs
    record: dict


def build_rollout(
    model,
    tokenizer,
    items: Sequence[QueryItem],
    n_sampled: int,
    add_gt: bool,
    gt_texts: Sequence[str] | None,
    settings: SamplingSettings,
    pad_id: int,
    eos: Sequence[int],
    synced_gpus: bool = False,
    batch_generate: bool = False,
) -> RolloutBatch:
    """Rows of a micro-step: for each query, `n_sampled` sampled completions then (if `add_gt`) the GT
    completion (`gt_texts[q]` + EOS). Rows of query q are contiguous; the GT row is the last of its group.
    `batch_generate`: sample every query's completions in one `generate` call (`sample_completions_batch`)
    instead of one call per query."""
    prompts, comps, rq, gt, texts = [], [], [], [], []
    together = (sample_completions_batch(model, items, n_sampled, settings, eos, pad_id, synced_gpus=synced_gpus)
                if batch_generate else None)
    for q, it in enumerate(items):
        sampled = together[q] if together is not None else sample_completions(
            model, it.prompt_ids, it.video, n_sampled, settings, eos, pad_id, synced_gpus=synced_gpus)
        for c in sampled:
            prompts.append(it.prompt_ids)
            comps.append(c)
            rq.append(q)
            gt.append(False)
            texts.append(tokenizer.decode(c, skip_special_tokens=True))
        if add_gt:
            assert gt_texts is not None
            prompts.append(it.prompt_ids)
            gt_eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else eos[0]
            comps.append(completion_ids(tokenizer, gt_texts[q], gt_eos))
            rq.append(q)
            gt.append(True)
            texts.append(gt_texts[q])
    return collate_rows(prompts, comps, pad_id, rq, gt, [it.video for it in items], texts)
