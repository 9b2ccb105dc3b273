"""Model zoo and the --model grammar of load_model."""

from __future__ import annotations

import pytest

from tempbench.errors import TempbenchError, UsageError
from tempbench.models import load_model, recommended_prompt, zoo
from tempbench.prompts import PROMPTS


def test_entries_are_consistent():
    aliases = [e.alias for e in zoo.ZOO]
    assert len(aliases) == len(set(aliases))
    for e in zoo.ZOO:
        assert e.prompt is None or e.prompt in PROMPTS, e.alias
        assert e.verified or e.reason, f"{e.alias}: unverified entries need a reason"
        assert e.hub_id or e.local_builder
        for task, numbers in e.reported.items():
            assert numbers["source"], (e.alias, task)
            assert e.setting.get(task) in ("zero-shot", "fine-tuned"), (e.alias, task)
            assert all(0 <= v <= 100 for k, v in numbers.items() if k != "source")
    assert zoo.get("tempsamp-r1").verified is False and zoo.get("tempsamp-r1").hub_id == "sdzt/TempSamp-R1-7B-STA"


def test_lookup_by_alias_and_hub_id():
    assert zoo.get("Qwen/Qwen2.5-VL-7B-Instruct") is zoo.get("qwen2.5-vl-7b")
    assert zoo.get("TIMEZERO").hub_id == "wwwyyy/TimeZero-Charades-7B"
    assert recommended_prompt("time-r1") == "time-r1-cot" and recommended_prompt("some/other") is None
    with pytest.raises(UsageError, match="not in the model zoo"):
        zoo.get("gpt-17")


def test_tiny_qwen2_5_vl_alias_loads(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    monkeypatch.setenv("TEMPBENCH_HOME", str(tmp_path))
    from tempbench.models.base import GenerationSettings

    m = load_model("tiny-qwen2.5-vl", generation=GenerationSettings(max_new_tokens=3))
    ident = m.identity()
    assert ident.info["name"] == "tiny-qwen2.5-vl" and ident.info["zoo"]["alias"] == "tiny-qwen2.5-vl"
    assert m.video_settings.max_pixels == 56 * 56 and ident.model_type == "qwen2_5_vl"
    assert str(tmp_path) in ident.id
    # a local folder works too, and is the same model: same weights, same identity
    local = load_model(ident.id).identity()
    assert local.weights == ident.weights and local.identity() == ident.identity()


def test_grammar_errors(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(UsageError, match="empty"):
        load_model("")
    with pytest.raises(TempbenchError, match="needs a server address"):
        monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
        monkeypatch.delenv("OPENAI_API_BASE", raising=False)
        load_model("openai:qwen")
    with pytest.raises(UsageError, match="do not apply to openai"):
        load_model("openai:qwen", api_base="http://127.0.0.1:1/v1", rope_index="reference")
    with pytest.raises(TempbenchError, match="not available locally"):
        load_model("someone/not-downloaded")
    with pytest.raises(UsageError, match="unknown model scheme"):
        load_model("vllm:foo")


def test_openai_spec(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    m = load_model("openai:Qwen/Qwen2.5-VL-7B-Instruct", api_base="http://127.0.0.1:1/v1", concurrency=2)
    assert m.model == "Qwen/Qwen2.5-VL-7B-Instruct" and m.concurrency == 2 and m.identity().backend == "openai"
