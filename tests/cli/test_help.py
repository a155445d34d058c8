"""Every command's --help in an 80-column terminal: plain metavars, nothing cut off."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from sbasr.cli import COMMANDS
from sbasr.core.options import cli_fields


def _help(command: str, columns: int = 80) -> str:
    env = {**os.environ, "COLUMNS": str(columns), "TERM": "xterm-256color"}
    out = subprocess.run(
        [sys.executable, "-m", "sbasr", command, "--help"], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.parametrize("command", list(COMMANDS))
def test_help_at_80_columns_reads_plainly(command):
    text = _help(command)
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    # no type names (<list[Path]>, <bool>, <str>, <int range>), nothing cut off
    assert not re.search(r"<(list\[|bool|str|int|float|path|text)", text), text
    assert "…" not in text
    # help text has room: a continuation line starts at most 34 columns in
    for line in lines:
        if line.startswith(" " * 20):
            assert len(line) - len(line.lstrip()) <= 34, line
    # every choice list is written whole, on one line
    for choices in re.findall(r"\[[a-z0-9._-]+(?:\|[^\]\s]+)+", text):
        assert choices.count("[") == 1
    # metavars are plain words
    metavars = set(re.findall(r"^\s+(?:-\w, )?--[\w-]+ ([A-Z]+)\b", text, re.M))
    assert metavars <= {"N", "NUM", "TEXT", "FILE", "DIR", "LIST"}, metavars


def test_transcribe_help_shows_every_flag_whole():
    from sbasr.asr.options import TranscribeOptions, WhisperDecodeOptions

    text = _help("transcribe")
    assert "Usage: " in text and "{FILES}..." in text
    assert "  FILES  Audio files" in text
    assert "--skip-existing / --no-skip-existing" in text
    assert "--language-per-segment / --no-language-per-segment" in text
    assert "-f, --format [txt|srt|vtt|json|tsv|keyed|all]" in text
    assert "--beam-size N" in text and "--temperature NUM" in text
    assert "-o, --output-dir DIR" in text and "--hotwords TEXT" in text
    for cls in (TranscribeOptions, WhisperDecodeOptions):
        for f in cli_fields(cls):
            flag = (f.metadata.get("flags") or ("--" + f.name.replace("_", "-"),))[0]
            assert re.search(rf"(^|\s){re.escape(flag)}(\s|$)", text), flag
