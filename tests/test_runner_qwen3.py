"""`tempbench run` end to end on CPU with the tiny random-weight Qwen3-VL and Qwen3.5 models (zoo aliases
`tiny-qwen3-vl`, `tiny-qwen3.5`) on the synthetic task (real mp4 files decoded by PyAV), then `tempbench score`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from tempbench.cli import main

N_SYNTH = 16


@pytest.fixture(scope="session")
def tiny3_models(tmp_path_factory) -> dict[str, Path]:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tempbench.models.qwen.tiny3 import tiny3_model_dir

    cache = tmp_path_factory.mktemp("tiny3-models")
    return {fam: tiny3_model_dir(fam, 0, cache_dir=cache) for fam in ("qwen3_vl", "qwen3_5")}


@pytest.fixture
def home3(tb_home, synthetic_split, tiny3_models, monkeypatch) -> Path:
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    (tb_home / "synthetic").mkdir(parents=True)
    (tb_home / "synthetic" / "test").symlink_to(synthetic_split, target_is_directory=True)
    (tb_home / "models").mkdir()
    for path in tiny3_models.values():
        (tb_home / "models" / path.name).symlink_to(path, target_is_directory=True)
    return tb_home


@pytest.mark.parametrize("alias, model_type", [("tiny-qwen3-vl", "qwen3_vl"), ("tiny-qwen3.5", "qwen3_5")])
def test_run_and_score_end_to_end(home3, tmp_path, alias, model_type):
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["run", "--model", alias, "--task", "synthetic", "--out", str(out),
                                    "--gen", "max_new_tokens=6", "--no-progress", "--batch-size", "4"])
    assert res.exit_code == 0, res.output
    assert f"{N_SYNTH} predictions" in res.output
    info = json.loads((out / "run.json").read_text())
    mi = info["model"]
    assert mi["model_type"] == model_type and mi["backend"] == "transformers"
    assert mi["info"]["time_convention"] == "text-timestamps"
    assert mi["options"]["layout"] == "release" and mi["options"]["timestamps"] == "frame-indices"
    assert mi["options"]["rope_index"] == "reference" and mi["weights"].startswith("sha256:")
    assert info["outcome"]["status"] == "finished" and info["outcome"]["coverage"]["errors"] == 0
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["qid"] for r in rows] == list(range(N_SYNTH)) and all("output" in r for r in rows)
    # tempbench score reads the run.json next to the predictions
    res = CliRunner().invoke(main, ["score", str(out / "predictions.jsonl"), "--json"])
    assert res.exit_code == 0, res.output
    result = json.loads(res.output[res.output.index("{"):])
    assert result["n"] == N_SYNTH and set(result["metrics"]) == {"R1@0.3", "R1@0.5", "R1@0.7", "mIoU"}
    assert result["run"]["model"]["model_type"] == model_type


def test_the_markers_of_a_run_are_the_videos_own(home3, tmp_path, monkeypatch):
    """The prompt each query's video gets carries that video's times (decoded in the prefetch workers)."""
    import numpy as np

    from tempbench.models import load_model
    from tempbench.models.base import ModelInput
    from tempbench.models.qwen.timestamps import index_timestamps
    from tempbench.video import VideoSettings, decode_video

    a = load_model("tiny-qwen3-vl", video_settings=VideoSettings.from_dict(
        {"fps": 2.0, "min_pixels": 32 * 32, "max_pixels": 64 * 64, "total_pixels": 16 * 64 * 64}))
    videos = sorted((home3 / "synthetic" / "test").glob("*.mp4"))[:3]
    for path in videos:
        clip = decode_video(path, a.video_settings)
        ids = a.build_inputs([ModelInput(a.prepare_video(clip), "x", 0)])["input_ids"][0]
        text = a.tokenizer.decode(ids)
        want = [f"<{t:.1f} seconds>" for t in index_timestamps(clip.indices, clip.source_fps)]
        assert all(m in text for m in want) and text.count(" seconds>") == len(want)
        assert float(want[-1][1:-9]) == pytest.approx(np.mean(clip.indices[-2:]) / clip.source_fps, abs=0.051)
    a.close()
    assert os.environ.get("TEMPBENCH_HOME") == str(home3)


def test_prompt_file_end_to_end_lands_in_the_provenance(home3, tmp_path, monkeypatch):
    """`--prompt FILE`: a template with {query} and {duration}; its text reaches the model, its path and sha256 are
    in run.json and in the result's provenance."""
    import hashlib

    from tempbench.models.qwen.adapter import HFQwenVL

    template = "Video of {duration} s. When does this happen: {query}? Answer as 'S to E'."
    pfile = tmp_path / "my_prompt.txt"
    pfile.write_text(template, encoding="utf-8")
    seen: list[str] = []
    real = HFQwenVL.row  # every query's token row is built here, by both decoders (stock and shared-prefix)

    def spy(self, item, video):
        seen.append(item.prompt)
        return real(self, item, video)

    monkeypatch.setattr(HFQwenVL, "row", spy)
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["run", "--model", "tiny-qwen3-vl", "--task", "synthetic", "--out", str(out),
                                    "--prompt", str(pfile), "--limit", "2", "--gen", "max_new_tokens=4",
                                    "--no-progress", "--prefetch", "thread"])
    assert res.exit_code == 0, res.output
    sha = hashlib.sha256(template.encode()).hexdigest()
    info = json.loads((out / "run.json").read_text())
    assert info["prompt"] == str(pfile) and info["prompt_sha256"] == sha
    result = json.loads((out / "result.json").read_text())
    assert result["run"]["prompt"] == str(pfile) and result["run"]["prompt_sha256"] == sha
    anns = [json.loads(x) for x in (home3 / "synthetic" / "test" / "annotations.jsonl").read_text().splitlines()]
    assert seen == [f"Video of {a['duration']:.2f} s. When does this happen: {a['query']}? Answer as 'S to E'."
                    for a in anns[:2]]
    # a changed template is another run: refused in the same folder
    pfile.write_text(template + " Be precise.", encoding="utf-8")
    res = CliRunner().invoke(main, ["run", "--model", "tiny-qwen3-vl", "--task", "synthetic", "--out", str(out),
                                    "--prompt", str(pfile), "--limit", "2", "--no-progress"])
    assert res.exit_code == 2 and "prompt_sha256" in res.output


