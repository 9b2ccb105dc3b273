"""Model adapters behind one protocol (`tempbench.models.base.ModelAdapter`) and the `--model` grammar.

`load_model(spec, **options)` (docs/design.md, "--model grammar"):

- `baseline:prior|random|center` -> `baselines` (options: `train_records` or `task` for prior/center, `seed`);
- `openai:MODEL_NAME` -> `openai.OpenAIChat` (options: `api_base`, `api_key_env`, `mode`, `concurrency`, ...);
- a zoo alias or registered hub id (`tempbench.models.zoo`) -> its checkpoint, with the zoo's video settings
  unless `video_settings` is given;
- an existing local folder -> transformers;
- anything else -> a Hugging Face hub id (from the local HF cache unless `allow_download=True`).

Heavy imports happen only when a backend is chosen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tempbench.errors import UsageError
from tempbench.models.base import GenerationSettings, ModelAdapter, ModelInput

_HF_OPTIONS = {"revision", "allow_download", "device", "dtype", "attn_implementation", "generation",
               "video_settings", "video_processor", "name", "rope_index", "trust_remote_code", "timestamps", "layout",
               "time_hint", "torch_processor", "decoder", "share_prefix", "stage_times"}
_OPENAI_OPTIONS = {"api_base", "api_key", "api_key_env", "mode", "image_format", "jpeg_quality", "video_url_base",
                   "concurrency", "timeout", "deadline", "max_retries", "backoff", "max_backoff", "max_answer_bytes",
                   "generation", "extra_body", "max_tokens_field", "name"}
_BASELINE_OPTIONS = {"train_records", "task", "seed"}


def _pick(options: dict, allowed: set[str], what: str) -> dict:
    given = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise UsageError(f"option(s) {', '.join(unknown)} do not apply to {what} models",
                         hint="allowed: " + ", ".join(sorted(allowed)))
    return given


def _load_baseline(kind: str, options: dict):
    from tempbench.models.baselines import load_baseline

    opts = _pick(options, _BASELINE_OPTIONS | {"generation", "video_settings"}, "baseline")
    records = opts.get("train_records")
    if records is None and kind in ("prior", "center") and opts.get("task"):
        from tempbench.annotations import load_annotations

        records = load_annotations(opts["task"], "train")
    return load_baseline(kind, train_records=records, seed=int(opts.get("seed", 0)))


def _video_settings(entry, options: dict):
    if options.get("video_settings") is not None or not entry.video:
        return options.get("video_settings")
    from tempbench.video import VideoSettings

    return VideoSettings.from_dict(dict(entry.video))


def load_model(spec: str, **options: Any) -> ModelAdapter:
    """An adapter for `spec` following the `--model` grammar (module docstring). Unknown options are an error."""
    if not spec or not isinstance(spec, str):
        raise UsageError("empty --model", hint="e.g. --model qwen2.5-vl-7b or --model baseline:prior")
    if spec.startswith("baseline:"):
        return _load_baseline(spec.split(":", 1)[1], options)
    if spec.startswith("openai:"):
        from tempbench.models.openai import OpenAIChat

        opts = _pick(options, _OPENAI_OPTIONS | {"video_settings"}, "openai")
        opts.pop("video_settings", None)  # the runner samples frames; the adapter only sends them
        return OpenAIChat(spec.split(":", 1)[1], **opts)

    from tempbench.models import zoo

    entry = zoo.find(spec)
    opts = _pick(options, _HF_OPTIONS, "transformers")
    from tempbench.models.hf import load_hf_model

    if entry is not None:
        opts["video_settings"] = _video_settings(entry, opts)
        opts.setdefault("name", entry.alias)
        model = load_hf_model(zoo.resolve_local(entry), **opts)
        model.zoo_entry = entry  # recorded by info() consumers (runner) as provenance
        return model
    if Path(spec).expanduser().is_dir():
        return load_hf_model(spec, **opts)
    if ":" in spec.split("/")[0]:
        raise UsageError(f"unknown model scheme in {spec!r}", hint="use baseline:KIND, openai:NAME, a zoo alias, "
                         "a local folder or a Hugging Face hub id")
    return load_hf_model(spec, **opts)


def model_args_for(spec: str) -> dict[str, type]:
    """The options `tempbench run --model-args` may set for `spec`'s kind of model (name -> type); each adapter
    checks the values of its own keys (transformers: `tempbench.models.hf.check_hf_options`)."""
    if isinstance(spec, str) and spec.startswith("openai:"):
        from tempbench.models.openai import MODEL_ARGS

        return dict(MODEL_ARGS)
    if not isinstance(spec, str) or spec.startswith("baseline:"):
        return {}
    from tempbench.models.hf import HF_MODEL_ARGS

    return dict(HF_MODEL_ARGS)


def recommended_prompt(spec: str) -> str | None:
    """The zoo's recommended prompt name for `spec`, if it is a zoo model."""
    from tempbench.models import zoo

    entry = zoo.find(spec)
    return entry.prompt if entry else None


__all__ = ["load_model", "model_args_for", "recommended_prompt", "GenerationSettings", "ModelAdapter", "ModelInput"]
