# ruff: noqa: F811 - the fixtures of fakes, imported by name
"""`sbasr transcribe` on the inputs and settings users get wrong: manifest ids, corrupt
models, unwritable or `-` output directories, segments past the end of the audio, bad
languages and devices, the wrong engine for a model, and mixed-language stereo calls.

Most tests run the pipeline with a fake engine and an energy "VAD" on generated tones, so
they take milliseconds: what they check is the plumbing around the recogniser.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import SR, run_cli
from fakes import FakeEngine, energy_vad, fake_cli, fake_vad, invoke, silence, tone  # noqa: F401

import sbasr
from sbasr.asr.options import DecodeOptions, EngineSettings, TranscribeOptions


def two_bursts(path: Path, first: float = 440, second: float = 660) -> Path:
    """0.5 s silence, 1 s tone, 1 s silence, 1 s tone, 0.5 s silence."""
    audio = np.concatenate(
        [silence(0.5), tone(first, 1.0), silence(1.0), tone(second, 1.0), silence(0.5)]
    )
    sf.write(path, audio, SR)
    return path


def manifest(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# 1. a manifest row's id is its hypothesis key ----------------------------------------------


def test_a_manifest_row_without_times_is_one_segment_named_by_its_id(tmp_path, fake_vad):
    two_bursts(tmp_path / "x.wav")
    two_bursts(tmp_path / "y.wav", 550, 330)
    m = manifest(
        tmp_path / "m.jsonl",
        [{"id": "it-call-forwarding", "audio": "x.wav"}, {"audio": "y.wav"}],
    )
    segs = list(sbasr.transcribe(m, engine=FakeEngine()))
    assert [(s.id, s.text) for s in segs] == [
        ("it-call-forwarding", "en-440 it-660"),  # the 660 Hz burst is "Italian"
        ("y", "en-550 en-330"),  # no id: the file's stem, as scoring names it
    ]
    assert (segs[0].start, segs[0].end) == (0.0, 4.0)  # the row is the whole file
    # a plain audio file keeps one segment per span
    plain = list(sbasr.transcribe(tmp_path / "x.wav", engine=FakeEngine()))
    assert [s.id for s in plain] == ["x-000050-000150", "x-000250-000350"]  # no speaker made up


def test_manifest_ids_key_the_keyed_output_and_score_against_the_manifest(tmp_path, fake_cli):
    two_bursts(tmp_path / "x.wav")
    rows = [{"id": "it-call-forwarding", "audio": "x.wav", "text": "en-440 it-660"}]
    m = manifest(tmp_path / "m.jsonl", rows)
    out = invoke("transcribe", str(m), "-f", "keyed", "-o", str(tmp_path / "hyp"))
    assert out.exit_code == 0, out.output
    keyed = (tmp_path / "hyp" / "it-call-forwarding.keyed").read_text()
    assert keyed == "it-call-forwarding en-440 it-660\n"
    assert sbasr.score(tmp_path / "hyp" / "it-call-forwarding.keyed", m).pooled.rate == 0


def test_a_row_with_no_speech_still_gives_its_id(tmp_path, fake_vad):
    sf.write(tmp_path / "quiet.wav", silence(2.0), SR)
    m = manifest(tmp_path / "m.jsonl", [{"id": "q", "audio": "quiet.wav"}])
    segs = list(sbasr.transcribe(m, engine=FakeEngine()))
    assert [(s.id, s.text, s.start, s.end) for s in segs] == [("q", "", 0.0, 2.0)]


def test_a_row_of_a_split_call_joins_both_channels_in_time_order(tmp_path, fake_vad):
    left = np.concatenate([silence(0.5), tone(440, 1.0), silence(3.0)])
    right = np.concatenate([silence(2.0), tone(330, 1.0), silence(1.5)])
    sf.write(tmp_path / "call.wav", np.stack([left, right], 1), SR)
    m = manifest(tmp_path / "m.jsonl", [{"id": "c", "audio": "call.wav", "language": "en"}])
    (seg,) = sbasr.transcribe(m, engine=FakeEngine(), options=TranscribeOptions(channels="split"))
    assert (seg.id, seg.text) == ("c", "en-440 en-330")


def test_segments_and_long_oracle_rows_keep_their_ids_and_bounds(tmp_path, fake_vad):
    # a 40 s row is cut at its pause (VAD inside it) and joined again, with its own times
    audio = np.concatenate([silence(1.0), tone(440, 15.0), silence(2.0), tone(550, 20.0)])
    sf.write(tmp_path / "long.wav", np.concatenate([audio, silence(3.0)]), SR)
    (tmp_path / "long.txt").write_text("0.5 40.5 A x\n")
    segs = list(sbasr.transcribe(tmp_path / "long.wav", engine=FakeEngine(), oracle_segments=True))
    assert [(s.id, s.start, s.end, s.text) for s in segs] == [
        ("long-A-000050-004050", 0.5, 40.5, "en-440 en-550")
    ]


# 2. corrupt Speech-LLM directories ---------------------------------------------------------


def _speechllm_dir(path: Path, config: bytes | None = None, weights: bytes | None = None) -> Path:
    from safetensors.numpy import save

    path.mkdir()
    good_config = json.dumps({"encoder": "base", "llm": "smollm2"}).encode()
    (path / "sbasr-speechllm.json").write_bytes(good_config if config is None else config)
    good = save({"projector.w": np.zeros(4, np.float32)})
    (path / "model.safetensors").write_bytes(good if weights is None else weights)
    return path


def _good_weights() -> bytes:
    from safetensors.numpy import save

    return save({"projector.w": np.zeros(64, np.float32)})


@pytest.mark.parametrize(
    ("name", "weights"),
    [
        ("truncated", _good_weights()[:-40]),
        ("random", np.random.default_rng(0).bytes(300)),
        ("empty", b""),
    ],
)
def test_corrupt_weights_are_one_line_errors(tmp_path, name, weights):
    from sbasr.asr.engines.registry import load_engine

    d = _speechllm_dir(tmp_path / name, weights=weights)
    with pytest.raises(sbasr.SbasrError) as e:
        load_engine("speechllm", str(d))
    message = str(e.value)
    assert "\n" not in message and str(d / "model.safetensors") in message
    assert "damaged" in message


@pytest.mark.parametrize("config", [b'{"encoder": "ba', b"", b"\x00\xff garbage", b"[1, 2]"])
def test_corrupt_configuration_is_a_one_line_error(tmp_path, config):
    from sbasr.asr.engines.registry import load_engine

    d = _speechllm_dir(tmp_path / "m", config=config)
    with pytest.raises(sbasr.SbasrError) as e:
        load_engine("speechllm", str(d))
    message = str(e.value)
    assert "\n" not in message and str(d / "sbasr-speechllm.json") in message


def test_corrupt_model_through_the_cli(tmp_path):
    sf.write(tmp_path / "a.wav", tone(440, 1.0), SR)
    d = _speechllm_dir(tmp_path / "m", weights=_good_weights()[:-40])
    out = run_cli("transcribe", str(tmp_path / "a.wav"), "--engine", "speechllm", "-m", str(d))
    assert out.returncode == 2
    (line,) = out.stderr.splitlines()
    assert line.startswith(f"sbasr: error: {d / 'model.safetensors'}: ")


# 3. the output directory is checked before anything loads ----------------------------------


def test_unwritable_output_dir_fails_before_the_model_loads(tmp_path, monkeypatch):
    import sbasr.asr.engines.registry

    def never(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(sbasr.asr.engines.registry, "load_engine", never)
    sf.write(tmp_path / "a.wav", tone(440, 1.0), SR)
    (tmp_path / "file").write_text("x")
    out = invoke("transcribe", str(tmp_path / "a.wav"), "-o", str(tmp_path / "file" / "out"))
    assert out.exit_code == 2, out.output
    (line,) = out.stderr.splitlines()
    assert line.startswith(f"sbasr: error: {tmp_path / 'file' / 'out'}: cannot write")
    out = invoke("transcribe", str(tmp_path / "a.wav"), "-o", str(tmp_path / "file"))
    assert out.exit_code == 2 and "cannot write" in out.stderr


# 4. segments past the end of the audio, truncated files ------------------------------------


def test_segments_past_the_end_of_the_audio_are_warned_about(tmp_path, fake_vad):
    two_bursts(tmp_path / "x.wav")
    rows = [
        {"id": "ok", "audio": "x.wav", "start": 0.4, "end": 1.6},
        {"id": "late", "audio": "x.wav", "start": 8.0, "end": 9.0},
    ]
    m = manifest(tmp_path / "m.jsonl", rows)
    with pytest.warns(UserWarning, match=r"x\.wav: segment late \(8\.00-9\.00 s\) .*4\.00 s"):
        segs = list(sbasr.transcribe(m, engine=FakeEngine()))
    assert [(s.id, s.text) for s in segs] == [("ok", "en-440"), ("late", "")]


def test_the_cli_warns_on_one_line_and_goes_on(tmp_path, fake_cli):
    two_bursts(tmp_path / "x.wav")
    rows = [
        {"id": "ok", "audio": "x.wav", "start": 0.4, "end": 1.6},
        {"id": "late", "audio": "x.wav", "start": 3.5, "end": 9.0},
    ]
    m = manifest(tmp_path / "m.jsonl", rows)
    out = invoke("transcribe", str(m), "-f", "keyed", "-o", str(tmp_path / "o"))
    assert out.exit_code == 0, out.output
    warnings = [ln for ln in out.stderr.splitlines() if ln.startswith("sbasr: warning:")]
    assert len(warnings) == 1 and "x.wav: segment late (3.50-9.00 s)" in warnings[0]
    assert (tmp_path / "o" / "x.keyed").read_text() == "ok en-440\nlate\n"


def test_a_truncated_wav_is_warned_about(tmp_path):
    from sbasr.io.audio import load_audio

    path = tmp_path / "t.wav"
    sf.write(path, tone(440, 10.0), SR)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.warns(UserWarning, match=r"t\.wav: the file is truncated: .*10\.00 s.*3\.33 s"):
        audio = load_audio(path)
    assert audio.duration == pytest.approx(10 / 3, abs=0.01)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a whole file warns of nothing
        sf.write(path, tone(440, 10.0), SR)
        load_audio(path)


# 5. --language -------------------------------------------------------------------------------


def test_language_names_are_codes_and_unknown_languages_are_refused(tmp_path):
    from sbasr.asr.options import options_from

    options, _ = options_from("whisper", {"language": "italian"})
    assert options.decode.language == "it"
    assert options_from("speechllm", {"language": "IT"})[0].decode.language == "it"
    assert options_from("whisper", {"language": "Swahili"})[0].decode.language == "sw"
    with pytest.raises(sbasr.SbasrError, match="--language zz: unknown language"):
        options_from("whisper", {"language": "zz"})
    out = run_cli("transcribe", str(tmp_path / "missing.wav"), "--language", "zz")
    assert out.returncode == 2
    (line,) = out.stderr.splitlines()  # before the inputs are read or a model loads
    assert line.startswith("sbasr: error: --language zz: unknown language")


def test_language_names_in_python(tmp_path, fake_vad):
    two_bursts(tmp_path / "x.wav")
    opts = TranscribeOptions(decode=DecodeOptions(language="Italian"))
    segs = list(sbasr.transcribe(tmp_path / "x.wav", engine=FakeEngine(), options=opts))
    assert {s.language for s in segs} == {"it"}
    bad = TranscribeOptions(decode=DecodeOptions(language="klingon"))
    with pytest.raises(sbasr.SbasrError, match="klingon: unknown language"):
        next(sbasr.transcribe(tmp_path / "missing.wav", engine=FakeEngine(), options=bad))


# 6. --device cuda without a GPU --------------------------------------------------------------


def test_cuda_without_a_gpu_says_so(tmp_path, monkeypatch):
    import ctranslate2
    import torch

    from sbasr.asr.engines.registry import load_engine

    monkeypatch.setattr(ctranslate2, "get_cuda_device_count", lambda: 0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cuda = EngineSettings(device="cuda")
    for engine, model in (("whisper", "tiny.en"), ("speechllm", str(tmp_path))):
        with pytest.raises(sbasr.SbasrError) as e:
            load_engine(engine, model, cuda)
        assert str(e.value) == (
            "--device cuda asked but no CUDA GPU is visible; use --device cpu or auto"
        )


def test_cuda_without_a_gpu_through_the_cli(tmp_path):
    import ctranslate2

    if ctranslate2.get_cuda_device_count():
        pytest.skip("a GPU is visible")
    sf.write(tmp_path / "a.wav", tone(440, 1.0), SR)
    out = run_cli("transcribe", str(tmp_path / "a.wav"), "-m", "tiny.en", "--device", "cuda")
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        "sbasr: error: --device cuda asked but no CUDA GPU is visible; use --device cpu or auto"
    ]


# 7. a model of the other engine ------------------------------------------------------------


def test_a_speechllm_directory_given_to_whisper(tmp_path):
    from sbasr.asr.engines.registry import load_engine

    d = _speechllm_dir(tmp_path / "slm")
    with pytest.raises(sbasr.SbasrError, match=r"Speech-LLM model.*--engine speechllm"):
        load_engine("whisper", str(d))


def test_a_whisper_model_given_to_speechllm(tmp_path):
    from sbasr.asr.engines.registry import load_engine

    ct2 = tmp_path / "ct2"
    ct2.mkdir()
    (ct2 / "model.bin").write_bytes(b"")
    (ct2 / "config.json").write_text("{}")
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text(json.dumps({"model_type": "whisper"}))
    for model in (str(ct2), str(hf), str(tmp_path), "tiny.en"):  # tmp_path: has ct2/
        with pytest.raises(sbasr.SbasrError, match=r"a Whisper model.*--engine whisper"):
            load_engine("speechllm", model)


# 8. -o - ---------------------------------------------------------------------------------


def test_dash_output_dir_is_stdout_for_stream_formats(tmp_path, fake_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    two_bursts(tmp_path / "x.wav")
    two_bursts(tmp_path / "y.wav", 330, 550)
    out = invoke("transcribe", "x.wav", "y.wav", "-f", "keyed", "-o", "-")
    assert out.exit_code == 0, out.output
    assert out.stdout.splitlines() == [
        "x-000050-000150 en-440",
        "x-000250-000350 it-660",
        "y-000050-000150 en-330",
        "y-000250-000350 en-550",
    ]
    out = invoke("transcribe", "x.wav", "y.wav", "-o", "-")  # txt
    assert out.exit_code == 0 and out.stdout == "en-440\nit-660\nen-330\nen-550\n"
    out = invoke("transcribe", "x.wav", "-f", "srt", "-o", "-")  # one recording: one document
    assert out.exit_code == 0 and out.stdout.startswith("1\n00:00:00,500 --> 00:00:01,500\n")
    assert not (tmp_path / "-").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.wav", "y.wav"]


@pytest.mark.parametrize(("fmt", "files"), [("srt", 2), ("json", 2), ("all", 1)])
def test_dash_output_dir_refuses_what_is_not_one_stream(tmp_path, fake_cli, fmt, files):
    paths = [str(two_bursts(tmp_path / f"{i}.wav")) for i in range(files)]
    out = invoke("transcribe", *paths, "-f", fmt, "-o", "-")
    assert out.exit_code == 2 and out.stdout == ""
    (line,) = out.stderr.splitlines()
    assert line.startswith(f"sbasr: error: -o -: --format {fmt} ")
    assert fake_cli.decoded == []


# 9. mixed-language stereo ------------------------------------------------------------------


def test_split_channels_detect_each_channels_language(tmp_path, fake_vad):
    # A speaks English (low tones) at length, B Italian (high tones) briefly
    left = np.concatenate([silence(0.5), tone(440, 3.0), silence(3.5)])
    right = np.concatenate([silence(4.0), tone(880, 1.5), silence(1.5)])
    sf.write(tmp_path / "call.wav", np.stack([left, right], 1), SR)
    engine = FakeEngine()
    opts = TranscribeOptions(channels="split")
    segs = list(sbasr.transcribe(tmp_path / "call.wav", engine=engine, options=opts))
    assert [(s.speaker, s.language, s.text) for s in segs] == [
        ("A", "en", "en-440"),
        ("B", "it", "it-880"),
    ]
    assert sorted(engine.detected) == ["en", "it"]  # once per channel


def test_the_runner_prints_library_warnings_on_one_line(tmp_path, fake_vad):
    from rich.console import Console

    from sbasr.asr.inputs import expand_inputs
    from sbasr.asr.runner import run_batch
    from sbasr.asr.writers import writers_for

    two_bursts(tmp_path / "x.wav")
    m = manifest(tmp_path / "m.jsonl", [{"id": "far", "audio": "x.wav", "start": 5, "end": 6}])
    recordings, _ = expand_inputs([m])
    buffer = io.StringIO()
    console = Console(file=buffer, width=60)
    result = run_batch(
        recordings,
        FakeEngine(),
        TranscribeOptions(),
        writers_for("keyed"),
        tmp_path / "o",
        console=console,
    )
    assert result.done == 1 and not result.failures
    lines = [ln for ln in buffer.getvalue().splitlines() if "warning" in ln]
    assert len(lines) == 1 and lines[0].startswith("sbasr: warning: ")
    assert "segment far" in lines[0]


def test_whisper_language_names_are_the_tokenizers():
    from transformers.models.whisper.tokenization_whisper import LANGUAGES, TO_LANGUAGE_CODE

    from sbasr.io.languages import WHISPER_NAMES, user_language

    assert {c: n.lower() for c, n in WHISPER_NAMES.items()} == LANGUAGES
    assert all(user_language(name) == code for name, code in TO_LANGUAGE_CODE.items())


# ids name output files, never paths ------------------------------------------------------


def _listing(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("bad", ["../../x", "/abs/path/x", "sub/x", "b/../a", "..", "a\\b"])
def test_an_id_that_is_a_path_is_refused_before_decoding(tmp_path, fake_cli, bad):
    if bad.startswith("/"):
        bad = str(tmp_path / "abs" / "x")
    work = tmp_path / "work"
    work.mkdir()
    two_bursts(work / "x.wav")
    two_bursts(work / "y.wav", 550, 330)
    m = manifest(work / "m.jsonl", [{"id": "a", "audio": "x.wav"}, {"id": bad, "audio": "y.wav"}])
    before = _listing(tmp_path)
    out = invoke("transcribe", str(m), "-f", "keyed", "-o", str(work / "out"))
    assert out.exit_code == 1, out.output
    errors = [line for line in out.output.splitlines() if "error:" in line]
    assert len(errors) == 1 and str(m) in errors[0] and repr(bad) in errors[0], out.output
    assert "cannot name an output file" in errors[0]
    # nothing outside the output directory; the good row is written under its own id
    assert _listing(tmp_path) - before == {"work/out", "work/out/a.keyed"}
    assert (
        work / "out" / "a.keyed"
    ).read_text() == "a en-440 it-660\n"  # the fake detects 660 Hz as it
    assert fake_cli.decoded == [("en", 440), ("it", 660)]  # the refused row is never decoded


def test_a_kaldi_key_that_is_a_path_writes_nothing_outside_the_output_dir(tmp_path, fake_cli):
    data = tmp_path / "data" / "test"
    data.mkdir(parents=True)
    two_bursts(data / "x.wav")
    (data / "wav.scp").write_text("../../x x.wav\n")
    before = _listing(tmp_path)
    out = invoke("transcribe", str(data), "-f", "all", "-o", str(tmp_path / "out"))
    assert out.exit_code == 2, out.output
    assert f"{data}: id '../../x' cannot name an output file" in out.output
    assert _listing(tmp_path) - before == set()
    assert fake_cli.decoded == []


def test_a_non_utf8_file_name_is_refused_before_decoding(tmp_path, fake_cli):
    two_bursts(tmp_path / "cafe.wav")
    os.rename(tmp_path / "cafe.wav", os.path.join(os.fsencode(tmp_path), b"caf\xe9.wav"))
    two_bursts(tmp_path / "ok.wav")
    out = invoke("transcribe", str(tmp_path), "-f", "all", "-o", str(tmp_path / "out"))
    assert out.exit_code == 1, out.output
    assert "caf\\xe9.wav: id 'caf\\udce9' cannot name an output file" in out.output
    assert "not valid UTF-8" in out.output and "Traceback" not in out.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        f"ok.{ext}" for ext in ("json", "keyed", "srt", "tsv", "txt", "vtt")
    ]


def test_ids_that_are_names_are_used_as_they_are(tmp_path):
    from sbasr.asr.runner import name_problem

    for ok in ("a", "a.b", "-x", ".hidden", "日本語", "a b"):
        assert name_problem(ok) is None
    assert "too long" in name_problem("x" * 250)


# ids are never lost, merged or renamed -----------------------------------------------------


def test_duplicate_manifest_ids_are_an_error_whatever_the_audio(tmp_path, fake_cli):
    two_bursts(tmp_path / "x.wav")
    two_bursts(tmp_path / "y.wav", 550, 330)
    for second in ("y.wav", "x.wav"):  # other audio, and the same audio
        m = manifest(
            tmp_path / "m.jsonl", [{"id": "d1", "audio": "x.wav"}, {"id": "d1", "audio": second}]
        )
        out = invoke("transcribe", str(m), "-f", "keyed", "-o", str(tmp_path / "out"))
        assert out.exit_code == 2, out.output
        assert f"{m}: id 'd1' is given to more than one row" in out.output
        assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    assert fake_cli.decoded == []


def test_a_manifest_id_shared_across_inputs_is_kept_once_and_the_other_reported(tmp_path, fake_cli):
    two_bursts(tmp_path / "x.wav")
    two_bursts(tmp_path / "y.wav", 550, 330)
    m1 = manifest(tmp_path / "m1.jsonl", [{"id": "a", "audio": "x.wav"}])
    m2 = manifest(tmp_path / "m2.jsonl", [{"id": "a", "audio": "y.wav"}])
    out = invoke("transcribe", str(m1), str(m2), "-f", "keyed", "-o", str(tmp_path / "out"))
    assert out.exit_code == 1, out.output
    assert f"{m2}: id 'a' is already the id of {m1}" in out.output
    assert "1 transcribed" in out.output
    assert (tmp_path / "out" / "a.keyed").read_text() == "a en-440 it-660\n"


def test_a_derived_id_never_takes_a_manifest_id(tmp_path, fake_vad):
    from sbasr.asr.inputs import expand_inputs

    (tmp_path / "d").mkdir()
    two_bursts(tmp_path / "d" / "a.wav")
    two_bursts(tmp_path / "y.wav")
    m = manifest(tmp_path / "m.jsonl", [{"id": "a", "audio": "y.wav"}])
    recordings, problems = expand_inputs([m, tmp_path / "d" / "a.wav", m])
    assert not problems
    assert [(r.id, Path(r.path).name) for r in recordings] == [("a", "y.wav"), ("d-a", "a.wav")]


# FIFOs and other files that are not regular files ----------------------------------------


@pytest.fixture
def fifo(tmp_path):
    """A FIFO named like audio; if anything blocks opening it, a writer comes along after
    a while, so that a hang fails the test rather than stopping the suite."""
    import threading

    path = tmp_path / "in" / "stream.wav"
    path.parent.mkdir()
    os.mkfifo(path)
    done = threading.Event()

    def unblock() -> None:
        if not done.wait(30):
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))

    thread = threading.Thread(target=unblock, daemon=True)
    thread.start()
    yield path
    done.set()


def test_a_fifo_given_as_input_is_refused_at_once(tmp_path, fake_cli, fifo):
    out = invoke("transcribe", str(fifo), "-o", str(tmp_path / "out"))
    assert out.exit_code == 2, out.output
    assert f"{fifo}: not a regular file (a FIFO or pipe)" in out.output
    assert fake_cli.decoded == []


def test_a_fifo_in_a_directory_is_skipped_and_reported(tmp_path, fake_cli, fifo):
    two_bursts(fifo.parent / "x.wav")
    out = invoke("transcribe", str(fifo.parent), "-f", "keyed", "-o", str(tmp_path / "out"))
    assert out.exit_code == 1, out.output
    assert f"{fifo}: not a regular file" in out.output and "1 transcribed" in out.output
    assert (tmp_path / "out" / "x.keyed").read_text().count("\n") == 2


def test_a_manifest_row_naming_a_fifo_fails_alone(tmp_path, fake_cli, fifo):
    two_bursts(tmp_path / "x.wav")
    m = manifest(
        tmp_path / "m.jsonl", [{"id": "f", "audio": str(fifo)}, {"id": "x", "audio": "x.wav"}]
    )
    out = invoke("transcribe", str(m), "-f", "keyed", "-o", str(tmp_path / "out"))
    assert out.exit_code == 1, out.output
    assert f"{fifo}: not a regular file" in out.output and "1 transcribed" in out.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x.keyed"]


# overlapping oracle segments ---------------------------------------------------------------


def test_an_oracle_segment_is_never_conditioned_on_one_it_overlaps():
    from types import SimpleNamespace

    from sbasr.asr.engines.whisper import WhisperEngine
    from sbasr.asr.options import WhisperDecodeOptions
    from sbasr.asr.segments import Span

    calls = []

    def transcribe(piece, clip_timestamps, initial_prompt, **common):
        calls.append((clip_timestamps, initial_prompt))
        pairs = zip(clip_timestamps[::2], clip_timestamps[1::2])
        segs = [
            SimpleNamespace(
                text=f"said {a:g}", start=a, end=b, words=[], avg_logprob=0, no_speech_prob=0
            )
            for a, b in pairs
        ]
        return iter(segs), SimpleNamespace(language="en")

    engine = object.__new__(WhisperEngine)
    engine.model, engine.multilingual, engine._memo = (
        SimpleNamespace(transcribe=transcribe),
        False,
        None,
    )
    spans = [Span(0.0, 2.0), Span(1.0, 3.0), Span(4.0, 5.0), Span(4.5, 6.0), Span(7.0, 8.0)]
    audio = np.zeros(9 * SR, np.float32)
    options = WhisperDecodeOptions(initial_prompt="hi")
    decoded = list(engine.decode(audio, spans, options))
    assert [d.start for d in decoded] == [0.0, 1.0, 4.0, 4.5, 7.0]  # every span, once
    # a span that overlaps an earlier one starts a call of its own, with the user's prompt
    assert calls == [([0.0, 2.0], "hi"), ([0.0, 2.0, 3.0, 4.0], "hi"), ([0.0, 1.5, 2.5, 3.5], "hi")]


# one-line errors ---------------------------------------------------------------------------


def test_a_model_with_pickled_weights_only_says_to_convert_them(tmp_path):
    from sbasr import SbasrError
    from sbasr.whisper.models import transformers_model

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "whisper"}))
    (model / "pytorch_model.bin").write_bytes(b"not a pickle")
    two_bursts(tmp_path / "x.wav")
    run = run_cli("transcribe", str(tmp_path / "x.wav"), "-m", str(model))
    assert run.returncode == 2, run.stderr
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith(f"sbasr: error: {model}: the weights are pickled (pytorch_model.bin)")
    assert "safetensors" in line
    with pytest.raises(SbasrError, match="convert them to safetensors"):
        transformers_model(str(model))


def test_a_nul_in_a_manifest_audio_path_is_a_one_line_error(tmp_path, fake_cli):
    m = manifest(tmp_path / "m.jsonl", [{"id": "a", "audio": "x\u0000.wav"}])
    out = invoke("transcribe", str(m), "-o", str(tmp_path / "out"))
    assert out.exit_code == 2, out.output
    assert f"{m}:1: the audio path has a NUL character" in out.output
    assert isinstance(out.exception, SystemExit)  # a clean exit, not a raised error


def test_outputs_that_cannot_be_written_name_the_output_and_leave_none(tmp_path, fake_cli):
    two_bursts(tmp_path / "x.wav")
    two_bursts(tmp_path / "y.wav")
    (tmp_path / "out" / "x.tsv").mkdir(parents=True)  # in the way, as a full disk would be
    out = invoke("transcribe", str(tmp_path), "-f", "all", "-o", str(tmp_path / "out"))
    assert out.exit_code == 1, out.output
    assert f"{tmp_path / 'out' / 'x.tsv'}: cannot write: " in out.output
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["x.tsv"] + [f"y.{e}" for e in ("json", "keyed", "srt", "tsv", "txt", "vtt")]


def test_a_broken_wav_header_is_described_in_words(tmp_path, fake_cli):
    (tmp_path / "bad.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt ")
    out = invoke("transcribe", str(tmp_path / "bad.wav"), "-o", str(tmp_path / "out"))
    assert out.exit_code == 1, out.output
    assert "bad.wav: cannot decode audio: Invalid data found when processing input" in out.output
    assert "Errno" not in out.output


def test_process_substitution_is_refused_before_a_model_loads(tmp_path):
    two_bursts(tmp_path / "x.wav")
    shell = f"{sys.executable} -m sbasr transcribe <(cat {tmp_path / 'x.wav'})"
    run = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    assert "not a regular file (a FIFO or pipe)" in run.stderr.splitlines()[0]
    assert list(tmp_path.iterdir()) == [tmp_path / "x.wav"]


# stopping: a closed pipe, Ctrl-C -----------------------------------------------------------


def test_a_closed_stdout_stops_the_batch_quietly(tmp_path, fake_vad, monkeypatch):
    from sbasr.asr.runner import run_batch
    from sbasr.asr.writers import writers_for

    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            pass

    paths = [two_bursts(tmp_path / f"{i}.wav") for i in range(4)]
    recordings, _ = sbasr.asr.inputs.expand_inputs(paths)
    engine = FakeEngine()
    monkeypatch.setattr("sys.stdout", ClosedPipe())
    result = run_batch(
        recordings, engine, TranscribeOptions(), writers_for("txt"), None, to_stdout=True
    )
    assert result.broken_pipe and not result.failures and result.done == 0
    assert len(engine.decoded) < 8  # not every recording decoded


def test_ctrl_c_says_what_was_finished_and_how_to_go_on(tmp_path, fake_cli):
    for i in range(3):
        two_bursts(tmp_path / f"{i}.wav")
    decode = fake_cli.decode

    def interrupted(audio, spans, options):
        if len(fake_cli.decoded) >= 2:  # the first recording is done
            raise KeyboardInterrupt
        yield from decode(audio, spans, options)

    fake_cli.decode = interrupted
    out = invoke("transcribe", str(tmp_path), "-f", "keyed", "-o", str(tmp_path / "out"))
    assert out.exit_code == 130, out.output
    assert "1 transcribed" in out.output
    assert "interrupted: 2 of 3 recordings not done" in out.output
    assert "--skip-existing" in out.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0.keyed"]
