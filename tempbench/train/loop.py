"""The training loop: TempSamp-R1 (mixed-policy GRPO), plain GRPO and SFT on transformers + accelerate.

`train(config, overrides)` is the whole command (`tempbench train`); `Trainer` holds the pieces so that tests and
benchmarks can run single micro-steps. One micro-step = `optim.batch_size` queries on this process:

1. decode each query's video (`tempbench.video.decode_video`) and build its prompt and video inputs with the
   Qwen2.5-VL adapter (`tempbench.models.hf.HFQwenVL.build_inputs`: chat template, <|video_pad|> expansion,
   pixel_values_videos, video_grid_thw, second_per_grid_ts);
2. tempsamp: G-1 sampled completions + the GT completion; grpo: G sampled; sft: the GT completion only;
3. rewards (IoU, + format in the CoT phase; highlight reward for QVHighlights) and group advantages;
4. policy loss (clipped surrogate + k3 KL) or SFT cross-entropy; accelerate handles gradient accumulation, DDP or
   DeepSpeed, and mixed precision.

Hybrid CoT schedule (paper): epoch 1 uses the plain prompt and the IoU reward; later epochs the CoT prompt with
IoU + format reward. Files in `out`: `train_config.toml`, `train_log.jsonl` (one line per micro-step),
`checkpoint-N/` (HF model folder + tokenizer + `train_config.toml` + `trainer_state.json` + `training_state/`
for resuming: optimizer, RNG, model).
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path

import numpy as np

from tempbench.errors import TempbenchError
from tempbench.train.advantages import AdvantageSettings, group_advantages, on_policy_groups, skewness
from tempbench.train.config import DEEPSPEED_ZERO3_PATH, dump_toml, group_size, load_config
from tempbench.train.rewards import RewardParts, score_completion

_COPY_FILES = ("preprocessor_config.json", "video_preprocessor_config.json", "chat_template.jinja",
               "chat_template.json", "TEMPBENCH_TINY.json")


def _task_kind(task: str, records: Sequence[dict]) -> str:
    try:
        from tempbench.tasks import get_task

        return get_task(task).kind
    except Exception:
        return "highlights" if records and "saliency" in records[0] else "grounding"


def load_records(cfg: dict) -> list[dict]:
    """Annotation records: `annotations` JSONL when given, else the task's cached split; `limit` applied."""
    path = cfg.get("annotations") or ""
    if path:
        p = Path(path)
        if not p.is_file():
            raise TempbenchError(f"{p}: annotation file not found", hint="pass a unified-annotation JSONL")
        records = []
        with open(p, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    raise TempbenchError(f"{p}, line {lineno}: invalid JSON ({e.msg})") from None
                for key in ("vid", "query", "duration"):
                    if key not in rec:
                        raise TempbenchError(f"{p}, line {lineno}: field {key!r} missing",
                                             hint="records need qid, vid, query, duration, windows")
                records.append(rec)
    else:
        from tempbench.annotations import load_annotations

        records = load_annotations(cfg["task"], cfg["split"])
    if cfg["limit"]:
        records = records[: int(cfg["limit"])]
    if not records:
        raise TempbenchError("no training queries", hint="check --task/--split or the annotation file")
    return records


def _check_renderable(records: Sequence[dict], source: str) -> None:
    """`data.frames = "render"` renders the cards' generated videos only: refuse, up front, the first record that is
    not one of them exactly (its vid, query, duration and window), so nothing trains on frames its answer is not."""
    from tempbench.tasks.synthetic import render_mismatch

    for line, rec in enumerate(records, 1):
        why = render_mismatch(rec)
        if why is not None:
            raise TempbenchError(f"{source}: record {line} (qid {rec.get('qid')}): {why}, so data.frames = "
                                 f"\"render\" cannot make its frames",
                                 hint="use data.frames = \"decode\" with --videos DIR, or only the synthetic tasks' "
                                      "own records")


def _check_think_field(records: Sequence[dict], field: str, source: str) -> None:
    """`rollout.gt_think_field`: every record must carry that field as text (its ground-truth row's <think>)."""
    for line, rec in enumerate(records, 1):
        if not isinstance(rec.get(field), str):
            got = "missing" if field not in rec else f"a {type(rec[field]).__name__}, not text"
            raise TempbenchError(f"{source}: record {line} (qid {rec.get('qid')}): field {field!r} is {got}",
                                 hint=f"give every record a {field!r} string, or set rollout.gt_think_field = \"\"")


def _latest_checkpoint(out: Path) -> Path | None:
    found = [(int(m.group(1)), p) for p in out.glob("checkpoint-*") if (m := re.fullmatch(r"checkpoint-(\d+)", p.name))]
    return max(found)[1] if found else None


class Trainer:
    """State of one training run (see module docstring). `reward_fn(text, record, kind, cot) -> RewardParts`
    can be replaced (tests use a synthetic reward)."""

    def __init__(self, cfg: dict, accelerator=None):
        import torch
        from accelerate import Accelerator

        self.cfg = cfg
        self.torch = torch
        self.method = cfg["method"]
        if not cfg["model"]:
            raise TempbenchError("no model given", hint="pass --model MODEL (a local HF folder or cached hub id)")
        mo = cfg["model_opts"]
        opt = cfg["optim"]
        use_cuda = torch.cuda.is_available()
        ds_path = mo.get("deepspeed", "")
        kwargs = {"gradient_accumulation_steps": int(opt["grad_accum"])}
        if ds_path:
            from accelerate.utils import DeepSpeedPlugin

            ds_file = DEEPSPEED_ZERO3_PATH if ds_path == "zero3" else Path(ds_path)
            plugin = DeepSpeedPlugin(hf_ds_config=str(ds_file), gradient_accumulation_steps=int(opt["grad_accum"]))
            # no dataloader goes through accelerate: give DeepSpeed the micro-batch size itself
            plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = int(opt["batch_size"])
            kwargs["deepspeed_plugin"] = plugin
        self.bf16 = bool(mo["bf16"]) and use_cuda
        if not use_cuda and not ds_path:
            # without cpu=True accelerate does not set up gloo under torchrun on a CPU-only machine: every process
            # would silently train its own copy of the model
            kwargs["cpu"] = True
        elif not use_cuda:  # DeepSpeed on CPU (tests): accelerate needs the backend named
            from accelerate.utils import InitProcessGroupKwargs

            kwargs["kwargs_handlers"] = [InitProcessGroupKwargs(backend="gloo")]
        self.accelerator = accelerator or Accelerator(mixed_precision="bf16" if self.bf16 else "no", **kwargs)
        acc = self.accelerator
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world > 1 and acc.num_processes != world:
            raise TempbenchError(f"launched as {world} processes (WORLD_SIZE) but accelerate set up "
                                 f"{acc.num_processes} ({acc.distributed_type})",
                                 hint="launch with torchrun or accelerate launch on a machine with the GPUs")
        self.zero3 = bool(ds_path) and acc.state.deepspeed_plugin is not None and \
            acc.state.deepspeed_plugin.zero_stage == 3
        # Weights: bf16 when DeepSpeed keeps fp32 masters or LoRA trains fp32 adapters; else fp32 (+ bf16 autocast).
        weights_dtype = mo.get("weights_dtype", "auto")
        if weights_dtype == "auto":
            weights_dtype = "bfloat16" if self.bf16 and (ds_path or mo["lora"]) else "float32"
        self.weights_dtype = weights_dtype

        from tempbench.models.qwen.adapter import HFQwenVL
        from tempbench.video import VideoSettings

        self.video_settings = VideoSettings.from_dict(dict(cfg["video"]))
        self.model_path = resolve_model(cfg["model"])
        self.adapter = HFQwenVL(self.model_path, device=str(acc.device), dtype=weights_dtype,
                                attn_implementation=mo["attn_implementation"], video_settings=self.video_settings)
        model = self.adapter.model
        self.tokenizer = self.adapter.tokenizer
        self.pad_id = self.adapter.pad_token_id
        from tempbench.train.rollout import eos_ids

        self.eos = eos_ids(model, self.tokenizer)
        model.train()
        if mo["freeze_vision"]:
            for p in model.model.visual.parameters():
                p.requires_grad_(False)
        if mo["gradient_checkpointing"]:
            if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.2x name
                model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            model.config.use_cache = False
        self.ref_model = None
        beta = float(cfg["loss"]["beta"])
        if mo["lora"]:
            from peft import LoraConfig, get_peft_model

            targets = "|".join(re.escape(t) for t in mo["lora_targets"])
            lcfg = LoraConfig(r=int(mo["lora_r"]), lora_alpha=int(mo["lora_alpha"]), lora_dropout=float(mo["lora_dropout"]),
                              target_modules=rf"^(?!.*visual).*\.({targets})$", task_type="CAUSAL_LM")
            model = get_peft_model(model, lcfg)
        elif beta > 0 and self.method != "sft" and not self.zero3:  # ZeRO-3: see _zero3_reference
            import copy

            self.ref_model = copy.deepcopy(model).eval()
            for p in self.ref_model.parameters():
                p.requires_grad_(False)
        self.model = model
        from tempbench.train.loss import LossSettings, VideoPolicy

        self.loss_settings = LossSettings(beta=beta, clip_low=float(cfg["loss"]["clip_low"]),
                                          clip_high=float(cfg["loss"]["clip_high"]),
                                          aggregation=cfg["loss"]["aggregation"])
        self.policy = VideoPolicy(model)
        self.ref_policy = VideoPolicy(self.ref_model) if self.ref_model is not None else None
        params = [p for p in self.policy.parameters() if p.requires_grad]
        self.optimizer = self._make_optimizer(params)
        if acc.state.deepspeed_plugin is not None:
            _fill_deepspeed_config(acc.state.deepspeed_plugin.deepspeed_config, self.adapter.model.config)
        self.policy, self.optimizer = acc.prepare(self.policy, self.optimizer)
        if self.zero3 and beta > 0 and self.method != "sft" and not mo["lora"]:
            self.ref_model = self._zero3_reference()
            self.ref_policy = VideoPolicy(self.ref_model)
        self.scheduler = None
        adv = cfg["advantage"]
        self.adv_settings = AdvantageSettings(
            control=adv["control"] if self.method == "tempsamp" else "none", eps=float(adv["eps"]),
            downscale=float(adv["downscale"]), anchor_scale=float(adv["anchor_scale"]), tau=float(adv["tau"]),
            alpha1=float(adv["alpha1"]), alpha2=float(adv["alpha2"]))
        ro = cfg["rollout"]
        from tempbench.train.rollout import SamplingSettings

        self.sampling = SamplingSettings(max_new_tokens=int(ro["max_new_tokens"]), temperature=float(ro["temperature"]),
                                         top_p=float(ro["top_p"]), top_k=int(ro["top_k"]))
        self.G = group_size(cfg)
        self.reward_fn: Callable[[str, dict, str, bool], RewardParts] = (
            lambda text, rec, kind, cot: score_completion(text, rec, kind, cot, ro["parse_profile"]))
        self.global_step = 0
        self.micro_step = 0
        self._video_folder: str | None = None
        self._cache: dict[tuple[int, bool], object] = {}  # (record index, cot) -> QueryItem (`data.cache`)

    # -- setup helpers ---------------------------------------------------------------------------------------
    def _zero3_reference(self):
        """The frozen reference model under ZeRO-3. The policy was loaded under `zero.Init` (its weights are
        partitioned at load time), so a deepcopy would hold empty shards without the hooks that gather them. The
        reference is loaded again and wrapped in a DeepSpeed engine without optimizer (ZeRO-3 partitioned as well,
        parameters gathered layer by layer in its forward)."""
        import copy

        import deepspeed

        from tempbench.models.qwen.adapter import HFQwenVL

        mo = self.cfg["model_opts"]
        ref = HFQwenVL(self.model_path, device=str(self.accelerator.device), dtype=self.weights_dtype,
                       attn_implementation=mo["attn_implementation"], video_settings=self.video_settings).model
        ref.eval().requires_grad_(False)
        ds = copy.deepcopy(self.accelerator.state.deepspeed_plugin.deepspeed_config)
        for key in ("optimizer", "scheduler"):
            ds.pop(key, None)
        ds.get("zero_optimization", {}).pop("offload_optimizer", None)
        engine, *_ = deepspeed.initialize(model=ref, config=ds)
        engine.eval()
        self._ref_engine = engine
        return engine.module

    def _make_optimizer(self, params):
        opt = self.cfg["optim"]
        kw = dict(lr=float(opt["lr"]), weight_decay=float(opt["weight_decay"]), betas=tuple(opt["betas"]),
                  eps=float(opt["adam_eps"]))
        if opt["name"] == "adamw":
            return self.torch.optim.AdamW(params, **kw)
        try:
            import bitsandbytes as bnb
        except ImportError as e:
            raise TempbenchError(f"optim.name={opt['name']!r} needs bitsandbytes",
                                 hint="pip install bitsandbytes, or use optim.name='adamw'") from e
        cls = bnb.optim.AdamW8bit if opt["name"] == "adamw_8bit" else bnb.optim.PagedAdamW8bit
        return cls(params, **kw)

    def make_scheduler(self, total_steps: int):
        from transformers import get_scheduler

        opt = self.cfg["optim"]
        self.scheduler = get_scheduler(opt["scheduler"], self.optimizer, num_warmup_steps=int(opt["warmup_steps"]),
                                       num_training_steps=max(1, total_steps))
        self.accelerator.register_for_checkpointing(self.scheduler)  # saved/restored with training_state/

    def unwrapped_model(self):
        return self.accelerator.unwrap_model(self.policy).model

    # -- data ------------------------------------------------------------------------------------------------
    def prompt_name(self, kind: str, cot: bool) -> str:
        s = self.cfg["schedule"]
        if kind == "highlights":
            return s["highlight_cot_prompt"] if cot else s["highlight_plain_prompt"]
        return s["cot_prompt"] if cot else s["plain_prompt"]

    def make_item(self, record: dict, kind: str, cot: bool, clip=None):
        """QueryItem for one record: decode the video (unless `clip` is given), render the prompt, build inputs."""
        from tempbench.models.base import ModelInput
        from tempbench.prompts import render
        from tempbench.train.rollout import QueryItem, VideoInputs
        from tempbench.video import decode_video, find_video

        if self.cfg["data"]["frames"] == "render":
            from tempbench.tasks.synthetic import rendered_clip

            device = str(self.accelerator.device)
            if clip is None:  # no worker processes: rendered here, by torch on the accelerator
                clip = rendered_clip(record["vid"], self.video_settings, device=device)
            # resized, normalised and patchified on the accelerator (on a GPU within a grey level of the CPU's)
            clip = self.adapter.video_preprocessor(clip, device=device)
        if clip is None:
            vdir = self.video_folder()
            path = find_video(vdir, record["vid"]) if vdir else None
            if path is None:
                raise TempbenchError(f"video {record['vid']!r} (qid {record.get('qid')}) not found in {vdir!r}",
                                     hint="pass --videos DIR holding the task's videos")
            clip = decode_video(path, self.video_settings)
        prompt = render(self.prompt_name(kind, cot), query=record["query"], duration=record.get("duration"))
        inputs = self.adapter.build_inputs([ModelInput(clip, prompt, int(record.get("qid", 0)), {})])
        return QueryItem(inputs["input_ids"][0].tolist(), VideoInputs.from_dict(inputs), record)

    def video_folder(self) -> str:
        """`videos`, or for a generated task's own split (no `annotations` file) its folder, generated once."""
        if self._video_folder is None:
            vdir = self.cfg["videos"]
            if not vdir and not self.cfg["annotations"]:
                from tempbench.tasks import get_task

                task = get_task(self.cfg["task"])
                if task.builtin:
                    from tempbench.annotations import ensure_synthetic

                    vdir = str(ensure_synthetic(self.cfg["split"], task.name, first=self.cfg["limit"] or None))
            self._video_folder = vdir
        return self._video_folder

    def batches(self, records: Sequence[dict], steps: Sequence[tuple[int, list[int]]], kind: str, cot: bool):
        """Yield `(position, indices, items)` for each step's record indices. With `data.workers`, the videos of
        the coming queries are decoded and preprocessed in that many processes ahead of the step; with
        `data.cache`, each query's item is kept for later epochs (the next epochs decode nothing)."""
        workers = int(self.cfg["data"]["workers"])
        cache = self._cache if self.cfg["data"]["cache"] else None
        bs = max((len(idx) for _, idx in steps), default=1)
        need = [i for _, idx in steps for i in idx if cache is None or (i, cot) not in cache]
        prepared = iter(())
        pool = None
        if workers > 0 and need:
            from tempbench.runner import RenderedLoader, VideoLoader
            from tempbench.video import Prefetcher

            if self.cfg["data"]["frames"] == "render":
                loader = RenderedLoader(self.video_settings)
            else:
                vdir = self.video_folder()
                if not vdir:
                    raise TempbenchError("no video folder", hint="pass --videos DIR holding the task's videos")
                loader = VideoLoader(Path(vdir), self.video_settings, self.adapter.video_preprocessor, True)
            pool = Prefetcher([records[i] for i in need], fn=loader, workers=workers,
                              ahead=max(2 * workers, 2 * bs), kind="process")
            prepared = iter(pool)
        try:
            for pos, idx in steps:
                items = []
                for i in idx:
                    item = cache.get((i, cot)) if cache is not None else None
                    if item is None:
                        clip = None
                        if pool is not None:
                            got = next(prepared)
                            if got.error:
                                rec = records[i]
                                raise TempbenchError(f"video {rec['vid']!r} (qid {rec.get('qid')}): {got.error}",
                                                     hint="check the task's videos (tempbench data check-videos)")
                            clip = got.value  # build_inputs copies it out of the worker's shared memory
                        item = self.make_item(records[i], kind, cot, clip=clip)
                        if cache is not None:
                            if self.cfg["data"]["cache_on_device"]:
                                item = self._on_device(item)
                            cache[(i, cot)] = item
                    items.append(item)
                yield pos, idx, items
        finally:
            if pool is not None:
                pool.close()

    def _on_device(self, item):
        """The item with its video tensors on the accelerator (a cached item is then never copied again)."""
        import dataclasses

        dev = self.accelerator.device
        v = item.video
        video = dataclasses.replace(v, pixel_values_videos=v.pixel_values_videos.to(dev),
                                    video_grid_thw=v.video_grid_thw.to(dev),
                                    second_per_grid_ts=v.second_per_grid_ts.to(dev))
        return dataclasses.replace(item, video=video)

    def gt_text(self, record: dict, kind: str, cot: bool) -> str:
        from tempbench.train.rollout import gt_answer_text

        field = self.cfg["rollout"]["gt_think_field"]
        think = record[field] if field else self.cfg["rollout"]["gt_think"]
        return gt_answer_text(record, kind, cot, think=think)

    # -- one micro-step --------------------------------------------------------------------------------------
    def micro_step_batch(self, items, kind: str, cot: bool):
        """Rows, rewards and advantages of one micro-step (no gradient). Returns (batch, advantages, info)."""
        torch = self.torch
        gt_texts = [self.gt_text(it.record, kind, cot) for it in items]
        if self.method == "sft":
            from tempbench.train.sft import sft_batch

            return sft_batch(self.tokenizer, items, gt_texts, self.pad_id), None, {}
        from tempbench.train.rollout import build_rollout

        add_gt = self.method == "tempsamp"
        n_sampled = self.G - 1 if add_gt else self.G
        model = self.unwrapped_model()
        batch = build_rollout(model, self.tokenizer, items, n_sampled, add_gt, gt_texts, self.sampling, self.pad_id,
                              self.eos, synced_gpus=self.zero3,
                              batch_generate=bool(self.cfg["rollout"]["batch_generate"]))
        parts = [self.reward_fn(t, items[int(q)].record, kind, cot) for t, q in zip(batch.texts, batch.row_query)]
        acc = np.array([p.accuracy for p in parts])
        fmt = np.array([p.format if p.format is not None else np.nan for p in parts])
        total = np.array([p.total for p in parts])
        adv = np.zeros(len(parts))
        rq = batch.row_query.numpy()
        for q in range(len(items)):
            rows = np.flatnonzero(rq == q)
            adv[rows] = group_advantages(total[rows], self.adv_settings, gt_index=-1 if add_gt else None,
                                         accuracy=acc[rows])
        info = {"accuracy": acc, "format": fmt, "reward": total, "advantage": adv}
        return batch, torch.tensor(adv, dtype=torch.float32), info

    def loss_on(self, batch, advantages, old_logp=None):
        """Loss of a prepared batch (with gradient). Returns (loss, stats, logp)."""
        from tempbench.train.loss import policy_logprobs, policy_loss
        from tempbench.train.sft import sft_loss

        dev = self.accelerator.device
        temp = 1.0 if self.method == "sft" else self.sampling.temperature
        logp = policy_logprobs(self.policy, batch, dev, temperature=temp)
        mask = batch.completion_mask.to(dev)
        if self.method == "sft":
            return sft_loss(logp, mask), {}, logp
        ref = self.ref_logprobs(batch) if self.loss_settings.beta > 0 else None
        loss, stats = policy_loss(logp, advantages.to(dev), mask, old_logp=old_logp, ref_logp=ref,
                                  settings=self.loss_settings)
        return loss, stats, logp

    def ref_logprobs(self, batch):
        from tempbench.train.loss import policy_logprobs

        torch = self.torch
        dev = self.accelerator.device
        with torch.no_grad():
            if self.ref_policy is not None:
                return policy_logprobs(self.ref_policy, batch, dev, self.sampling.temperature)
            model = self.unwrapped_model()
            ctx = model.disable_adapter() if hasattr(model, "disable_adapter") else nullcontext()
            with ctx:
                return policy_logprobs(self.policy, batch, dev, self.sampling.temperature)

    def step(self, items, kind: str, cot: bool) -> dict:
        """One micro-step: rollout, rewards, advantages, loss, backward, (optimizer step at accumulation end)."""
        torch = self.torch
        acc = self.accelerator
        t0 = time.perf_counter()
        batch, adv, info = self.micro_step_batch(items, kind, cot)
        t_gen = time.perf_counter() - t0
        n_upd = 1 if self.method == "sft" else int(self.cfg["loss"]["updates_per_batch"])
        old = None
        if n_upd > 1:
            from tempbench.train.loss import policy_logprobs

            with torch.no_grad():
                old = policy_logprobs(self.policy, batch, acc.device, self.sampling.temperature)
        stats: dict = {}
        for _ in range(n_upd):
            with acc.accumulate(self.policy):
                loss, st, logp = self.loss_on(batch, adv, old)
                acc.backward(loss)
                if acc.sync_gradients:
                    mgn = float(self.cfg["optim"]["max_grad_norm"])
                    if mgn > 0:
                        gn = acc.clip_grad_norm_(self.policy.parameters(), mgn)
                        st["grad_norm"] = float(gn) if gn is not None else None
                self.optimizer.step()
                if acc.sync_gradients:
                    if self.scheduler is not None:
                        self.scheduler.step()
                    self.global_step += 1
                self.optimizer.zero_grad(set_to_none=True)
            stats = {**st, "loss": float(loss.detach())}
        self.micro_step += 1
        dt = time.perf_counter() - t0
        rec = self._log_record(batch, info, logp.detach(), stats, dt, t_gen)
        return rec

    def _log_record(self, batch, info, logp, stats, dt, t_gen) -> dict:
        mask = batch.completion_mask.to(logp.device).float()
        gt = batch.is_gt.numpy()
        n_tok = int(batch.completion_mask.sum())
        n_gen = int(batch.completion_mask[~batch.is_gt].sum())
        lr = self.optimizer.param_groups[0]["lr"]
        rec = {"step": self.global_step, "micro_step": self.micro_step, "method": self.method,
               "loss": stats.get("loss"), "kl": stats.get("kl"), "clip_frac": stats.get("clip_frac"),
               "grad_norm": stats.get("grad_norm"), "lr": lr, "tokens": n_tok, "gen_tokens": n_gen,
               "tokens_per_s": (n_tok / dt) if dt > 0 else None, "time_s": dt, "gen_time_s": t_gen}
        mean_lp = ((logp * mask).sum(-1) / mask.sum(-1).clamp(min=1)).cpu().numpy()
        if gt.any():
            rec["gt_logp"] = float(mean_lp[gt].mean())
        if info:
            on = ~gt
            r, a, ac, fmt = info["reward"], info["advantage"], info["accuracy"], info["format"]
            zero_groups, best_on = on_policy_groups(ac, batch.row_query.numpy(), gt)
            rec.update({
                "reward_on_mean": float(r[on].mean()) if on.any() else None,
                "reward_on_std": float(r[on].std(ddof=1)) if on.sum() > 1 else 0.0,
                "reward_gt": float(r[gt].mean()) if gt.any() else None,
                "accuracy_on_mean": float(ac[on].mean()) if on.any() else None,
                "adv_mean_on": float(a[on].mean()) if on.any() else None,
                "adv_gt": float(a[gt].mean()) if gt.any() else None,
                "adv_skew": skewness(a),
                "zero_groups": zero_groups,  # fraction of queries whose on-policy rows all scored 0
                "best_on_mean": best_on,  # mean over queries of the best on-policy IoU
                # top-1: the on-policy completion the model is most confident in (highest mean token log-prob)
                "top1_iou": float(ac[on][int(np.argmax(mean_lp[on]))]) if on.any() else None,
                "format_rate": (float(np.nanmean(fmt[on])) if on.any() and not np.isnan(fmt[on]).all() else None),
                "sample": batch.texts[0][:200] if batch.texts else "",
            })
        return rec

    # -- checkpoints -----------------------------------------------------------------------------------------
    def save_checkpoint(self, out: Path, epoch: int, position: int) -> Path:
        """OUT/checkpoint-N: HF folder (from_pretrained-loadable; LoRA merged, adapter in adapter/), tokenizer,
        train_config.toml, trainer_state.json, training_state/ (accelerate: optimizer, RNG, model)."""
        acc = self.accelerator
        ck = out / f"checkpoint-{self.global_step}"
        acc.wait_for_everyone()
        state_dict = acc.get_state_dict(self.policy)
        if acc.is_main_process:
            ck.mkdir(parents=True, exist_ok=True)
            model = self.unwrapped_model()
            sd = {k[len("model."):] if k.startswith("model.") else k: v for k, v in state_dict.items()}
            if hasattr(model, "merge_and_unload"):
                model.save_pretrained(ck / "adapter")
                import copy

                merged = copy.deepcopy(model).to("cpu").merge_and_unload()
                merged.save_pretrained(ck, safe_serialization=True)
            else:
                model.save_pretrained(ck, state_dict=sd, safe_serialization=True)
            self.tokenizer.save_pretrained(ck)
            src = Path(self.adapter.path)
            for name in _COPY_FILES:
                if (src / name).is_file() and not (ck / name).exists():
                    shutil.copy2(src / name, ck / name)
            (ck / "train_config.toml").write_text(dump_toml(self.cfg))
            (ck / "trainer_state.json").write_text(json.dumps(
                {"global_step": self.global_step, "micro_step": self.micro_step, "epoch": epoch,
                 "position": position, "num_processes": acc.num_processes}, indent=2) + "\n")
        acc.save_state(str(ck / "training_state"))
        acc.wait_for_everyone()
        limit = int(self.cfg["log"]["save_total_limit"])
        if limit and acc.is_main_process:
            cks = sorted((int(p.name.split("-")[1]), p) for p in out.glob("checkpoint-*") if p.name.split("-")[1].isdigit())
            for _, p in cks[:-limit]:
                shutil.rmtree(p, ignore_errors=True)
        return ck

    def load_checkpoint(self, ck: Path) -> dict:
        state = json.loads((ck / "trainer_state.json").read_text())
        self.accelerator.load_state(str(ck / "training_state"))
        self.global_step = int(state["global_step"])
        self.micro_step = int(state["micro_step"])
        return state

    # -- the run ---------------------------------------------------------------------------------------------
    def fit(self) -> dict:
        cfg = self.cfg
        acc = self.accelerator
        out = Path(cfg["out"])
        records = load_records(cfg)
        kind = _task_kind(cfg["task"], records)
        source = cfg["annotations"] or f"task {cfg['task']} split {cfg['split']}"
        if cfg["data"]["frames"] == "render":
            _check_renderable(records, source)
        if cfg["rollout"]["gt_think_field"]:
            _check_think_field(records, cfg["rollout"]["gt_think_field"], source)
        world, rank = acc.num_processes, acc.process_index
        bs = int(cfg["optim"]["batch_size"])
        per_rank = len(records) // world
        if per_rank < bs:
            raise TempbenchError(f"{len(records)} queries for {world} process(es) x batch {bs}",
                                 hint="use more queries, fewer GPUs or a smaller optim.batch_size")
        steps_per_epoch = per_rank // bs
        epochs = int(cfg["schedule"]["epochs"])
        total_opt = math.ceil(steps_per_epoch * epochs / int(cfg["optim"]["grad_accum"]))
        self.make_scheduler(total_opt)
        start_epoch, start_pos = 0, 0
        if cfg["resume"]:
            ck = _latest_checkpoint(out) if cfg["resume"] == "latest" else Path(cfg["resume"])
            if ck is None or not (ck / "trainer_state.json").is_file():
                raise TempbenchError(f"no checkpoint to resume from ({cfg['resume']!r} in {out})",
                                     hint="pass resume=OUT/checkpoint-N or start without --resume")
            st = self.load_checkpoint(ck)
            start_epoch, start_pos = int(st["epoch"]), int(st["position"])
            if start_pos >= steps_per_epoch:
                start_epoch, start_pos = start_epoch + 1, 0
        if acc.is_main_process:
            out.mkdir(parents=True, exist_ok=True)
            (out / "train_config.toml").write_text(dump_toml(cfg))
        log_path = out / "train_log.jsonl"
        save_steps = int(cfg["log"]["save_steps"])
        checkpoints: list[str] = []
        progress = _Progress(enabled=bool(cfg["log"]["progress"]) and acc.is_main_process,
                             total=steps_per_epoch * epochs, done=start_epoch * steps_per_epoch + start_pos)
        last: dict = {}
        max_seconds = float(cfg["schedule"]["max_seconds"])
        t_start = time.perf_counter()
        stopped = None
        with progress:
            for epoch in range(start_epoch, epochs):
                cot = self._cot(epoch)
                order = np.random.default_rng([int(cfg["seed"]), epoch]).permutation(len(records))
                mine = order[rank::world][: steps_per_epoch * bs]
                pos0 = start_pos if epoch == start_epoch else 0
                steps = [(pos, [int(i) for i in mine[pos * bs : (pos + 1) * bs]])
                         for pos in range(pos0, steps_per_epoch)]
                for pos, idx, items in self.batches(records, steps, kind, cot):
                    recs = [records[i] for i in idx]
                    before = self.global_step
                    rec = self.step(items, kind, cot)
                    rec.update({"epoch": epoch, "phase": "cot" if cot else "plain",
                                "qids": [r.get("qid") for r in recs], "elapsed_s": time.perf_counter() - t_start})
                    last = rec
                    if acc.is_main_process and self.micro_step % int(cfg["log"]["every"]) == 0:
                        with open(log_path, "a", encoding="utf-8") as fh:
                            fh.write(json.dumps(rec) + "\n")
                    progress.update(rec)
                    if self.global_step != before and self.global_step % save_steps == 0:
                        checkpoints.append(str(self.save_checkpoint(out, epoch, pos + 1)))
                    if max_seconds and _stop_all(acc, time.perf_counter() - t_start > max_seconds):
                        stopped = (f"schedule.max_seconds = {max_seconds:g} reached after {self.global_step} "
                                   f"optimizer steps (epoch {epoch}, position {pos + 1} of {steps_per_epoch})")
                        if not checkpoints or not checkpoints[-1].endswith(f"-{self.global_step}"):
                            checkpoints.append(str(self.save_checkpoint(out, epoch, pos + 1)))
                        break
                if stopped:
                    break
                if not checkpoints or not checkpoints[-1].endswith(f"-{self.global_step}"):
                    checkpoints.append(str(self.save_checkpoint(out, epoch, steps_per_epoch)))
        return {"out": str(out), "global_step": self.global_step, "micro_steps": self.micro_step,
                "checkpoints": checkpoints, "log": str(log_path), "last": last, "stopped_early": stopped,
                "seconds": time.perf_counter() - t_start}

    def _cot(self, epoch: int) -> bool:
        mode = self.cfg["schedule"]["cot"]
        return mode == "cot" or (mode == "hybrid" and epoch >= 1)


class _Progress:
    """rich progress bar (terminal only) showing reward / IoU / loss of the last micro-step."""

    def __init__(self, enabled: bool, total: int, done: int):
        self.enabled = enabled and sys.stderr.isatty()
        self.total, self.done = total, done
        self._p = None

    def __enter__(self):
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._p = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                               TextColumn("{task.fields[info]}"))
            self._p.__enter__()
            self._task = self._p.add_task("train", total=self.total, completed=self.done, info="")
        return self

    def update(self, rec: dict) -> None:
        if self._p is None:
            return
        bits = [f"step {rec.get('step')}", f"loss {rec.get('loss'):.4f}" if rec.get("loss") is not None else ""]
        if rec.get("reward_on_mean") is not None:
            bits.append(f"reward {rec['reward_on_mean']:.3f}")
        if rec.get("top1_iou") is not None:
            bits.append(f"top1 IoU {rec['top1_iou']:.3f}")
        self._p.update(self._task, advance=1, info="  ".join(b for b in bits if b))

    def __exit__(self, *exc):
        if self._p is not None:
            self._p.__exit__(*exc)


