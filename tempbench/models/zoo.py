"""Registry of known checkpoints: aliases, hub ids, base model, recommended prompt and video settings, and the
numbers their papers report (with citations). `verified` says whether the hub id was confirmed from the authors'
own repository; unverified entries carry the reason.

Reported numbers are percentages as printed in the cited source; `setting` says zero-shot or fine-tuned per task
(a model fine-tuned on a task's train split is "fine-tuned" for that task).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tempbench.errors import TempbenchError, UsageError

TEMPSAMP_VIDEO = {"fps": 2.0, "total_pixels": 3584 * 28 * 28, "min_pixels": 16 * 28 * 28}
TEMPSAMP_CITE = "TempSamp-R1 (Li et al., NeurIPS 2025, arXiv 2509.18056), Tab. 1"
# TimeLens's evaluation of Qwen3-VL / TimeLens-8B (evaluation/utils.py, scripts/eval_timelens_bench.sh defaults):
# qwen-vl-utils 0.0.14 with image_patch_size=16, fps 2, min_pixels 64*28*28, total_pixels 14336*28*28 (28, not 32,
# as written there); max_pixels left to qwen-vl-utils (768 tokens of 32x32 per frame)
QWEN3_TIMELENS_VIDEO = {"fps": 2.0, "min_pixels": 64 * 28 * 28, "max_pixels": 768 * 32 * 32,
                        "total_pixels": 14336 * 28 * 28}
TIMELENS_CITE = "TimeLens (Zhang et al., CVPR 2026, arXiv 2512.14698), github.com/TencentARC/TimeLens README"
QWEN3_VL_8B_REPORTED = {
    "charades-timelens": {"R1@0.3": 69.2, "R1@0.5": 53.4, "R1@0.7": 27.5, "mIoU": 48.3, "source": TIMELENS_CITE},
    "activitynet-timelens": {"R1@0.3": 62.1, "R1@0.5": 51.2, "R1@0.7": 34.4, "mIoU": 46.8, "source": TIMELENS_CITE},
    "qvhighlights-timelens": {"R1@0.3": 74.2, "R1@0.5": 64.6, "R1@0.7": 49.3, "mIoU": 59.4, "source": TIMELENS_CITE},
}
ZERO_SHOT_ALL = {t: "zero-shot" for t in ("charades", "anet", "qvhighlights", "charades-timelens",
                                          "activitynet-timelens", "qvhighlights-timelens")}
TINY3_VIDEO = {"fps": 2.0, "min_pixels": 32 * 32, "max_pixels": 64 * 64, "total_pixels": 16 * 64 * 64}
PACKAGE_MODELS = Path(__file__).resolve().parent
# sha256 of tempbench/models/tiny_synthetic/model.safetensors and the prompt it was trained with: both set by
# benchmarks/install_tiny_synthetic.py
TINY_SYNTHETIC_SHA256: str | None = "90e703f0163074064927dd22e6ecee03fd170f7f64e5dd659a9158f89b1adf63"
TINY_SYNTHETIC_PROMPT: str = "tempsamp-r1-cot"
BUILD_TINY_SYNTHETIC = ("train it on one GPU with `python benchmarks/train_tiny_synthetic.py --out OUT`, then "
                        "`python benchmarks/install_tiny_synthetic.py OUT` (docs/training.md); "
                        "tiny-qwen2.5-vl is the random-weight model")


@dataclass(frozen=True)
class ZooEntry:
    alias: str
    hub_id: str | None
    title: str
    base_model: str | None
    prompt: str | None
    video: dict = field(default_factory=dict)
    setting: dict = field(default_factory=dict)  # task -> "zero-shot" | "fine-tuned"
    reported: dict = field(default_factory=dict)  # task -> {metric: value, "source": citation}
    verified: bool = False
    verified_from: str = ""
    reason: str = ""
    aliases: tuple[str, ...] = ()
    local_builder: str | None = None  # "tiny" / "tiny3:FAMILY": built locally (random weights); "package": shipped
    package_dir: str | None = None  # "package": folder under tempbench/models/ holding the model files
    weights_sha256: str | None = None  # "package": sha256 of its model.safetensors, checked at load

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


ZOO: list[ZooEntry] = [
    ZooEntry(
        alias="qwen2.5-vl-7b",
        hub_id="Qwen/Qwen2.5-VL-7B-Instruct",
        title="Qwen2.5-VL-7B-Instruct",
        base_model=None,
        prompt="tempsamp-r1-plain",
        video=TEMPSAMP_VIDEO,
        setting={"charades": "zero-shot", "anet": "zero-shot", "qvhighlights": "zero-shot"},
        reported={
            "charades": {"mIoU": 49.7, "R1@0.3": 73.4, "R1@0.5": 54.4, "R1@0.7": 30.3,
                         "source": TEMPSAMP_CITE + " (zero-shot, via lmms-eval)"},
            "anet": {"mIoU": 33.1, "R1@0.3": 45.2, "R1@0.5": 29.7, "R1@0.7": 18.1,
                     "source": TEMPSAMP_CITE + " (zero-shot, via lmms-eval, val_2)"},
            "qvhighlights": {"HD-mAP": 19.7, "HIT@1": 34.1, "source": TEMPSAMP_CITE + " (zero-shot)"},
        },
        verified=True,
        verified_from="Qwen's official model (config values checked against tempbench.models.qwen.tiny.qwen2_5_vl_7b_config)",
        aliases=("qwen2.5-vl-7b-instruct", "Qwen2.5-VL-7B-Instruct"),
    ),
    ZooEntry(
        alias="qwen2-vl-7b",
        hub_id="Qwen/Qwen2-VL-7B-Instruct",
        title="Qwen2-VL-7B-Instruct",
        base_model=None,
        prompt="tempsamp-r1-plain",
        video=TEMPSAMP_VIDEO,
        setting={"charades": "zero-shot", "anet": "zero-shot", "qvhighlights": "zero-shot"},
        verified=True,
        verified_from="Qwen's official model",
        aliases=("qwen2-vl-7b-instruct", "Qwen2-VL-7B-Instruct"),
    ),
    ZooEntry(
        alias="timezero-charades-7b",
        hub_id="wwwyyy/TimeZero-Charades-7B",
        title="TimeZero-7B (Charades-STA)",
        base_model="Qwen/Qwen2.5-VL-7B-Instruct",
        prompt="timezero-cot",
        video={"fps": 2.0, "total_pixels": 3584 * 28 * 28, "min_pixels": 16 * 28 * 28},
        setting={"charades": "fine-tuned"},
        reported={"charades": {"R1@0.3": 83.3, "R1@0.5": 72.5, "R1@0.7": 47.9,
                               "source": "TimeZero (Wang et al., arXiv 2503.13377v1), README results table"}},
        verified=True,
        verified_from="github.com/www-Ye/TimeZero README (model badge links)",
        aliases=("timezero", "timezero-charades"),
    ),
    ZooEntry(
        alias="timezero-activitynet-7b",
        hub_id="wwwyyy/TimeZero-ActivityNet-7B",
        title="TimeZero-7B (ActivityNet Captions)",
        base_model="Qwen/Qwen2.5-VL-7B-Instruct",
        prompt="timezero-cot",
        video={"fps": 2.0, "total_pixels": 3584 * 28 * 28, "min_pixels": 16 * 28 * 28},
        setting={"anet": "fine-tuned"},
        reported={"anet": {"R1@0.3": 68.6, "R1@0.5": 47.3, "R1@0.7": 26.9,
                           "source": "TimeZero (Wang et al., arXiv 2503.13377v1), README results table"}},
        verified=True,
        verified_from="github.com/www-Ye/TimeZero README (model badge links)",
        aliases=("timezero-anet", "timezero-activitynet"),
    ),
    ZooEntry(
        alias="time-r1-7b",
        hub_id="Boshenxx/Time-R1-7B",
        title="Time-R1-7B (TimeRFT post-trained)",
        base_model="Qwen/Qwen2.5-VL-7B-Instruct",
        prompt="time-r1-cot",
        video={"fps": 2.0},
        setting={"charades": "zero-shot", "anet": "zero-shot"},
        reported={
            "charades": {"R1@0.3": 78.1, "R1@0.5": 60.8, "R1@0.7": 35.3,
                         "source": "Time-R1 (Wang et al., arXiv 2503.13377v2), github.com/xiaomi-research/time-r1 README (zero-shot)"},
            "anet": {"R1@0.3": 58.6, "R1@0.5": 39.0, "R1@0.7": 21.4,
                     "source": "Time-R1 (Wang et al., arXiv 2503.13377v2), github.com/xiaomi-research/time-r1 README (zero-shot)"},
        },
        verified=True,
        verified_from="github.com/xiaomi-research/time-r1 README (model badge links)",
        reason="video settings not checked against the authors' evaluation script (fps 2 assumed)",
        aliases=("time-r1",),
    ),
    ZooEntry(
        alias="videochat-r1-7b",
        hub_id="OpenGVLab/VideoChat-R1_7B",
        title="VideoChat-R1-7B",
        base_model="Qwen/Qwen2.5-VL-7B-Instruct",
        prompt="tempsamp-r1-plain",
        video=TEMPSAMP_VIDEO,
        setting={"charades": "fine-tuned"},
        reported={"charades": {"mIoU": 60.8, "R1@0.5": 71.7, "R1@0.7": 50.2, "source": TEMPSAMP_CITE}},
        verified=True,
        verified_from="github.com/OpenGVLab/VideoChat-R1 README (links huggingface.co/OpenGVLab/VideoChat-R1_7B)",
        reason="the authors' own grounding prompt is not registered; tempsamp-r1-plain is a stand-in",
        aliases=("videochat-r1",),
    ),
    *[ZooEntry(
        alias=f"qwen3-vl-{size.lower()}" + ("-thinking" if kind == "Thinking" else ""),
        hub_id=f"Qwen/Qwen3-VL-{size}-{kind}",
        title=f"Qwen3-VL-{size}-{kind}",
        base_model=None,
        prompt="timelens",
        video=QWEN3_TIMELENS_VIDEO,
        setting=ZERO_SHOT_ALL,
        reported=QWEN3_VL_8B_REPORTED if (size, kind) == ("8B", "Instruct") else {},
        verified=True,
        verified_from="github.com/QwenLM/Qwen3-VL README (News links to the Hugging Face model)",
        reason="video settings: TimeLens's evaluation of Qwen3-VL (fps 2, 64 min / 14336 total tokens of 28x28)",
        aliases=(f"Qwen3-VL-{size}-{kind}".lower(),),
    ) for size in ("2B", "4B", "8B") for kind in ("Instruct", "Thinking")],
    ZooEntry(
        alias="qwen3-vl-30b-a3b",
        hub_id="Qwen/Qwen3-VL-30B-A3B-Instruct",
        title="Qwen3-VL-30B-A3B-Instruct (MoE, qwen3_vl_moe)",
        base_model=None,
        prompt="timelens",
        video=QWEN3_TIMELENS_VIDEO,
        setting=ZERO_SHOT_ALL,
        verified=True,
        verified_from="github.com/QwenLM/Qwen3-VL README (News links to the Hugging Face model)",
        aliases=("qwen3-vl-30b-a3b-instruct",),
    ),
    *[ZooEntry(
        alias=f"qwen3.5-{size.lower()}",
        hub_id=f"Qwen/Qwen3.5-{size}",
        title=f"Qwen3.5-{size}" + (" (MoE, qwen3_5_moe)" if "A" in size else ""),
        base_model=None,
        prompt="timelens",
        video=QWEN3_TIMELENS_VIDEO,
        setting=ZERO_SHOT_ALL,
        verified=False,
        reason="hub id as Qwen named the Qwen3.5 release (0.8B, 2B, 4B, 9B, 27B, 35B-A3B; transformers documents "
               "Qwen/Qwen3.5-27B); not confirmed from a Qwen-owned page here. Video settings: those of Qwen3-VL "
               "(qwen-vl-utils with image_patch_size 16), not checked against a Qwen3.5 grounding evaluation",
        aliases=(f"Qwen3.5-{size}".lower(),),
    ) for size in ("0.8B", "2B", "4B", "9B", "27B", "35B-A3B")],
    ZooEntry(
        alias="timelens-8b",
        hub_id="TencentARC/TimeLens-8B",
        title="TimeLens-8B (Qwen3-VL-8B, SFT + GRPO on TimeLens-100K)",
        base_model="Qwen/Qwen3-VL-8B-Instruct",
        prompt="timelens",
        video=QWEN3_TIMELENS_VIDEO,
        setting=ZERO_SHOT_ALL,
        reported={
            "charades-timelens": {"R1@0.3": 76.6, "R1@0.5": 63.0, "R1@0.7": 35.2, "mIoU": 55.2,
                                  "source": TIMELENS_CITE},
            "activitynet-timelens": {"R1@0.3": 68.9, "R1@0.5": 58.4, "R1@0.7": 40.6, "mIoU": 53.2,
                                     "source": TIMELENS_CITE},
            "qvhighlights-timelens": {"R1@0.3": 80.2, "R1@0.5": 71.6, "R1@0.7": 55.5, "mIoU": 65.5,
                                      "source": TIMELENS_CITE},
        },
        verified=True,
        verified_from="github.com/TencentARC/TimeLens README (model zoo links)",
        reason="reported numbers are on TimeLens-Bench (re-annotated Charades/ActivityNet/QVHighlights), not the "
               "original splits; trained on TimeLens-100K, so zero-shot for the original benchmarks",
        aliases=("timelens",),
    ),
    ZooEntry(
        alias="tempsamp-r1-7b-sta",
        hub_id="sdzt/TempSamp-R1-7B-STA",
        title="TempSamp-R1-7B (Charades-STA), unofficial upload",
        base_model="Qwen/Qwen2.5-VL-7B-Instruct",
        prompt="tempsamp-r1-cot",
        video=TEMPSAMP_VIDEO,
        setting={"charades": "fine-tuned"},
        reported={"charades": {"mIoU": 62.1, "R1@0.3": 83.6, "R1@0.5": 74.1, "R1@0.7": 52.9,
                               "source": TEMPSAMP_CITE + " (CoT prompt)"}},
        verified=False,
        reason="not linked by the paper or the authors' repository; no model card; owner unverified",
        aliases=("tempsamp-r1",),
    ),
    ZooEntry(
        alias="tiny-qwen2.5-vl",
        hub_id=None,
        title="tiny Qwen2.5-VL (random weights, built locally) for tests",
        base_model=None,
        prompt="tempsamp-r1-plain",
        video={"fps": 2.0, "min_pixels": 28 * 28, "max_pixels": 56 * 56, "total_pixels": 16 * 56 * 56},
        setting={"synthetic": "zero-shot", "synthetic-hard": "zero-shot"},
        verified=True,
        verified_from="built by tempbench.models.qwen.tiny.build_tiny_qwen2_5_vl (seed 0)",
        local_builder="tiny",
        aliases=("tiny",),
    ),
    ZooEntry(
        alias="tiny-synthetic",
        hub_id=None,
        title="tiny-synthetic: a 4.4 M-parameter Qwen2.5-VL trained here on synthetic + synthetic-hard (bf16)",
        base_model=None,
        prompt=TINY_SYNTHETIC_PROMPT,
        video=TEMPSAMP_VIDEO,
        setting={"synthetic": "fine-tuned", "synthetic-hard": "fine-tuned"},
        verified=True,
        verified_from="trained by benchmarks/train_tiny_synthetic.py (SFT with `tempbench train`, seed 0); "
                      "shipped as package data, weights sha256 pinned here",
        local_builder="package",
        package_dir="tiny_synthetic",
        weights_sha256=TINY_SYNTHETIC_SHA256,
    ),
]

# random-weight Qwen3-VL / Qwen3.5 models built locally (tempbench.models.qwen.tiny3) for tests and demos
ZOO += [
    ZooEntry(
        alias=alias,
        hub_id=None,
        title=f"tiny {title} (random weights, built locally) for tests",
        base_model=None,
        prompt="tempsamp-r1-plain",
        video=TINY3_VIDEO,
        setting={"synthetic": "zero-shot", "synthetic-hard": "zero-shot"},
        verified=True,
        verified_from=f"built by tempbench.models.qwen.tiny3.build_tiny_qwen3(family={family!r}, seed 0)",
        local_builder=f"tiny3:{family}",
    ) for alias, family, title in (("tiny-qwen3-vl", "qwen3_vl", "Qwen3-VL"), ("tiny-qwen3.5", "qwen3_5", "Qwen3.5"))
]

_INDEX: dict[str, ZooEntry] = {}
for _e in ZOO:
    for _name in (_e.alias, *_e.aliases, *( [_e.hub_id] if _e.hub_id else [])):
        _INDEX[_name.lower()] = _e


def find(name: str) -> ZooEntry | None:
    """The zoo entry for an alias or a registered hub id (case-insensitive), else None."""
    return _INDEX.get(name.lower())


def get(name: str) -> ZooEntry:
    entry = find(name)
    if entry is None:
        raise UsageError(f"{name!r} is not in the model zoo", hint="known: " + ", ".join(e.alias for e in ZOO))
    return entry


def package_model_dir(entry: ZooEntry) -> Path:
    """The folder of a model shipped as package data, after checking its weights against the pinned sha256."""
    from tempbench.io import sha256_file

    folder = PACKAGE_MODELS / str(entry.package_dir)
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise TempbenchError(f"{entry.alias}: its trained weights are not in this install ({weights} is absent)",
                             BUILD_TINY_SYNTHETIC)
    if not entry.weights_sha256:
        raise TempbenchError(f"{entry.alias}: {weights} is there but no sha256 is pinned for it in "
                             "tempbench/models/zoo.py", BUILD_TINY_SYNTHETIC)
    actual = sha256_file(weights)
    if actual != entry.weights_sha256:
        raise TempbenchError(f"{entry.alias}: {weights} has sha256 {actual}, the zoo pins {entry.weights_sha256}",
                             "reinstall tempbench, or " + BUILD_TINY_SYNTHETIC)
    return folder


def resolve_local(entry: ZooEntry) -> str:
    """The model reference to load for an entry: its hub id, or the folder of a locally built or shipped model."""
    if entry.local_builder == "tiny":
        from tempbench.models.qwen.tiny import tiny_model_dir

        return str(tiny_model_dir(0))
    if entry.local_builder and entry.local_builder.startswith("tiny3:"):
        from tempbench.models.qwen.tiny3 import tiny3_model_dir

        return str(tiny3_model_dir(entry.local_builder.split(":", 1)[1], 0))
    if entry.local_builder == "package":
        return str(package_model_dir(entry))
    if entry.hub_id is None:  # pragma: no cover - every entry has one or the other
        raise UsageError(f"zoo entry {entry.alias} has no hub id")
    return entry.hub_id
