"""A Speech-LLM built on a `sbasr finetune --arch whisper` run: a LoRA run directory as
--model (merged into its base once), its export as the first pass, and a trained model
directory that keeps working once the run, or the model itself, is moved."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import run_cli

from sbasr.core.errors import SbasrError
from sbasr.speechllm.config import SpeechLLMConfig
from sbasr.speechllm.sources import resolve_bundled
from sbasr.whisper.run_dir import whisper_source


def _whisper_run(parts, corpus, out, method="lora"):
    run = run_cli(
        "finetune",
        "--arch",
        "whisper",
        "--method",
        method,
        "--train",
        str(corpus / "train.jsonl"),
        "--dev",
        str(corpus / "dev.jsonl"),
        "-o",
        str(out),
        "-m",
        parts["whisper"],
        "--max-steps",
        "1",
        "--eval-steps",
        "1",
        "--batch-size",
        "2",
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return out


def test_a_lora_run_is_built_on_moved_and_still_transcribes(parts, noise_corpus, tmp_path):
    ft = _whisper_run(parts, noise_corpus, tmp_path / "runs" / "ft")
    assert (ft / "adapter_config.json").is_file() and (ft / "ct2" / "model.bin").is_file()
    source = whisper_source(str(ft))
    assert source.kind == "lora" and source.first_pass == str(ft / "ct2")
    assert whisper_source(str(ft)).encoder == source.encoder  # merged once, then reused

    slm = tmp_path / "runs" / "slm"
    run = run_cli(
        "finetune",
        "--arch",
        "speechllm",
        "--train",
        str(noise_corpus / "train.jsonl"),
        "--dev",
        str(noise_corpus / "dev.jsonl"),
        "-o",
        str(slm),
        "--model",
        str(ft),
        "--llm",
        parts["llm"],
        "--hypothesis",
        "--max-steps",
        "1",
        "--eval-steps",
        "1",
        "--warmup-steps",
        "0",
        "--batch-seconds",
        "4",
        "--encoder-cache-dir",
        str(tmp_path / "frames"),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    config = json.loads((slm / "sbasr-speechllm.json").read_text())
    assert config["encoder_origin"] == str(ft.resolve())
    assert config["hypothesis_model"] == str(ft / "ct2")  # the run's own export
    assert config["bundled"] == {"encoder": "whisper", "first_pass": "whisper-ct2"}
    assert (slm / "whisper" / "model.safetensors").is_file()
    assert (slm / "whisper-ct2" / "model.bin").is_file()

    # the Whisper run and the Speech-LLM both moved: it transcribes from its own copies
    shutil.rmtree(ft)
    moved = tmp_path / "elsewhere" / "slm"
    moved.parent.mkdir()
    shutil.move(slm, moved)
    hyp = tmp_path / "hyp"
    args = ["transcribe", str(noise_corpus / "dev.jsonl"), "--engine", "speechllm", "-m"]
    out = run_cli(*args, str(moved), "-f", "keyed", "-o", str(hyp), "--max-new-tokens", "4")
    assert out.returncode == 0, out.stderr[-3000:]
    assert len(list(hyp.glob("*.keyed"))) == 2

    # a copy missing one of them fails with one line that names it
    shutil.rmtree(moved / "whisper-ct2")
    bad = run_cli(*args, str(moved), "-f", "keyed", "-o", str(tmp_path / "hyp2"))
    assert bad.returncode != 0
    last = bad.stderr.strip().splitlines()[-1]
    assert "whisper-ct2/ is missing" in last and "copy the whole model directory" in last


def test_bundled_parts_point_into_the_model_directory(tmp_path):
    (tmp_path / "whisper").mkdir()
    (tmp_path / "whisper" / "config.json").write_text("{}")
    config = SpeechLLMConfig(encoder="/gone/run", bundled={"encoder": "whisper"})
    resolved = resolve_bundled(config, tmp_path)
    assert resolved.encoder == str(tmp_path / "whisper")
    assert resolved.hypothesis_model == str(tmp_path / "whisper")  # the encoder's model
    assert config.encoder == "/gone/run"  # the saved configuration is left as it was
    with pytest.raises(SbasrError, match="whisper-ct2/ is missing"):
        resolve_bundled(SpeechLLMConfig(bundled={"first_pass": "whisper-ct2"}), tmp_path)


def test_a_directory_that_is_no_whisper_model_is_named(tmp_path):
    with pytest.raises(SbasrError, match="neither a transformers Whisper"):
        whisper_source(str(tmp_path))
    assert whisper_source("base").kind == "embedded"