def _fill_deepspeed_config(ds: dict, model_config) -> None:
    """Resolve the DeepSpeed keys accelerate cannot fill for our wrapper module, in place.

    - accelerate derives the `"auto"` bucket sizes from `model.config.hidden_size`, but the prepared module is a
      `VideoPolicy` (no `.config`), and Qwen2.5-VL keeps `hidden_size` in `text_config`: the values accelerate
      would use (hidden², 0.9·hidden², 10·hidden) are filled here from the language model's hidden size;
    - ZeRO-Offload of the optimizer refuses a client torch optimizer unless `zero_force_ds_cpu_optimizer` is false
      (DeepSpeed's own CPU Adam needs a compiled extension): the trainer's AdamW then runs on the CPU partitions.
    """
    text = getattr(model_config, "text_config", None) or model_config
    hidden = int(getattr(text, "hidden_size", 0) or getattr(model_config, "hidden_size", 0) or 0)
    zero = ds.setdefault("zero_optimization", {})
    if hidden:
        for key, value in (("reduce_bucket_size", hidden * hidden),
                           ("stage3_prefetch_bucket_size", int(0.9 * hidden * hidden)),
                           ("stage3_param_persistence_threshold", 10 * hidden)):
            if zero.get(key) == "auto":
                zero[key] = value
    offload = (zero.get("offload_optimizer") or {}).get("device", "none")
    if offload in ("cpu", "nvme") and "optimizer" not in ds:
        ds.setdefault("zero_force_ds_cpu_optimizer", False)


def _stop_all(acc, mine: bool) -> bool:
    """Whether any process wants to stop (all processes stop at the same step, or a collective would hang)."""
    if acc.num_processes == 1:
        return mine
    import torch

    flag = torch.tensor([1.0 if mine else 0.0], device=acc.device)
    return bool(acc.reduce(flag, reduction="sum").item() > 0)


def resolve_model(model: str) -> str:
    """What to load for `model`: a zoo alias's folder (a locally built or shipped model) or hub id, else `model`
    as given (a local folder or a hub id)."""
    if not model or Path(model).expanduser().is_dir():
        return model
    from tempbench.models import zoo

    entry = zoo.find(model)
    return zoo.resolve_local(entry) if entry is not None else model


def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))


def train(config: str | os.PathLike | dict | None = None, overrides: dict | None = None) -> dict:
    """Run training. `config`: TOML path or dict (keys to change from `default_config.toml`); `overrides`: dotted
    keys applied last (the CLI passes its options here: method, model, task, split, videos, out, ...).
    Returns a summary: out folder, optimizer steps, micro-steps, checkpoint folders, log path, last log record."""
    cfg = load_config(config, overrides)
    _seed_everything(int(cfg["seed"]))
    return Trainer(cfg).fit()
