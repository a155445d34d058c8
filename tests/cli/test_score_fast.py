"""`sbasr score`'s fast path: the same arguments as typer reads them, without typer."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import random_pairs, run_cli, write_keyed

import sbasr.cli.score
from sbasr.cli import COMMANDS
from sbasr.cli.score_core import SCORE_FLAGS, parse_score_args, run_score

# Every flag, in each spelling the fast path reads, with defaults and repeats.
READ_ALIKE = [
    ["h", "r"],
    ["h", "r", "--json"],
    ["--json", "h", "r", "--strict"],
    ["h", "--language", "ja", "r"],
    ["h", "r", "-l", "en", "--language=es"],
    ["h", "r", "--language-from-key", "--no-language-from-key"],
    ["h", "r", "--language-from-key"],
    ["h", "r", "--normalize", "whisper", "--unit", "char"],
    ["h", "r", "--normalize=none", "--unit=mixed"],
    ["h", "r", "--by-line", "--no-strict"],
    ["h", "r", "--no-by-line", "--strict"],
    ["h", "r", "--alignments", "out/a.txt", "--jobs", "3"],
    ["h", "r", "--jobs=0", "--alignments=x"],
    ["--", "h", "r"],
    ["h", "--", "-r"],
]

# Left to typer: help, mistakes, and spellings the fast path does not read.
HANDED_OVER = [
    [],
    ["h"],
    ["h", "r", "x"],
    ["h", "r", "--help"],
    ["h", "r", "-h"],
    ["h", "r", "--normalize", "MLCSLM"],
    ["h", "r", "--unit", "words"],
    ["h", "r", "--jobs", "-1"],
    ["h", "r", "--jobs", "two"],
    ["h", "r", "--jobs"],
    ["h", "r", "--json=1"],
    ["h", "r", "-lja"],
    ["h", "r", "--lang", "ja"],
    ["h", "-", "r"],
    ["", "r"],
]


def _typer_kwargs(args: list[str], monkeypatch) -> dict:
    from typer.testing import CliRunner

    from sbasr.cli import app

    seen = []
    monkeypatch.setattr(sbasr.cli.score, "run_score", lambda *a, **kw: seen.append((a, kw)))
    result = CliRunner().invoke(app, ["score", *args])
    assert result.exit_code == 0, result.output
    (positional, kwargs) = seen[0]
    return dict(zip(("hyp", "ref", "options"), positional)) | kwargs


@pytest.mark.parametrize("args", READ_ALIKE, ids=" ".join)
def test_fast_path_reads_arguments_as_typer_does(args, monkeypatch):
    # ScoreRun's defaults stand for the flags not given, on both paths
    call = inspect.signature(run_score).bind(**parse_score_args(args))
    assert call.arguments == _typer_kwargs(args, monkeypatch)


@pytest.mark.parametrize("args", HANDED_OVER, ids=repr)
def test_fast_path_hands_over_what_it_does_not_read(args):
    assert parse_score_args(args) is None


def test_fast_path_knows_every_flag_of_the_command():
    import typer.main

    from sbasr.cli import app

    group = typer.main.get_command(app)
    ctx = group.context_class(group)
    command = group.get_command(ctx, "score")
    spellings = {
        name
        for p in command.get_params(ctx)
        if p.param_type_name == "option" and p.name != "help"
        for name in (*p.opts, *p.secondary_opts)
    }
    assert spellings == set(SCORE_FLAGS)


def test_score_runs_without_typer_nor_other_commands(tmp_path):
    rows = random_pairs(50, seed=3)
    ref = write_keyed(tmp_path / "ref", [(k, r) for k, _, r, _ in rows])
    hyp = write_keyed(tmp_path / "hyp", [(k, h) for k, _, _, h in rows])
    code = (
        "import sys\nfrom sbasr.cli import main\n"
        f"sys.argv = ['sbasr', 'score', {str(hyp)!r}, {str(ref)!r}, '--json']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "mods = ('typer', 'pydantic', 'sbasr.cli.finetune', 'sbasr.cli.transcribe')\n"
        "print(sorted(set(mods) & set(sys.modules)), file=sys.stderr)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stderr.strip() == "[]"
    report = sbasr.score(hyp, ref)
    assert json.loads(run.stdout)["pooled"]["errors"] == report.pooled.errors


def test_typer_path_builds_only_the_command_run(tmp_path):
    code = (
        "import sys\nfrom sbasr.cli import main\n"
        "sys.argv = ['sbasr', 'score', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted({'sbasr.cli.finetune', 'sbasr.cli.transcribe'} & set(sys.modules)),"
        " file=sys.stderr)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0 and run.stderr.strip() == "[]", run.stderr
    assert "--strict" in run.stdout and "--alignments" in run.stdout


def test_help_lists_every_command_and_errors_are_typers(tmp_path):
    out = run_cli("--help")
    assert out.returncode == 0
    assert all(name in out.stdout for name in COMMANDS)
    bad = run_cli("score", str(tmp_path / "h"), str(tmp_path / "r"), "--unit", "words")
    assert bad.returncode == 2 and "words" in bad.stderr and "Usage" in bad.stderr
    missing = run_cli("score", str(tmp_path / "h"), str(Path(tmp_path / "r")))
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"sbasr: error: {tmp_path / 'h'}: no such file"
