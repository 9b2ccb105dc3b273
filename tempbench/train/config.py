"""Trainer configuration: the TOML defaults (`default_config.toml`, the paper's values), a user file, overrides.

`load_config(config, overrides)`:
- `config`: None, a path to a TOML file, or a (nested) dict; only the keys to change are needed;
- `overrides`: a dict of dotted keys (`{"optim.lr": 2e-6, "method": "grpo"}`) or nested dicts, applied last.
Unknown keys and values of the wrong type are refused with a `TempbenchError` naming the file and key.
`dump_toml(cfg)` writes the final configuration back as TOML (stored in each checkpoint).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from tempbench.errors import TempbenchError

DEFAULTS_PATH = Path(__file__).with_name("default_config.toml")
DEEPSPEED_ZERO3_PATH = Path(__file__).with_name("deepspeed_zero3.json")

METHODS = ("tempsamp", "grpo", "sft")
CHOICES = {
    "method": METHODS,
    "schedule.cot": ("hybrid", "plain", "cot"),
    "advantage.control": ("none", "downscale", "anchor", "shaping"),
    "loss.aggregation": ("sequence", "token"),
    "optim.name": ("adamw", "adamw_8bit", "paged_adamw_8bit"),
    "data.frames": ("decode", "render"),
}


def defaults() -> dict:
    """The default configuration (a fresh nested dict)."""
    with open(DEFAULTS_PATH, "rb") as fh:
        return tomllib.load(fh)


def _read_toml(path: Path) -> dict:
    if not path.is_file():
        raise TempbenchError(f"{path}: config file not found", hint="pass an existing TOML file to --config")
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as e:
        raise TempbenchError(f"{path}: invalid TOML: {e}", hint="fix the line named above") from e


def _type_ok(default: Any, value: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, list):
        return isinstance(value, list)
    return True


def _merge(base: dict, new: dict, source: str, prefix: str = "") -> None:
    for key, value in new.items():
        name = f"{prefix}{key}"
        if key not in base:
            known = ", ".join(sorted(base))
            raise TempbenchError(f"{source}: unknown config key {name!r}", hint=f"known keys here: {known}")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise TempbenchError(f"{source}: {name!r} must be a table [{name}]")
            _merge(base[key], value, source, name + ".")
            continue
        if not _type_ok(base[key], value):
            raise TempbenchError(
                f"{source}: config key {name!r} = {value!r} has the wrong type",
                hint=f"expected {type(base[key]).__name__} like the default {base[key]!r}",
            )
        base[key] = float(value) if isinstance(base[key], float) else value


def _nest(overrides: dict) -> dict:
    out: dict = {}
    for key, value in overrides.items():
        if isinstance(value, dict):
            value = _nest(value)
        parts = key.split(".")
        d = out
        for p in parts[:-1]:
            d = d.setdefault(p, {})
        if isinstance(value, dict) and isinstance(d.get(parts[-1]), dict):
            d[parts[-1]].update(value)
        else:
            d[parts[-1]] = value
    return out


def load_config(config: str | Path | dict | None = None, overrides: dict | None = None) -> dict:
    """Defaults <- config file or dict <- overrides; validated. Returns a nested dict."""
    cfg = defaults()
    if isinstance(config, (str, Path)) and str(config):
        path = Path(config)
        _merge(cfg, _read_toml(path), str(path))
    elif isinstance(config, dict):
        _merge(cfg, _nest(copy.deepcopy(config)), "config")
    if overrides:
        _merge(cfg, _nest({k: v for k, v in overrides.items() if v is not None}), "overrides")
    validate(cfg)
    return cfg


def get(cfg: dict, dotted: str) -> Any:
    d: Any = cfg
    for p in dotted.split("."):
        d = d[p]
    return d


def validate(cfg: dict) -> None:
    """Choices and ranges; raises TempbenchError naming the key."""
    for key, choices in CHOICES.items():
        v = get(cfg, key)
        if v not in choices:
            raise TempbenchError(f"config key {key!r} = {v!r} is not one of {', '.join(choices)}")
    positive = ["schedule.epochs", "rollout.max_new_tokens", "optim.batch_size", "optim.grad_accum",
                "loss.updates_per_batch", "log.every", "log.save_steps"]
    for key in positive:
        if get(cfg, key) <= 0:
            raise TempbenchError(f"config key {key!r} must be > 0 (got {get(cfg, key)!r})")
    g = cfg["rollout"]["group_size"]
    if g != 0 and g < 2:
        raise TempbenchError(f"rollout.group_size must be 0 (auto) or >= 2 (got {g})",
                             hint="a group needs at least two rows for a standard deviation")
    for key in ("schedule.max_seconds", "data.workers"):
        if get(cfg, key) < 0:
            raise TempbenchError(f"config key {key!r} must be >= 0 (got {get(cfg, key)!r})")
    if cfg["optim"]["lr"] <= 0:
        raise TempbenchError(f"optim.lr must be > 0 (got {cfg['optim']['lr']})")
    if cfg["rollout"]["temperature"] <= 0:
        raise TempbenchError("rollout.temperature must be > 0 (sampling)")


def group_size(cfg: dict) -> int:
    """G: the configured value, else 8 for Charades-STA and 4 otherwise (paper)."""
    g = int(cfg["rollout"]["group_size"])
    if g:
        return g
    return 8 if str(cfg["task"]).lower().startswith("charades") else 4


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def dump_toml(cfg: dict) -> str:
    """TOML text of a nested dict of scalars/lists (tables after the top-level keys); `tomllib` reads it back."""
    lines: list[str] = []

    def table(d: dict, name: str) -> None:
        scalars = {k: v for k, v in d.items() if not isinstance(v, dict)}
        if name:
            lines.append(f"\n[{name}]")
        for k, v in scalars.items():
            lines.append(f"{k} = {_toml_value(v)}")
        for k, v in d.items():
            if isinstance(v, dict):
                table(v, f"{name}.{k}" if name else k)

    table(cfg, "")
    return "\n".join(lines).lstrip("\n") + "\n"
