"""benchmarks/train_tiny_synthetic.py (the recipe of `tiny-synthetic`) end to end in its CPU smoke mode: data,
`tempbench train`, selection on val, bf16 export, held-out evaluation, the results it writes; then
benchmarks/install_tiny_synthetic.py on a copy of the package folder and zoo."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "train_tiny_synthetic.py"
INSTALL = REPO / "benchmarks" / "install_tiny_synthetic.py"

pytest.importorskip("torch")
pytest.importorskip("av")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    root = tmp_path_factory.mktemp("smoke")
    env = {k: v for k, v in os.environ.items() if k not in ("TEMPBENCH_HOME", "RANK", "WORLD_SIZE", "LOCAL_RANK")}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--out", str(root / "out"), "--work",
                           str(root / "work")], capture_output=True, text=True, env=env, timeout=300, cwd=root)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return root


def test_outputs_are_few_small_files(smoke):
    files = sorted(p.name for p in (smoke / "out").iterdir())
    assert files == ["curves.png", "log.txt", "model.safetensors", "train_log.jsonl.gz", "train_tiny_synthetic.json"]
    assert all((smoke / "out" / f).stat().st_size < 16 << 20 for f in files)


def test_results_record(smoke):
    res = json.loads((smoke / "out" / "train_tiny_synthetic.json").read_text())
    assert res["produced_by"] == "benchmarks/train_tiny_synthetic.py" and res["args"]["smoke"] is True
    assert res["data"]["train"] == {"synthetic": 6, "synthetic-hard": 6}
    assert res["recipe"]["method"] == "sft" and res["recipe"]["data"] == {"workers": 1, "cache": True,
                                                                          "cache_on_device": True, "frames": "decode"}
    picks = res["val"][0]["synthetic-hard"]["picks"]  # which object the val answers land on, per checkpoint
    assert set(picks) == {"target_pct", "first_to_appear_pct", "random_pick_pct"} and 0 < picks["random_pick_pct"] < 100
    cfg = tomllib.loads(res["train"]["config_toml"])  # what `tempbench train` ran with
    assert cfg["optim"]["batch_size"] == 2 and cfg["schedule"]["epochs"] == 2 and cfg["data"]["cache"] is True
    steps = res["train"]["global_step"]
    assert steps == 12 and res["train"]["stopped_early"] is None
    assert len(res["curves"]["loss"]) == steps and res["curves"]["step"][-1] == steps
    assert [v["checkpoint"] for v in res["val"]] == ["checkpoint-6", "checkpoint-12"]
    assert res["selected"]["checkpoint"] in {v["checkpoint"] for v in res["val"]}
    for task in ("synthetic", "synthetic-hard"):
        for v in res["val"]:
            assert v[task]["n"] == 3 and "mIoU" in v[task]["metrics"]
        for split in ("heldout", "test"):
            assert res["model"][task][split]["n"] == 3 and set(res["model"][task][split]["ci95"]) >= {"mIoU"}
        for kind in ("prior", "center"):
            assert res["baselines"][task][kind]["heldout"]["failure_rate"] == 0
        assert res["targets"]["checks"][task]["target"] == {"synthetic": 75.0, "synthetic-hard": 60.0}[task]
    assert set(res["timings"]) >= {"data_s", "train_s", "select_s", "final_eval_s", "total_s"}


def test_weights_are_bf16_and_recorded(smoke):
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file

    res = json.loads((smoke / "out" / "train_tiny_synthetic.json").read_text())
    weights = smoke / "out" / "model.safetensors"
    assert res["weights"]["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert res["weights"]["bytes"] == weights.stat().st_size
    state = load_file(weights)
    assert all(v.dtype == torch.bfloat16 for v in state.values())
    assert sum(v.numel() for v in state.values()) == res["weights"]["parameters"]
    with safe_open(str(weights), "pt") as f:
        meta = f.metadata()
    assert meta["produced_by"] == "benchmarks/train_tiny_synthetic.py" and meta["checkpoint"] == res["selected"][
        "checkpoint"]
    ck = load_file(smoke / "work" / "sft" / res["selected"]["checkpoint"] / "model.safetensors")
    assert all(torch.equal(state[k], v.to(torch.bfloat16)) for k, v in ck.items())


def test_install_ships_the_weights_and_pins_them(smoke, tmp_path):
    repo = tmp_path / "repo"
    (repo / "tempbench" / "models" / "tiny_synthetic").mkdir(parents=True)
    (repo / "docs" / "results").mkdir(parents=True)
    shutil.copy2(REPO / "tempbench" / "models" / "zoo.py", repo / "tempbench" / "models" / "zoo.py")
    out = smoke / "out"
    proc = subprocess.run([sys.executable, str(INSTALL), str(out), "--repo", str(repo), "--docs"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    sha = json.loads((out / "train_tiny_synthetic.json").read_text())["weights"]["sha256"]
    shipped = repo / "tempbench" / "models" / "tiny_synthetic" / "model.safetensors"
    assert hashlib.sha256(shipped.read_bytes()).hexdigest() == sha
    zoo_text = (repo / "tempbench" / "models" / "zoo.py").read_text()
    assert f'TINY_SYNTHETIC_SHA256: str | None = "{sha}"' in zoo_text
    assert 'TINY_SYNTHETIC_PROMPT: str = "tempsamp-r1-plain"' in zoo_text  # the prompt the smoke run trained with
    assert (repo / "docs" / "results" / "train_tiny_synthetic.json").is_file()
    # a weights file that is not the run's is refused, nothing is installed
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    (bad / "model.safetensors").write_bytes(b"x" * 10)
    shipped.unlink()
    proc = subprocess.run([sys.executable, str(INSTALL), str(bad), "--repo", str(repo)], capture_output=True,
                          text=True)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "is not the file the run recorded" in \
        proc.stderr and not shipped.exists()


def test_a_later_stage_starts_from_the_earlier_weights(smoke, tmp_path):
    """--init-weights: the second stage's model starts from the first stage's exported weights (its first loss is
    below the first stage's first loss, from a seeded draw) and the results name those weights by sha256."""
    weights = smoke / "out" / "model.safetensors"
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    env = {k: v for k, v in os.environ.items() if k not in ("TEMPBENCH_HOME", "RANK", "WORLD_SIZE", "LOCAL_RANK")}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--out", str(tmp_path / "out"), "--work",
                           str(tmp_path / "work"), "--init-weights", str(weights), "--init-sha256", digest],
                          capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    first = json.loads((smoke / "out" / "train_tiny_synthetic.json").read_text())
    second = json.loads((tmp_path / "out" / "train_tiny_synthetic.json").read_text())
    assert second["init"] == {"weights": str(weights), "sha256": digest}
    assert first["init"] == {"seed": 0}
    assert second["curves"]["loss"][0] < first["curves"]["loss"][0]


