"""Completion scripts: current with the CLI, and working in a real bash."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The generator is a development tool, not part of the installed package.
_spec = importlib.util.spec_from_file_location("completions", ROOT / "tools" / "completions.py")
completions = importlib.util.module_from_spec(_spec)
sys.modules["completions"] = completions  # dataclasses look their module up
_spec.loader.exec_module(completions)
FILES, scripts = completions.FILES, completions.scripts


def test_committed_scripts_are_current():
    for name, text in scripts().items():
        committed = (ROOT / "completions" / name).read_text("utf-8")
        assert committed == text, f"completions/{name} is stale: python tools/completions.py"
    assert set(FILES.values()) == {p.name for p in (ROOT / "completions").iterdir()}


def _bash_complete(words: str, tmp_path: Path) -> list[str]:
    script = ROOT / "completions" / FILES["bash"]
    line = f"sbasr {words}"
    if words.endswith(" ") or not words:
        line += " ''"  # completing a new, empty word
    cmd = f"source {script}; COMP_WORDS=({line}); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ));"
    out = subprocess.run(
        ["bash", "-c", cmd + ' _sbasr; printf "%s\\n" "${COMPREPLY[@]}"'],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    return [w for w in out.stdout.splitlines() if w]


def test_bash_completes_commands_options_and_choices(tmp_path):
    assert shutil.which("bash")
    assert set(_bash_complete("", tmp_path)) >= {"score", "transcribe", "finetune", "export"}
    assert _bash_complete("sc", tmp_path) == ["score"]
    assert _bash_complete("score --norm", tmp_path) == ["--normalize"]
    assert _bash_complete("score --normalize ", tmp_path) == ["mlcslm", "whisper", "none"]
    assert _bash_complete("score --unit c", tmp_path) == ["char"]
    (tmp_path / "hyp.txt").write_text("")
    assert _bash_complete("score hy", tmp_path) == ["hyp.txt"]


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_other_shells_parse_their_scripts(shell):
    exe = shutil.which(shell)
    if exe is None:
        # a shell from the system, not from PyPI: its script is checked where it runs
        pytest.skip(f"{shell} is not installed, so its completion script is not parsed")
    subprocess.run([exe, "-n", str(ROOT / "completions" / FILES[shell])], check=True)