def test_model_options_dtype_and_attention_land_in_the_identity(home3, tmp_path):
    from tempbench.runner import run

    s = run("tiny-qwen3.5", "synthetic", out_dir=tmp_path / "a", limit=1, generation={"max_new_tokens": 2},
            progress=False, prefetch="thread", model_options={"dtype": "float32", "attn_implementation": "eager"})
    m = s.config.model
    assert m.dtype == "float32" and m.attn_implementation == "eager" and m.info["device"] == "cpu"
    s2 = run("tiny-qwen3.5", "synthetic", out_dir=tmp_path / "b", limit=1, generation={"max_new_tokens": 2},
             progress=False, prefetch="thread", model_options={"dtype": "bfloat16"})
    assert s2.config.model.dtype == "bfloat16" and s2.config.fingerprint != s.config.fingerprint


def test_cli_model_args_land_in_run_json_and_bad_ones_are_one_line(home3, tmp_path):
    out = tmp_path / "run"
    base = ["run", "--model", "tiny-qwen3.5", "--task", "synthetic", "--limit", "1", "--gen", "max_new_tokens=2",
            "--no-progress", "--prefetch", "thread"]
    res = CliRunner().invoke(main, base + ["--out", str(out), "--model-args",
                                           "dtype=float32,attn_implementation=eager,device=cpu"])
    assert res.exit_code == 0, res.output
    mi = json.loads((out / "run.json").read_text())["model"]
    assert mi["dtype"] == "float32" and mi["attn_implementation"] == "eager" and mi["info"]["device"] == "cpu"
    for args, message in ((["--model-args", "dtype=float33"], "dtype='float33' is unknown"),
                          (["--model-args", "colour=blue"], "--model-args colour: not an option"),
                          (["--model-args", "trust_remote_code=maybe"], "must be true or false"),
                          (["--time-hint"], "already reads frame times")):
        res = CliRunner().invoke(main, base + ["--out", str(tmp_path / "bad"), *args])
        assert res.exit_code == 2 and message in res.output, (args, res.output)
        assert "Traceback" not in res.output
    res = CliRunner().invoke(main, ["run", "--model", "baseline:center", "--task", "synthetic", "--time-hint",
                                    "--out", str(tmp_path / "b")])
    assert res.exit_code == 2 and "--time-hint does not apply to baseline models" in res.output
