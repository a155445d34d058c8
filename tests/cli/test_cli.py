"""The `sbasr` command as a user runs it: a separate process, real files."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest
from conftest import random_pairs, run_cli, write_keyed

import sbasr

ROOT = Path(__file__).resolve().parents[2]


def test_help_and_version():
    out = run_cli("--help")
    assert out.returncode == 0
    for command in ("score", "transcribe", "finetune", "export"):
        assert command in out.stdout
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"sbasr {sbasr.__version__}"
    # setuptools took the installed version from sbasr.__version__
    assert importlib.metadata.version("sbasr") == sbasr.__version__


def test_speechllm_bad_input_gets_one_line_errors(tmp_path):
    missing = tmp_path / "nope.jsonl"
    out = run_cli("finetune", "--arch", "speechllm", "--train", str(missing), "-o", str(tmp_path))
    assert out.returncode == 2 and str(missing) in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    out = run_cli(
        "finetune",
        "--arch",
        "speechllm",
        "--train",
        str(missing),
        "-o",
        str(tmp_path),
        "--stages",
        "3",
    )
    assert out.returncode == 2 and "stages" in out.stderr
    out = run_cli("transcribe", str(ROOT / "README.md"), "--engine", "speechllm")
    assert out.returncode == 2 and "needs a trained model" in out.stderr


def test_score_table_json_and_alignments(tmp_path):
    rows = random_pairs(400, seed=7)
    ref = write_keyed(tmp_path / "ref.txt", [(k, r) for k, _, r, _ in rows])
    hyp = write_keyed(tmp_path / "hyp.txt", [(k, h) for k, _, _, h in rows[:-1]])
    table = run_cli("score", str(hyp), str(ref), "--language-from-key")
    assert table.returncode == 0, table.stderr
    for name in ("English", "Japanese", "Thai", "Korean", "Spanish", "pooled"):
        assert name in table.stdout
    assert "1 reference utterances have no hypothesis" in table.stdout

    js = run_cli(
        "score",
        str(hyp),
        str(ref),
        "--language-from-key",
        "--json",
        "--alignments",
        str(tmp_path / "align.txt"),
    )
    data = json.loads(js.stdout)
    report = sbasr.score(hyp, ref, language_from_key=True)
    assert data["pooled"]["errors"] == report.pooled.errors
    assert data["pooled"]["rate"] == pytest.approx(report.pooled.rate)
    assert data["missing_hypotheses"] == [rows[-1][0]]
    assert {row["language"] for row in data["languages"]} == {"en", "es", "ja", "th", "ko"}

    blocks = (tmp_path / "align.txt").read_text("utf-8").strip().split("\n\n")
    assert len(blocks) == 400
    errors = [int(re.search(r"(\d+) errors", b).group(1)) for b in blocks]
    assert errors == sorted(errors, reverse=True)  # worst first
    worst = blocks[0].splitlines()
    assert worst[1].startswith("REF:") and worst[2].startswith("HYP:")
    marks = worst[3]
    assert sum(marks.count(op) for op in "SDI") == errors[0]


def test_score_bad_input_is_one_line_and_exit_2(tmp_path):
    ref = tmp_path / "ref.txt"
    ref.write_bytes(b"a one\na two\n")
    out = run_cli("score", str(ref), str(ref))
    assert out.returncode == 2
    assert out.stderr.strip() == f"sbasr: error: {ref}:2: duplicate utterance id 'a'"
    missing = run_cli("score", str(tmp_path / "none.txt"), str(ref))
    assert missing.returncode == 2 and "none.txt: no such file" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


def test_strict_fails_on_mismatched_ids(tmp_path):
    ref = write_keyed(tmp_path / "ref", [("a", "x"), ("b", "y")])
    hyp = write_keyed(tmp_path / "hyp", [("a", "x")])
    assert run_cli("score", str(hyp), str(ref)).returncode == 0
    strict = run_cli("score", str(hyp), str(ref), "--strict")
    assert strict.returncode == 2 and "have no hypothesis" in strict.stderr


def test_alignment_file_is_not_left_half_written_on_error(tmp_path):
    ref = write_keyed(tmp_path / "ref", [("a", "x")])
    out_file = tmp_path / "align.txt"
    out_file.write_text("previous run\n")
    bad = tmp_path / "hyp"
    bad.write_bytes(b"a \xff\n")
    assert run_cli("score", str(bad), str(ref), "--alignments", str(out_file)).returncode == 2
    assert out_file.read_text() == "previous run\n"
    assert list(tmp_path.glob(".align.txt.*")) == []


def _readme_test_command() -> str:
    """The README's test command, taken out by .ci/run's own line, as CI takes it."""
    (line,) = [
        ln for ln in (ROOT / ".ci" / "run").read_text("utf-8").splitlines() if ln.startswith("cmd=")
    ]
    out = subprocess.run(
        ["bash", "-c", f'{line}\nprintf %s "$cmd"'], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def _run_with_stubs(command: str, tmp_path: Path, fail_on: str = "") -> tuple[int, list[str]]:
    """Run `command` as .ci/run does, with `pip` and `python` replaced by stubs that log
    their arguments (and fail for an argument `fail_on`): what it would run, in order."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir(exist_ok=True)
    log.write_text("")
    for tool in ("pip", "python"):
        stub = bin_dir / tool
        stub.write_text(
            f'#!/bin/sh\necho "{tool} $*" >> "$LOG"\ncase " $* " in *" $FAIL_ON "*) exit 1;; esac\n'
        )
        stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "LOG": str(log)}
    env["FAIL_ON"] = fail_on or "\x01"
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=tmp_path, env=env)
    return out.returncode, log.read_text().splitlines()


