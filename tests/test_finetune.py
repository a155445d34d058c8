"""`sbasr finetune --arch whisper`: data formats, training, resumption, DDP, export.

Training runs use a tiny randomly initialised Whisper (with the real tiny.en tokenizer),
so that they take seconds on a CPU.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import run_cli

from sbasr.training.data import Example, check_examples, read_examples

SR = 16_000
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")

SENTENCES = [
    "Please enter your account number.",
    "Thank you for calling.",
    "Your call is important to us.",
    "Goodbye.",
    "Press one for sales.",
    "All lines are busy.",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Six spoken sentences, a train and a dev manifest."""
    from test_transcribe import speak

    root = tmp_path_factory.mktemp("corpus")
    rows = []
    for i, text in enumerate(SENTENCES):
        path = root / f"u{i}.wav"
        sf.write(path, speak(text), SR)
        rows.append({"id": f"u{i}", "audio": path.name, "text": text, "language": "en"})
    (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:4]))
    (root / "dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[4:]))
    return root


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A randomly initialised two-layer Whisper with tiny.en's tokenizer and settings."""
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    from sbasr.whisper.models import transformers_dir

    real = transformers_dir("tiny.en")
    config = WhisperConfig.from_pretrained(real)
    for key, value in dict(
        d_model=64,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
    ).items():
        setattr(config, key, value)
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config)
    from transformers import GenerationConfig

    model.generation_config = GenerationConfig.from_pretrained(real)
    out = tmp_path_factory.mktemp("tiny") / "model"
    model.save_pretrained(out)
    for name in ("tokenizer.json", "tokenizer_config.json", "preprocessor_config.json"):
        shutil.copy2(real / name, out / name)
    return out


def test_three_data_formats_read_the_same_utterances(tmp_path):
    audio = tmp_path / "English" / "American" / "call1.wav"
    audio.parent.mkdir(parents=True)
    sf.write(audio, np.zeros(SR * 5, np.float32), SR)
    # MLC-SLM: a .txt of start end speaker text beside the recording
    audio.with_suffix(".txt").write_text("0.5 2.0 A hello there\n2.5 4.0 B hi\n")
    mlc = read_examples(tmp_path / "English")
    assert [e.id for e in mlc] == [
        "American-call1-A-000050-000200",
        "American-call1-B-000250-000400",
    ]
    assert mlc[0].language is None or mlc[0].language == "en"
    mlc_root = read_examples(tmp_path)
    assert mlc_root[0].language == "en" and mlc_root[0].id.startswith("English-American-call1-A")
    # Kaldi: wav.scp, text, segments, utt2lang
    kaldi = tmp_path / "kaldi"
    kaldi.mkdir()
    (kaldi / "wav.scp").write_text(f"rec1 {audio}\n")
    (kaldi / "text").write_text("u1 hello there\nu2 hi\n")
    (kaldi / "segments").write_text("u1 rec1 0.5 2.0\nu2 rec1 2.5 4.0\n")
    (kaldi / "utt2lang").write_text("u1 English\nu2 en\n")
    k = read_examples(kaldi)
    assert [(e.id, e.start, e.end, e.language, e.text) for e in k] == [
        ("u1", 0.5, 2.0, "en", "hello there"),
        ("u2", 2.5, 4.0, "en", "hi"),
    ]
    # JSON Lines, NeMo style
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(
        json.dumps(
            {
                "audio_filepath": str(audio),
                "offset": 0.5,
                "duration": 1.5,
                "text": "hello there",
                "lang": "en",
            }
        )
        + "\n"
    )
    j = read_examples(manifest)
    assert (j[0].start, j[0].end, j[0].language) == (0.5, 2.0, "en")


def test_check_drops_and_counts_bad_rows(tmp_path):
    good = tmp_path / "a.wav"
    sf.write(good, np.zeros(SR * 2, np.float32), SR)
    long = tmp_path / "long.wav"
    sf.write(long, np.zeros(SR * 31, np.float32), SR)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio")
    rows = [
        Example("ok", str(good), "hi", "en"),
        Example("nofile", str(tmp_path / "x.wav"), "hi"),
        Example("broken", str(broken), "hi"),
        Example("empty", str(good), "  "),
        Example("long", str(long), "hi"),
        Example("klingon", str(good), "hi", "tlh"),
    ]
    kept, report = check_examples(rows)
    assert [e.id for e in kept] == ["ok"]
    found = (
        report.missing_audio,
        report.unreadable_audio,
        report.empty_text,
        report.too_long,
        report.unknown_language,
    )
    assert found == (["nofile"], ["broken"], ["empty"], ["long"], ["klingon"])
    text = "\n".join(report.lines())
    assert "1 of 6 examples kept" in text and "skipped 1 with over 30 s" in text


