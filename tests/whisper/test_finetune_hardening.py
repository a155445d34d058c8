"""What `sbasr finetune` and `sbasr export` do with what is already on disk, and what they
say: an export never deletes files sbasr did not write, a finished model is not trained
over unless asked, a checkpoint cut short by a kill is skipped on --resume, bad output
paths and unusable rows are one line each, and a run shows no warnings a user cannot act on.

One tiny LoRA run (module-scoped) serves every test that needs a trained output.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import run_cli

from sbasr.core.errors import SbasrError
from sbasr.training.speechllm_options import SpeechLLMOptions
from sbasr.training.whisper_options import WhisperOptions

# every library warning a run could print: Python's, and transformers' logger's
NOISE = re.compile(r"Warning\b|warnings\.warn|\[transformers\]")


def _manifest(noise_corpus: Path, path: Path, extra: list[dict]) -> Path:
    """The noise corpus's training rows (audio by absolute path), then `extra` rows."""
    rows = [json.loads(line) for line in (noise_corpus / "train.jsonl").read_text().splitlines()]
    for row in rows:
        row["audio"] = str(noise_corpus / row["audio"])
    rows += extra
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _opts(noise_corpus: Path, train: Path, out: Path, model: Path, **more) -> WhisperOptions:
    """The options of the shared run (`lora_run`), as Python gives them."""
    settings = dict(
        train=str(train),
        dev=str(noise_corpus / "dev.jsonl"),
        output_dir=str(out),
        model=str(model),
        method="lora",
        lora_r=4,
        lora_alpha=8,
        max_steps=2,
        save_steps=2,
        eval_steps=2,
        batch_size=2,
        warmup_steps=0,
        export=False,
    )
    return WhisperOptions(**{**settings, **more})


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, noise_corpus, tiny_model):
    """A two-step LoRA run through the CLI, unexported, on data with a Klingon row:
    (output directory, train manifest, the finished process)."""
    root = tmp_path_factory.mktemp("lora")
    klingon = {"id": "k", "audio": str(noise_corpus / "n0.wav"), "text": "x", "language": "Klingon"}
    train = _manifest(noise_corpus, root / "train.jsonl", [klingon])
    out = root / "run"
    opts = _opts(noise_corpus, train, out, tiny_model)
    result = run_cli(
        "finetune",
        *("--train", opts.train, "--dev", str(opts.dev), "-o", str(out), "-m", opts.model),
        *("--method", "lora", "--lora-r", "4", "--lora-alpha", "8", "--max-steps", "2"),
        *("--save-steps", "2", "--eval-steps", "2", "--batch-size", "2"),
        *("--warmup-steps", "0", "--no-export"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return out, train, result


def _copy(run: Path, to: Path) -> Path:
    shutil.copytree(run, to, ignore=shutil.ignore_patterns("ct2"))
    return to


def _names(directory: Path) -> set[str]:
    return {str(p.relative_to(directory)) for p in directory.rglob("*")}


# 5, 7, 8: the run itself --------------------------------------------------------------


def test_the_run_skips_unknown_languages_is_quiet_and_its_hint_works(lora_run, noise_corpus):
    out, train, result = lora_run
    lines = result.stderr.splitlines()
    # the Klingon row is skipped and named by file and line, not an abort
    assert f"train: skipped 1 row with an unknown language; first: {train}:5 (Klingon)" in lines
    assert not NOISE.search(result.stderr), result.stderr[-3000:]
    # --no-export leaves an adapter, which transcribe cannot load: the hint exports it first
    hint = lines[-1]
    assert hint.startswith(f"done: {out}; export, then transcribe with: "), hint
    commands = hint.split("transcribe with: ", 1)[1].split("; ")
    assert [c.split()[:2] for c in commands] == [["sbasr", "export"], ["sbasr", "transcribe"]]
    clip = str(noise_corpus / "n4.wav")
    for command in commands:
        args = [clip if a == "FILES" else a for a in shlex.split(command)[1:]]
        done = run_cli(*args)
        assert done.returncode == 0, (command, done.stderr[-2000:])
    # 6: the adapter's export has what faster-whisper reads beside the model
    for name in ("model.bin", "tokenizer.json", "preprocessor_config.json", "sbasr-export.json"):
        assert (out / "ct2" / name).is_file(), name
    assert (out / "preprocessor_config.json").is_file()  # beside the adapter too


def test_library_warnings_are_resolved_where_they_arise(tiny_model, tmp_path):
    from sbasr.training.arguments import training_arguments
    from sbasr.training.record import plot_history
    from sbasr.training.whisper import load_model

    opts = WhisperOptions(
        train="x",
        output_dir=str(tmp_path / "out"),
        model="tiny.en",  # as a user names an embedded model: loaded from elsewhere
        lora_r=4,
        lora_alpha=8,
        gradient_checkpointing=True,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model, _ = load_model(opts, base=str(tiny_model))
        args = training_arguments(opts, "wer", has_dev=True)
        # a run shorter than --logging-steps: dev scores, no training loss
        plot_history([{"step": 2, "eval_wer": 0.5}], tmp_path / "p.png", "wer")
    assert [str(w.message) for w in caught] == []
    # the adapter names its base as the user did, not by the cache copy it was loaded from
    assert model.peft_config["default"].base_model_name_or_path == "tiny.en"
    import torch

    assert args.dataloader_pin_memory == torch.cuda.is_available()
    assert (tmp_path / "p.png").is_file()


# 1, 4, 6: export ------------------------------------------------------------------------


def test_export_never_writes_over_what_sbasr_did_not_write(lora_run, tmp_path):
    from sbasr.whisper.export import export_ct2
    from sbasr.whisper.export_target import EXPORT_MARKER

    run = _copy(lora_run[0], tmp_path / "run")
    before = _names(run)
    refusals = {
        run: "is the model directory itself",
        tmp_path: "contains the model directory",
        run / "logs": "not an export of it",
        run / "checkpoint-2" / "ct2": "inside the model directory",
    }
    for target, message in refusals.items():
        with pytest.raises(SbasrError, match=message):
            export_ct2(run, target, "float32")
    assert _names(run) == before  # nothing written, nothing deleted

    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(SbasrError, match="--overwrite"):
        export_ct2(run, other, "float32")
    assert _names(other) == {"keep.txt"}
    export_ct2(run, other, "float32", overwrite=True)
    assert (other / "keep.txt").read_text() == "mine" and (other / "model.bin").is_file()

    # an earlier export of the same model is replaced; a file someone added to it is kept
    ct2 = export_ct2(run, None, "float32")
    assert ct2 == run / "ct2"
    (ct2 / "notes.txt").write_text("mine")
    first = json.loads((ct2 / EXPORT_MARKER).read_text())
    assert Path(first["source"]) == run.resolve()
    export_ct2(run, None, "int8")
    assert (ct2 / "notes.txt").read_text() == "mine"
    assert json.loads((ct2 / EXPORT_MARKER).read_text())["quantization"] == "int8"
    # written beside and renamed into place: no work folder is left
    assert not [p for p in run.iterdir() if p.name.startswith(".")]
    assert _names(run) - before == {f"ct2/{n}" for n in _names(ct2)} | {"ct2"}


def test_export_errors_are_one_line(lora_run, tmp_path):
    run = lora_run[0]
    file = tmp_path / "file"
    file.write_text("mine")
    for target in (file, run):
        done = run_cli("export", str(run), "-o", str(target))
        assert done.returncode == 2
        assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("sbasr: error: ")
    assert file.read_text() == "mine"


def _unwritable(tmp_path: Path) -> Path:
    """A directory no file can be created in, even by root where there is /proc."""
    if os.geteuid() == 0:
        if not Path("/proc/self").is_dir():
            pytest.skip("no directory is unwritable to root here")
        return Path("/proc/sbasr-test/out")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    return locked / "out"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_finetune_gives_one_line_for_an_output_it_cannot_write(tmp_path):
    from typer.testing import CliRunner

    from sbasr.cli import app

    file = tmp_path / "file"
    file.write_text("mine")
    targets = {
        file: "is a file",
        file / "sub": "is a file",
        _unwritable(tmp_path): "cannot write there",
    }
    for target, message in targets.items():
        run = CliRunner().invoke(app, ["finetune", "--train", "t.jsonl", "-o", str(target)])
        assert run.exit_code == 2, run.output
        assert run.stderr.splitlines() == [run.stderr.strip()] and message in run.stderr
    assert file.read_text() == "mine"


# 2: a finished model ------------------------------------------------------------------


def test_finetune_refuses_an_earlier_model_unless_told(
    lora_run, noise_corpus, tiny_model, tmp_path
):
    from sbasr.training.whisper import finetune_whisper, prepare_output

    out, train, _ = lora_run
    run = _copy(out, tmp_path / "run")
    for checkpoint in run.glob("checkpoint-*"):
        shutil.rmtree(checkpoint)  # a finished model, its checkpoints cleaned away
    before = _names(run)
    with pytest.raises(SbasrError, match="earlier run's model; use --overwrite"):
        finetune_whisper(_opts(noise_corpus, train, run, tiny_model))
    assert _names(run) == before
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(SbasrError, match="holds other files"):
        finetune_whisper(_opts(noise_corpus, train, foreign, tiny_model))

    # --overwrite: the earlier run's model goes before training, files of others stay
    (run / "keep.txt").write_text("mine")
    told = []
    prepare_output(_opts(noise_corpus, train, run, tiny_model, overwrite=True), told.append)
    assert not (run / "adapter_model.safetensors").exists()
    assert not (run / "sbasr-finetune.json").exists()
    assert (run / "keep.txt").read_text() == "mine"
    assert told and "--overwrite" in told[0]
    with pytest.raises(SbasrError, match="give one"):
        prepare_output(_opts(noise_corpus, train, run, tiny_model, overwrite=True, resume=True))


def test_speechllm_refuses_a_finished_stage_unless_told(noise_corpus, tmp_path):
    from sbasr.training.speechllm import finetune_speechllm, prepare_output

    out = tmp_path / "slm"
    stage1 = out / "stage1"
    stage1.mkdir(parents=True)
    for name in ("sbasr-finetune.json", "sbasr-speechllm.json", "model.safetensors"):
        (stage1 / name).write_text("{}")
        (out / name).write_text("{}")

    def opts(**more) -> SpeechLLMOptions:
        return SpeechLLMOptions(
            train=str(noise_corpus / "train.jsonl"), output_dir=str(out), **more
        )

    with pytest.raises(SbasrError, match="stage1: holds output of an earlier run; use --resume"):
        finetune_speechllm(opts())
    prepare_output(opts(resume=True), (1, 2))  # goes on: stage 1 is loaded, not retrained
    prepare_output(opts(), (2,))  # stage 2 starts from this stage 1
    assert (stage1 / "model.safetensors").is_file()
    prepare_output(opts(overwrite=True), (1, 2))
    assert not stage1.exists() and (out / "sbasr-speechllm.json").is_file()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(SbasrError, match="holds other files"):
        prepare_output(replace(opts(), output_dir=str(foreign)), (1, 2))


# 3: a checkpoint cut short ------------------------------------------------------------


def test_resume_skips_a_checkpoint_cut_short(lora_run, noise_corpus, tiny_model, tmp_path):
    from sbasr.training.arguments import last_checkpoint
    from sbasr.training.whisper import finetune_whisper

    out, train, _ = lora_run
    run = _copy(out, tmp_path / "run")
    # killed while saving: the Trainer writes trainer_state.json last
    shutil.copytree(run / "checkpoint-2", run / "checkpoint-4")
    (run / "checkpoint-4" / "trainer_state.json").unlink()
    (run / "checkpoint-6").mkdir()
    told: list[str] = []
    assert last_checkpoint(run, told.append) == str(run / "checkpoint-2")
    assert told == [
        "skipped incomplete checkpoints checkpoint-4 (no trainer_state.json), checkpoint-6 "
        "(no trainer_state.json), left by a run stopped while saving"
    ]
    told.clear()
    resumed = finetune_whisper(
        _opts(noise_corpus, train, run, tiny_model, resume=True), echo=told.append
    )
    assert resumed == run
    assert "checkpoint-4" in told[0] and "checkpoint-6" in told[0]
    assert told[1] == f"resuming from {run / 'checkpoint-2'}"
    assert json.loads((run / "trainer_state.json").read_text())["global_step"] == 2

    # no complete checkpoint at all: both ways out are named
    only = tmp_path / "only"
    (only / "checkpoint-2").mkdir(parents=True)
    with pytest.raises(SbasrError, match="no complete checkpoint to resume from; use --overwrite"):
        finetune_whisper(_opts(noise_corpus, train, only, tiny_model, resume=True))
    with pytest.raises(SbasrError, match="use --resume to go on from them, --overwrite"):
        finetune_whisper(_opts(noise_corpus, train, only, tiny_model))


# 5: rows without a usable language ----------------------------------------------------


class Loaded(Exception):
    """Raised where the model would load: what was said before it came first."""


def test_rows_without_a_usable_language_are_skipped_before_a_model_loads(
    noise_corpus, tiny_model, tmp_path, monkeypatch
):
    import sbasr.training.speechllm
    import sbasr.training.whisper

    audio = str(noise_corpus / "n0.wav")
    train = _manifest(
        noise_corpus,
        tmp_path / "train.jsonl",
        [
            {"id": "k", "audio": audio, "text": "x", "language": "Klingon"},
            {"id": "none1", "audio": audio, "text": "x"},
            {"id": "none2", "audio": audio, "text": "x", "language": ""},
        ],
    )
    told: list[str] = []

    def load(*args, **kwargs):
        raise Loaded

    monkeypatch.setattr(sbasr.training.whisper, "is_multilingual", lambda base: True)
    monkeypatch.setattr(sbasr.training.whisper, "load_model", load)
    opts = _opts(noise_corpus, train, tmp_path / "w", tiny_model)
    with pytest.raises(Loaded):
        sbasr.training.whisper.finetune_whisper(opts, told.append)
    assert f"train: skipped 1 row with an unknown language; first: {train}:5 (Klingon)" in told
    no_language = "without a language (the model is prompted with one)"
    assert f"train: skipped 2 rows {no_language}; first: {train}:6" in told
    assert told[0] == "train: 4 of 7 examples kept, 0.00 h; en 4"

    told.clear()
    monkeypatch.setattr(sbasr.training.speechllm, "_initial_model", load)
    with pytest.raises(Loaded):
        sbasr.training.speechllm.finetune_speechllm(
            SpeechLLMOptions(train=str(train), output_dir=str(tmp_path / "s")), told.append
        )
    assert f"train: skipped 2 rows {no_language}; first: {train}:6" in told