def test_a_later_stage_refuses_weights_of_another_sha256(smoke, tmp_path):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--out", str(tmp_path / "out"),
                           "--init-weights", str(smoke / "out" / "model.safetensors"), "--init-sha256", "0" * 64],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2
    assert "is not --init-sha256 " + "0" * 64 in proc.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "out").exists()


def test_rendered_train_frames_need_no_files(tmp_path):
    """--train-frames render: `tempbench train` renders every train video (data.frames), none is written."""
    proc = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--train-frames", "render", "--out",
                           str(tmp_path / "out"), "--work", str(tmp_path / "work")],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((tmp_path / "out" / "train_tiny_synthetic.json").read_text())
    # two passes: each video rendered once, then kept (a single pass caches nothing: test_recipe_caches_...)
    assert res["recipe"]["data"] == {"workers": 1, "cache": True, "cache_on_device": True, "frames": "render"}
    assert tomllib.loads(res["train"]["config_toml"])["data"]["frames"] == "render"
    assert res["train"]["global_step"] > 0 and all(math.isfinite(x) for x in res["curves"]["loss"])
    assert not list((tmp_path / "work" / "train" / "videos").glob("*.mp4"))


def _script_module():
    spec = importlib.util.spec_from_file_location("train_tiny_synthetic", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_recipe_caches_only_when_videos_are_seen_again(tmp_path):
    mod = _script_module()
    for frames in ("decode", "render"):
        for epochs, cached in ((1, False), (2, True)):
            args = mod.argparse.Namespace(batch=4, epochs=epochs, seed=0, max_train_seconds=0, lr=1e-3,
                                          prompt="tempsamp-r1-plain",
                                          warmup_steps=1, workers=2, train_workers=None, train_frames=frames,
                                          checkpoints=2, smoke=True, scheduler="cosine", weight_decay=0.0,
                                          think="none")
            data = mod.recipe(args, tmp_path / "train.jsonl", tmp_path / "videos", 16)["data"]
            assert data == {"workers": 2, "cache": cached, "cache_on_device": cached, "frames": frames}


def test_recipe_takes_the_schedule_and_weight_decay(tmp_path):
    mod = _script_module()
    args = mod.main.__globals__["argparse"].Namespace(
        batch=4, epochs=10, seed=0, max_train_seconds=0, lr=5e-4, prompt="tempsamp-r1-plain", warmup_steps=150,
        workers=2, train_workers=None, train_frames="render", checkpoints=2, smoke=False,
        scheduler="constant_with_warmup", weight_decay=0.05, think="none")
    optim = mod.recipe(args, tmp_path / "train.jsonl", tmp_path / "videos", 64)["optim"]
    assert optim["scheduler"] == "constant_with_warmup" and optim["weight_decay"] == 0.05
    assert optim["lr"] == 5e-4 and optim["warmup_steps"] == 16  # at most a tenth of the 160 planned steps


def test_query_first_prompt_order_and_word_tokens_travel_with_the_model(tmp_path):
    """--prompt-order query-first --word-tokens --every-object: the init model, every checkpoint and the exported package carry the
    query-first chat template and the tokenizer with one token per object word; the adapter built from the package
    writes the query's tokens before the video's; the results record the package's files whole, and the install
    script writes them beside the weights."""
    proc = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--train-frames", "render", "--prompt-order",
                           "query-first", "--word-tokens", "--every-object", "--out", str(tmp_path / "out"), "--work",
                           str(tmp_path / "work")],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    mod = _script_module()
    package = tmp_path / "work" / "tiny-synthetic"
    assert (package / "chat_template.jinja").read_text() == mod.QUERY_FIRST_CHAT_TEMPLATE
    checkpoints = sorted((tmp_path / "work" / "sft").glob("checkpoint-*"))
    assert checkpoints and all((c / "chat_template.jinja").read_text() == mod.QUERY_FIRST_CHAT_TEMPLATE
                               for c in checkpoints)
    from tempbench.models.qwen.adapter import HFQwenVL

    adapter = HFQwenVL(str(package), dtype="float32")
    text = adapter.chat_text("the red circle appears", with_video=True)
    assert text.index("the red circle appears") < text.index("<|video_pad|>") < text.index("<|im_start|>assistant")
    shipped = hashlib.sha256((REPO / "tempbench" / "models" / "tiny_synthetic" / "chat_template.jinja").read_bytes())
    assert adapter.identity().options["chat_template_sha256"] != shipped.hexdigest()  # another run identity
    for word in mod.TASK_WORDS:
        assert len(adapter.tokenizer.tokenize(" " + word)) == 1, word
    config = json.loads((package / "config.json").read_text())
    assert config["text_config"]["vocab_size"] == len(adapter.tokenizer)
    from safetensors import safe_open

    with safe_open(str(package / "model.safetensors"), "pt") as f:
        rows = {k: f.get_slice(k).get_shape()[0] for k in f.keys() if k.endswith(("embed_tokens.weight", "lm_head.weight"))}
    assert rows and set(rows.values()) == {len(adapter.tokenizer)}
    res = json.loads((tmp_path / "out" / "train_tiny_synthetic.json").read_text())
    # --every-object: each of the 6 synthetic-hard videos once per object (2 or 3)
    assert res["data"]["train"]["synthetic"] == 6 and 12 <= res["data"]["train"]["synthetic-hard"] <= 18
    files = {p.name for p in package.iterdir() if p.name != "model.safetensors"}
    assert set(res["package_files"]) == files >= {"tokenizer.json", "config.json", "chat_template.jinja"}
    for name, entry in res["package_files"].items():
        assert entry["text"].encode() == (package / name).read_bytes()
        assert entry["sha256"] == hashlib.sha256((package / name).read_bytes()).hexdigest()
    repo = tmp_path / "repo"
    (repo / "tempbench" / "models" / "tiny_synthetic").mkdir(parents=True)
    shutil.copy2(REPO / "tempbench" / "models" / "zoo.py", repo / "tempbench" / "models" / "zoo.py")
    proc = subprocess.run([sys.executable, str(INSTALL), str(tmp_path / "out"), "--repo", str(repo)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    installed = repo / "tempbench" / "models" / "tiny_synthetic"
    for name in files:
        assert (installed / name).read_bytes() == (package / name).read_bytes(), name
    # a recorded file that is not what its sha256 says is refused
    res["package_files"]["tokenizer.json"]["text"] += " "
    bad = tmp_path / "bad"
    shutil.copytree(tmp_path / "out", bad)
    (bad / "train_tiny_synthetic.json").write_text(json.dumps(res))
    proc = subprocess.run([sys.executable, str(INSTALL), str(bad), "--repo", str(repo)], capture_output=True,
                          text=True)
    assert proc.returncode == 2 and "does not match its recorded sha256" in proc.stderr


def test_train_records_are_the_cards_and_the_hard_filter_keeps_colour_queries():
    """The recipe's train records are the ones `synthetic.generate` writes for the first N videos of the train seed;
    --hard-filter two-colour keeps the first N videos whose query names one of two objects by colour alone."""
    import tempfile

    from tempbench.synthetic import draw_scene
    from tempbench.tasks import synthetic

    mod = _script_module()
    settings = synthetic.settings("synthetic-hard")
    seed = synthetic.TASKS["synthetic-hard"]["splits"]["train"]["seed"]
    info = synthetic.generate(Path(tempfile.mkdtemp()), "train", "synthetic-hard", n_videos=20, videos=False)
    assert info["records"] == [draw_scene(settings, seed, i)[0].record(i) for i in range(20)]
    def by_colour(i):
        return draw_scene(settings, seed, i)[0].query.endswith(" object appears")

    def two(i):
        return len(draw_scene(settings, seed, i)[0].objects) == 2

    kept = mod.filtered_videos(settings, seed, 10, "two-colour")
    assert kept == [i for i in range(kept[-1] + 1) if by_colour(i) and two(i)] and len(kept) == 10  # the first 10
    for i in kept:
        assert len({o.colour for o in draw_scene(settings, seed, i)[0].objects}) == 2
    some = mod.filtered_videos(settings, seed, 30, "colour")
    assert some == [i for i in range(some[-1] + 1) if by_colour(i)] and len(some) == 30
    assert not all(two(i) for i in some)  # colour keeps three-object videos as well


def test_think_recipe_trains_the_cot_prompt_on_each_records_description(tmp_path):
    mod = _script_module()
    args = mod.argparse.Namespace(
        batch=4, epochs=2, seed=0, max_train_seconds=0, lr=5e-4, prompt="tempsamp-r1-cot", warmup_steps=1,
        workers=2, train_workers=None, train_frames="render", checkpoints=2, smoke=False, scheduler="cosine",
        weight_decay=0.0, think="objects-marked")
    cfg = mod.recipe(args, tmp_path / "train.jsonl", tmp_path / "videos", 16)
    assert cfg["schedule"]["cot"] == "cot" and cfg["schedule"]["cot_prompt"] == "tempsamp-r1-cot"
    assert "plain_prompt" not in cfg["schedule"] and cfg["rollout"] == {"gt_think_field": "think"}


def test_think_text_marks_the_object_each_record_names():
    from tempbench.synthetic import draw_scene, parse_description
    from tempbench.tasks import synthetic

    mod = _script_module()
    seed = synthetic.TASKS["synthetic-hard"]["splits"]["train"]["seed"]
    for i in range(12):
        scene = draw_scene(synthetic.settings("synthetic-hard"), seed, i)[0]
        assert mod.think_text(scene, scene.record(0), "objects") == scene.description()
        for row in scene.object_records(0):  # --every-object: each row names another object
            entries = parse_description(mod.think_text(scene, row, "objects-marked"))
            yes = [e for e in entries if e.mark == "yes"]
            assert len(yes) == 1 and [yes[0].start, yes[0].end] == [round(x, 2) for x in row["windows"][0]]


def test_think_needs_a_cot_prompt(tmp_path):
    for extra in (["--think", "objects"], ["--prompt", "tempsamp-r1-cot"]):
        proc = subprocess.run([sys.executable, str(SCRIPT), "--smoke", *extra, "--out", str(tmp_path / "o")],
                              capture_output=True, text=True, timeout=300, cwd=REPO)
        assert proc.returncode == 2 and "CoT prompt" in proc.stderr.splitlines()[-1]