def test_ci_runs_the_readme_test_command(tmp_path):
    command = _readme_test_command()
    torch_pin = re.search(r"torch==(\S+)", command)
    assert torch_pin, command
    code, calls = _run_with_stubs(command, tmp_path)
    assert code == 0
    assert calls == [
        f"pip install torch=={torch_pin.group(1)}",
        "pip install -e .[test,dev]",
        "python -m pytest",
    ]
    # A failed install stops the command: the tests never run against a half environment.
    code, calls = _run_with_stubs(command, tmp_path, fail_on=f"torch=={torch_pin.group(1)}")
    assert code != 0 and calls == [f"pip install torch=={torch_pin.group(1)}"]


def _docs_console_block(page: str, first: str) -> list[str]:
    """The lines of the console block in docs/`page` that starts with `first`."""
    lines = (ROOT / "docs" / page).read_text("utf-8").splitlines()
    start = lines.index(first)
    return lines[start : lines.index("```", start)]


def test_docs_score_example_prints_what_the_docs_show(tmp_path):
    first = "$ sbasr score examples/hyp.txt examples/ref.txt --language-from-key"
    block = _docs_console_block("scoring.md", f"{first} --alignments align.txt")
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    steps = [i for i, ln in enumerate(block) if ln.startswith("$ ")] + [len(block)]
    # Wide enough for the table as the docs show it; rich wraps headers below that.
    env = {**os.environ, "COLUMNS": "100"}
    for at, end in pairwise(steps):
        args = shlex.split(block[at][2:])
        if args[0] == "sbasr":
            args = [sys.executable, "-m", "sbasr", *args[1:]]
        out = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert [ln.rstrip() for ln in out.stdout.splitlines()] == block[at + 1 : end]


@pytest.mark.parametrize("which", ["hyp", "ref", "link"])
def test_score_alignments_never_overwrite_an_input(tmp_path, which):
    hyp = tmp_path / "hyp.txt"
    ref = tmp_path / "ref.txt"
    hyp.write_text("u1 a b c\n")
    ref.write_text("u1 a b d\n")
    target = {"hyp": hyp, "ref": ref, "link": tmp_path / "link.txt"}[which]
    if which == "link":
        target.symlink_to(ref)
    before = (hyp.read_bytes(), ref.read_bytes())
    run = run_cli("score", str(hyp), str(ref), "--alignments", str(target))
    assert run.returncode == 2, run.stderr
    (line,) = run.stderr.splitlines()
    assert line.startswith(f"sbasr: error: {target}: --alignments would overwrite the ")
    assert (hyp.read_bytes(), ref.read_bytes()) == before


def test_test_speech_needs_no_system_tool(tmp_path):
    """The tests' speech is spoken in-process by the test extra: on a PATH without any
    espeak-ng (a bare machine) it is still real speech of the text's length."""
    bare = tmp_path / "bin"  # nothing on PATH at all
    bare.mkdir()
    code = (
        "import sys, numpy as np; sys.path.insert(0, sys.argv[1]); from conftest import speak; "
        "a = speak('Hold on while we try to connect you.'); "
        "b = speak('Por favor, espere.', 'es'); "
        "print(len(a) / 16000, float(np.sqrt(np.mean(a * a))), len(b) / 16000)"
    )
    env = {**os.environ, "PATH": str(bare)}
    out = subprocess.run(
        [sys.executable, "-c", code, str(ROOT / "tests")],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    seconds, rms, spanish = map(float, out.stdout.split())
    assert 1.5 < seconds < 5 and rms > 0.01 and 0.5 < spanish < 3
