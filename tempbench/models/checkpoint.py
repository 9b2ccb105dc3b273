"""A model checkpoint on disk: resolve a folder or hub id, read its model type, and fingerprint its bytes.

`weights_fingerprint(folder)` is what a run's identity names (`RunConfig.model.weights`): a sha256 over the names,
sizes and contents of the files inference reads (weights, config, tokenizer, chat template, processor configs,
remote code), not over training state (optimizer, trainer_state.json, train_config.toml, subfolders). Each file:

- under `FULL_HASH_BYTES` (256 MiB): its full sha256;
- in a Hugging Face cache snapshot, a file linked to `blobs/<64 hex>`: that name, which is the sha256 of its
  content (the LFS object id), read without reading the file;
- otherwise, for safetensors: the whole header plus the first and last 4 KiB of every tensor and 16 fixed blocks
  of 64 KiB spread over the file; for other formats: the first and the last MiB and 64 fixed blocks of 64 KiB.
  A fine-tuning step moves (nearly) every parameter, so two checkpoints of one training run differ.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
from pathlib import Path

from tempbench.errors import TempbenchError

FULL_HASH_BYTES = 256 << 20
BLOCK = 64 << 10
TENSOR_EDGE = 4 << 10
INFERENCE_FILES = ("*.safetensors", "*.bin", "*.json", "*.jinja", "*.model", "*.txt", "*.tiktoken", "*.py")
TRAINING_FILES = ("trainer_state.json", "training_args.bin", "optimizer*", "scheduler*", "rng_state*",
                  "train_config.*", "README*", "*.log")
_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def resolve_model_path(model: str, revision: str | None = None, allow_download: bool = False) -> Path:
    """A local folder as is; otherwise a Hugging Face hub id resolved to its snapshot folder in the local cache.

    With `allow_download=False` (default) nothing is fetched: the model must already be in the HF cache.
    """
    p = Path(model).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise TempbenchError(f"{p}: not a model folder (no config.json)", hint="point --model at a HF model folder")
        return p.resolve()
    if model.startswith((".", "/", "~")) or model.count("/") != 1:
        raise TempbenchError(
            f"model {model!r} is neither a local folder nor a Hugging Face hub id (owner/name)",
            hint="the zoo aliases are listed in docs/models.md",
        )
    try:
        from huggingface_hub import snapshot_download
    except ImportError as e:  # pragma: no cover - huggingface_hub ships with transformers
        raise TempbenchError("huggingface_hub is not installed", hint="pip install 'tempbench[hf]'") from e
    try:
        return Path(snapshot_download(model, revision=revision, local_files_only=not allow_download))
    except Exception as e:
        hint = (f"download it first (`hf download {model}`), then run again" if not allow_download
                else "check the hub id, your network and HF_TOKEN")
        raise TempbenchError(f"model {model!r} is not available locally: {type(e).__name__}: {e}", hint=hint) from e


def hub_revision(path: Path) -> str | None:
    """The hub commit when `path` is a hub-cache snapshot folder (`.../snapshots/<sha>/`), else None."""
    return path.name if _COMMIT_RE.match(path.name) and path.parent.name == "snapshots" else None


def read_model_type(path: Path) -> str | None:
    try:
        return json.loads((path / "config.json").read_text()).get("model_type")
    except (OSError, ValueError) as e:
        raise TempbenchError(f"{path / 'config.json'}: unreadable ({e})") from e


def inference_files(folder: Path) -> list[Path]:
    """The top-level files of a model folder that inference reads (see the module docstring), sorted by name."""
    out = []
    for p in sorted(Path(folder).iterdir()):
        name = p.name
        if not p.is_file() or not any(fnmatch.fnmatch(name, g) for g in INFERENCE_FILES):
            continue
        if any(fnmatch.fnmatch(name, g) for g in TRAINING_FILES):
            continue
        out.append(p)
    return out


def _blob_sha256(path: Path) -> str | None:
    """The content sha256 a Hugging Face cache blob is named by, for a snapshot file linked to `blobs/<sha256>`."""
    if path.is_symlink():
        target = Path(os.readlink(path))
        if target.parent.name == "blobs" and _SHA256_RE.match(target.name):
            return target.name
    return None


def _sampled(fh, size: int, h) -> None:
    """The first and the last MiB of the file, and 64 fixed blocks spread over it."""
    edge = min(1 << 20, size)
    reads = {0: edge, size - edge: edge}
    for i in range(64):
        reads.setdefault(max(size - BLOCK, 0) * i // 63, BLOCK)
    for offset in sorted(reads):
        fh.seek(offset)
        h.update(fh.read(reads[offset]))


def _sampled_safetensors(fh, size: int, h) -> None:
    n = int.from_bytes(fh.read(8), "little")
    if not 0 < n < min(size, 1 << 30):
        fh.seek(0)
        _sampled(fh, size, h)
        return
    header = fh.read(n)
    h.update(header)
    base = 8 + n
    try:
        tensors = json.loads(header)
    except ValueError:
        tensors = {}
    for name in sorted(k for k in tensors if k != "__metadata__"):
        start, end = tensors[name].get("data_offsets", (0, 0))
        length = end - start
        fh.seek(base + start)
        h.update(fh.read(min(TENSOR_EDGE, length)))
        if length > TENSOR_EDGE:
            fh.seek(base + end - TENSOR_EDGE)
            h.update(fh.read(TENSOR_EDGE))
    for i in range(16):
        fh.seek(base + max(size - base - BLOCK, 0) * i // 15)
        h.update(fh.read(BLOCK))


def weights_fingerprint(folder: str | os.PathLike) -> str:
    """`sha256:<hex>` over the inference files of a model folder (module docstring)."""
    folder = Path(folder)
    h = hashlib.sha256()
    for f in inference_files(folder):
        size = f.stat().st_size
        h.update(f"{f.name}\0{size}\0".encode())
        blob = _blob_sha256(f)
        if blob is not None:
            h.update(f"blob:{blob}".encode())
            continue
        with open(f, "rb") as fh:
            if size < FULL_HASH_BYTES:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            elif f.suffix == ".safetensors":
                _sampled_safetensors(fh, size, h)
            else:
                _sampled(fh, size, h)
        h.update(b"\0")
    return "sha256:" + h.hexdigest()


__all__ = ["hub_revision", "inference_files", "read_model_type", "resolve_model_path", "weights_fingerprint"]