@needs_espeak
def test_lora_run_leaves_a_transcribable_directory(corpus, tiny_model, tmp_path):
    out = tmp_path / "run"
    result = run_cli(
        "finetune",
        "--arch",
        "whisper",
        "--model",
        str(tiny_model),
        "--method",
        "lora",
        "--train",
        str(corpus / "train.jsonl"),
        "--dev",
        str(corpus / "dev.jsonl"),
        "-o",
        str(out),
        "--max-steps",
        "4",
        "--eval-steps",
        "2",
        "--batch-size",
        "2",
        "--warmup-steps",
        "0",
        "--lora-r",
        "4",
        "--lora-alpha",
        "8",
        "--quantization",
        "float32",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "train: 4 of 4 examples kept" in result.stderr
    for name in (
        "adapter_config.json",
        "adapter_model.safetensors",
        "sbasr-finetune.json",
        "training.png",
        "ct2/model.bin",
        "ct2/tokenizer.json",
    ):
        assert (out / name).exists(), name
    assert list((out / "logs").iterdir())  # tensorboard events
    config = json.loads((out / "sbasr-finetune.json").read_text())
    assert config["method"] == "lora" and config["lora_r"] == 4
    state = json.loads(next(out.glob("checkpoint-*/trainer_state.json")).read_text())
    assert any("eval_wer" in h for h in state["log_history"])
    assert state["best_metric"] is not None  # chosen by dev CER/WER
    clip = corpus / "u0.wav"
    decoded = run_cli("transcribe", str(clip), "--model", str(out), "--compute-type", "float32")
    assert decoded.returncode == 0, decoded.stderr


def _weights(directory: Path) -> dict:
    from safetensors.numpy import load_file

    return load_file(directory / "model.safetensors")


@needs_espeak
def test_resume_after_interruption_gives_the_same_model(corpus, tiny_model, tmp_path):
    from transformers import TrainerCallback

    from sbasr.whisper.finetune import WhisperOptions, finetune_whisper

    def opts(out: Path, resume: bool = False) -> WhisperOptions:
        return WhisperOptions(
            train=str(corpus / "train.jsonl"),
            output_dir=str(out),
            model=str(tiny_model),
            method="full",
            max_steps=6,
            batch_size=2,
            save_steps=2,
            eval_steps=2,
            warmup_steps=0,
            learning_rate=1e-3,
            export=False,
            resume=resume,
        )

    class Crash(Exception):
        pass

    class CrashAfterStep4(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == 4:
                raise Crash

    straight = finetune_whisper(opts(tmp_path / "a"), echo=lambda _: None)
    with pytest.raises(Crash):
        finetune_whisper(opts(tmp_path / "b"), echo=lambda _: None, callbacks=[CrashAfterStep4()])
    assert (tmp_path / "b" / "checkpoint-4").is_dir()
    again = run_cli(
        "finetune",
        "--train",
        str(corpus / "train.jsonl"),
        "-o",
        str(tmp_path / "b"),
        "--model",
        str(tiny_model),
        "--method",
        "full",
        "--max-steps",
        "6",
        "--batch-size",
        "2",
        "--save-steps",
        "2",
        "--warmup-steps",
        "0",
        "--learning-rate",
        "1e-3",
        "--no-export",
    )
    assert again.returncode == 2 and "use --resume" in again.stderr
    resumed = finetune_whisper(opts(tmp_path / "b", resume=True), echo=lambda _: None)
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=1e-6, err_msg=key)


@needs_espeak
def test_two_processes_train_together_under_torchrun(corpus, tiny_model, tmp_path):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        "29517",
        "-m",
        "sbasr",
        "finetune",
        "--train",
        str(corpus / "train.jsonl"),
        "-o",
        str(out),
        "--model",
        str(tiny_model),
        "--method",
        "lora",
        "--lora-r",
        "4",
        "--max-steps",
        "2",
        "--batch-size",
        "1",
        "--warmup-steps",
        "0",
        "--no-export",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads((out / "sbasr-finetune.json").read_text())
    assert config["world_size"] == 2 and config["distributed"] == "DistributedType.MULTI_CPU"
    assert (out / "adapter_model.safetensors").exists()
