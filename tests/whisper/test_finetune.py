"""`sbasr finetune --arch whisper`: data formats, the flags derived from the options
classes, training, resumption, DDP, export.

Training runs use a tiny randomly initialised Whisper (with the real tiny.en tokenizer),
so that they take seconds on a CPU.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import MISSING, Field, fields
from enum import Enum
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import SR, run_cli

from sbasr.core.choices import ARCHS
from sbasr.core.options import default_of
from sbasr.training.data import Example, check_examples, read_examples
from sbasr.training.speechllm_options import SpeechLLMOptions
from sbasr.training.whisper_options import WhisperOptions


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
    # the language is the first folder below the directory read: here there is none
    assert [e.language for e in mlc] == [None, None]
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
    assert "1 of 6 examples kept" in text and "skipped 1 row over 30 s; first: long" in text
    assert "skipped 1 row with an unknown language; first: klingon (tlh)" in text


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
        "--gradient-checkpointing",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "train: 4 of 4 examples kept" in result.stderr
    # nothing a user cannot act on: no library warnings (peft, transformers, torch), no
    # empty plot legend (a run shorter than --logging-steps logs no training loss)
    assert not re.search(r"Warning\b|warnings\.warn|\[transformers\]", result.stderr), (
        result.stderr[-3000:]
    )
    for name in (
        "adapter_config.json",
        "adapter_model.safetensors",
        "sbasr-finetune.json",
        "training.png",
        "preprocessor_config.json",
        "ct2/model.bin",
        "ct2/tokenizer.json",
        "ct2/preprocessor_config.json",  # the adapter's export, as faster-whisper reads it
        "ct2/sbasr-export.json",
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


OPTIONS = {"whisper": WhisperOptions, "speechllm": SpeechLLMOptions}
# every documented spelling of `sbasr finetune`'s flags
FLAGS = {
    *("--arch", "--train", "--dev", "--output-dir", "-o", "--model", "-m", "--method"),
    *("--learning-rate", "--warmup-steps", "--lr-scheduler", "--epochs", "--max-steps"),
    *("--batch-size", "--grad-accum", "--eval-steps", "--save-steps", "--logging-steps"),
    *("--seed", "--precision", "--gradient-checkpointing", "--no-gradient-checkpointing"),
    *("--speed-perturb", "--spec-augment", "--no-spec-augment", "--freeze-encoder"),
    *("--no-freeze-encoder", "--lora-r", "--lora-alpha", "--lora-dropout", "--lora-targets"),
    *("--encoder2", "--fusion", "--projector", "--llm", "--prompt", "--stages", "--stage"),
    *("--init", "--train-encoder", "--batch-seconds", "--average-best", "--resume"),
    *("--no-resume", "--deepspeed", "--num-workers", "--export", "--no-export"),
    "--quantization",
    *("--layer-lr-decay", "--select-by", "--patience", "--hypothesis", "--no-hypothesis"),
    *("--hypothesis-model", "--encoder-cache", "--encoder-cache-dir", "--ctc-weight"),
    *("--chat-template", "--no-chat-template", "--recipe"),
    *("--rescore", "--no-rescore", "--nbest", "--nbest-prompt"),
    *("--overwrite", "--no-overwrite"),
}


def _finetune_params() -> dict:
    import typer.main

    from sbasr.cli import app

    group = typer.main.get_command(app)
    command = group.get_command(group.context_class(group), "finetune")
    return {p.name: p for p in command.params}


def _shown(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "none"
    return str(value)


def _choices(param) -> tuple[str, ...] | None:
    kind = param.type_descriptor.annotation
    is_enum = isinstance(kind, type) and issubclass(kind, Enum)
    return tuple(m.value for m in kind) if is_enum else None


def test_finetune_flags_defaults_and_choices_are_the_options_classes():
    params = _finetune_params()
    assert {s for p in params.values() for s in (*p.opts, *p.secondary_opts)} == FLAGS
    assert _choices(params["arch"]) == ARCHS == tuple(OPTIONS)
    owned: dict[str, dict[str, Field]] = {}
    for arch, cls in OPTIONS.items():
        for f in fields(cls):
            if f.metadata["cli"]:
                owned.setdefault(f.name, {})[arch] = f
            else:
                assert f.name not in params
    assert set(params) == {"arch", *owned}
    for name, by_arch in owned.items():
        param = params[name]
        defaults = {arch: default_of(f) for arch, f in by_arch.items()}
        given = param.default.value if isinstance(param.default, Enum) else param.default
        if len({repr(v) for v in defaults.values()}) > 1:
            # nothing passed on unless typed: each architecture's class has its own default
            assert given is None, name
            shown = ", ".join(f"{arch} {_shown(v)}" for arch, v in defaults.items())
            assert param.show_default == shown, name
        else:
            default = next(iter(defaults.values()))
            if default is MISSING:
                assert param.required, name
            elif given is not None:
                assert given == default, name
            elif default is not None:  # a comma list: passed on as typed, shown as is
                assert param.show_default == _shown(default), name
        (allowed,) = {f.metadata["choices"] for f in by_arch.values()}
        assert _choices(param) == allowed, name


def test_the_options_classes_load_without_torch():
    # the CLI builds its flags from them at parse time: `sbasr --help` must stay fast
    code = (
        "import sys, sbasr.cli, sbasr.training.whisper_options, sbasr.training.speechllm_options; "
        "print(sorted({'torch', 'numpy', 'transformers'} & set(sys.modules)))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip() == "[]", run.stderr


def test_finetune_passes_what_was_typed_and_prints_how_to_transcribe(monkeypatch):
    from typer.testing import CliRunner

    import sbasr.training.speechllm
    import sbasr.training.whisper
    from sbasr.cli import app

    seen = []

    def fake(opts, echo=print, callbacks=()):
        seen.append(opts)
        return Path(opts.output_dir)

    monkeypatch.setattr(sbasr.training.whisper, "finetune_whisper", fake)
    monkeypatch.setattr(sbasr.training.speechllm, "finetune_speechllm", fake)
    runner = CliRunner()
    run = runner.invoke(app, ["finetune", "--train", "t.jsonl", "-o", "out"])
    assert run.exit_code == 0, run.output
    assert seen[-1] == WhisperOptions(train="t.jsonl", output_dir="out")
    assert run.stderr.splitlines()[-1] == (
        "done: out; transcribe with: sbasr transcribe --model out FILES"
    )
    # an adapter left unexported is no model `transcribe` loads: the hint exports it first
    run = runner.invoke(app, ["finetune", "--train", "t.jsonl", "-o", "out", "--no-export"])
    assert run.exit_code == 0, run.output
    assert run.stderr.splitlines()[-1] == (
        "done: out; export, then transcribe with: sbasr export out; "
        "sbasr transcribe --model out FILES"
    )
    run = runner.invoke(app, ["finetune", "--train", "t.jsonl", "-o", "out", "--overwrite"])
    assert run.exit_code == 0 and seen[-1].overwrite, run.output
    typed = ["--stage", "2", "--lora-targets", "q_proj,v_proj", "--speed-perturb", "0.9,1.1"]
    typed += ["--fusion", "bi-cross", "--init", "s1", "--no-resume", "-m", "tiny"]
    run = runner.invoke(
        app, ["finetune", "--arch", "speechllm", "--train", "t.jsonl", "-o", "out", *typed]
    )
    assert run.exit_code == 0, run.output
    assert seen[-1] == SpeechLLMOptions(
        train="t.jsonl",
        output_dir="out",
        stages=(2,),
        lora_targets=("q_proj", "v_proj"),
        speed_perturb=(0.9, 1.1),
        fusion="bi-cross",
        init="s1",
        resume=False,
        model="tiny",
    )
    assert seen[-1].batch_size == 64 and seen[-1].lora_r == 16  # the Speech-LLM's own
    assert seen[-1].model_config().encoder == "tiny"
    assert run.stderr.splitlines()[-1] == (
        "done: out; transcribe with: sbasr transcribe --engine speechllm --model out FILES"
    )


@pytest.mark.parametrize(
    ("arch", "typed", "owner"),
    [
        ("whisper", ["--encoder2", "x"], "speechllm"),
        ("whisper", ["--stage", "2"], "speechllm"),
        ("speechllm", ["--no-export"], "whisper"),
        ("speechllm", ["--method", "full"], "whisper"),
    ],
)
def test_a_flag_of_the_other_architecture_is_a_usage_error(tmp_path, arch, typed, owner):
    train = tmp_path / "train.jsonl"
    train.write_text("")
    out = tmp_path / "out"
    run = run_cli("finetune", "--arch", arch, "--train", str(train), "-o", str(out), *typed)
    assert run.returncode == 2
    flag = "--stages" if typed[0] == "--stage" else typed[0].replace("--no-", "--")
    assert run.stderr.splitlines() == [
        f"sbasr: error: {flag} is a {owner} option; not used with --arch {arch}"
    ]
    assert not out.exists()


def _weights(directory: Path) -> dict:
    from safetensors.numpy import load_file

    return load_file(directory / "model.safetensors")


def test_resume_after_interruption_gives_the_same_model(corpus, tiny_model, tmp_path):
    from transformers import TrainerCallback

    from sbasr.training.whisper import finetune_whisper

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
    # each run logs into its own directory, though all three ran in this one process
    assert "TENSORBOARD_LOGGING_DIR" not in os.environ
    assert len(list((tmp_path / "a" / "logs").glob("events.out.tfevents.*"))) == 1
    assert len(list((tmp_path / "b" / "logs").glob("events.out.tfevents.*"))) == 2
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=1e-6, err_msg=key)


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
