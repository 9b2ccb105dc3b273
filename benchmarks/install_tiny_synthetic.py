"""Ship the weights `benchmarks/train_tiny_synthetic.py` made: copy OUT/model.safetensors into the package folder
`tempbench/models/tiny_synthetic/` and pin its sha256 and the prompt it was trained with in `tempbench/models/zoo.py`
(TINY_SYNTHETIC_SHA256, TINY_SYNTHETIC_PROMPT), after
checking the file against the sha256 and size the run recorded in OUT/train_tiny_synthetic.json; the tokenizer,
chat template and config files the model was trained with (recorded whole in that JSON, `package_files`, each with
its sha256) are written beside it. With --docs, the
run's JSON and figure go to docs/results/ as well. Then check on a CPU:

    python benchmarks/install_tiny_synthetic.py OUT [--docs]
    tempbench run --model tiny-synthetic --task synthetic --split heldout
    python -m pytest -q tests/test_tiny_synthetic.py          # the trained model's tests (they skip without weights)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^TINY_SYNTHETIC_SHA256: str \| None = .*$", re.MULTILINE)
PROMPT_PIN = re.compile(r"^TINY_SYNTHETIC_PROMPT: str = .*$", re.MULTILINE)
MAX_BYTES = 10 * 1000 * 1000


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="the --out folder of benchmarks/train_tiny_synthetic.py")
    ap.add_argument("--docs", action="store_true", help="also copy the JSON and curves.png to docs/results/")
    ap.add_argument("--repo", type=Path, default=REPO, help="the checkout to install into (default: this one)")
    args = ap.parse_args(argv)
    package = args.repo / "tempbench" / "models" / "tiny_synthetic"
    zoo = args.repo / "tempbench" / "models" / "zoo.py"
    weights, record = args.out / "model.safetensors", args.out / "train_tiny_synthetic.json"
    for path in (weights, record):
        if not path.is_file():
            return fail(f"{path} not found (is {args.out} the --out folder of train_tiny_synthetic.py?)")
    try:
        res = json.loads(record.read_text())
        info = res["weights"]
    except (ValueError, KeyError) as e:
        return fail(f"{record}: no weights record ({type(e).__name__}: {e})")
    # the tokenizer, template and config files the model was trained with (runs before they were recorded: the
    # shipped ones, unchanged)
    others = res.get("package_files", {})
    for name, entry in others.items():
        if Path(name).name != name or not name.endswith((".json", ".jinja")):
            return fail(f"{record}: package_files names {name!r}, not a tokenizer/config file of the folder")
        if hashlib.sha256(entry["text"].encode("utf-8")).hexdigest() != entry["sha256"]:
            return fail(f"{record}: package_files[{name!r}] does not match its recorded sha256")
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    size = weights.stat().st_size
    if sha != info["sha256"] or size != info["bytes"]:
        return fail(f"{weights} (sha256 {sha}, {size} bytes) is not the file the run recorded "
                    f"(sha256 {info['sha256']}, {info['bytes']} bytes)")
    if size > MAX_BYTES:
        return fail(f"{weights} has {size} bytes; the package data may hold at most {MAX_BYTES}")
    prompt = res.get("args", {}).get("prompt", "tempsamp-r1-plain")  # runs before --prompt: the paper's plain one
    from tempbench.errors import TempbenchError
    from tempbench.prompts import get_prompt

    try:
        get_prompt(str(prompt))
    except TempbenchError:
        return fail(f"{record}: args.prompt {prompt!r} is not a registered prompt (tempbench.prompts)")
    text = zoo.read_text()
    for pin, name in ((PIN, "TINY_SYNTHETIC_SHA256"), (PROMPT_PIN, "TINY_SYNTHETIC_PROMPT")):
        if not pin.search(text):
            return fail(f"{zoo}: the {name} line was not found")
    shutil.copy2(weights, package / "model.safetensors")
    for name, entry in others.items():
        (package / name).write_bytes(entry["text"].encode("utf-8"))
    text = PIN.sub(f'TINY_SYNTHETIC_SHA256: str | None = "{sha}"', text, count=1)
    zoo.write_text(PROMPT_PIN.sub(f'TINY_SYNTHETIC_PROMPT: str = "{prompt}"', text, count=1))
    print(f"installed {package / 'model.safetensors'} ({size / 1e6:.2f} MB)"
          + (f" with {', '.join(sorted(others))}" if others else "")
          + f" and pinned sha256 {sha} and prompt {prompt} in {zoo}")
    if args.docs:
        results = args.repo / "docs" / "results"
        shutil.copy2(record, results / "train_tiny_synthetic.json")
        if (args.out / "curves.png").is_file():
            shutil.copy2(args.out / "curves.png", results / "train_tiny_synthetic_curves.png")
        print(f"copied the run's record and figure to {results}")
    print("check on a CPU: tempbench run --model tiny-synthetic --task synthetic --split heldout")
    return 0


if __name__ == "__main__":
    sys.exit(main())
