"""What `sbasr score` does, without typer: the run itself, and a reader of its flags
straight from the command line.

Start-up is a large share of scoring a test set, and typer's import and its validators
are a large share of start-up. `sbasr score` therefore reads its arguments here first,
and hands over to typer (`sbasr.cli.score`) for anything this reader does not take as
plainly valid: --help, a mistake, an unusual spelling. Both read the flags off the fields
of `ScoreRun` (spelling, type, choices, bounds and default), and both call `run_score`.
"""

from __future__ import annotations

import json
import os
import sys
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ..core.errors import SbasrError
from ..core.options import cli_fields, option
from ..scoring.options import ScoreOptions


@dataclass(frozen=True)
class ScoreRun(ScoreOptions):
    """`sbasr score`: the scoring options, and what to print and write."""

    as_json: bool = option(False, "Print JSON for machines.", flags=("--json",))
    alignments: str | None = option(
        None, "Write every utterance aligned (REF/HYP/S-D-I), worst first.", path=True
    )

    def scoring(self) -> dict[str, Any]:
        """The keyword arguments of `sbasr.scoring.api.score` these options stand for."""
        return {f.name: getattr(self, f.name) for f in fields(ScoreOptions)}


def _flag_table(cls: type) -> dict[str, tuple[str, Any]]:
    """Option spelling -> (field, what it takes) for the CLI fields of `cls`: a tuple of
    choices, `str`, `int` (at least the field's bound), `Path`, or the value a bare flag
    sets. The spellings are `sbasr.cli.derive`'s: the field's `flags`, else `--name`, and
    `--no-name` beside a boolean's derived `--name`."""
    hints = typing.get_type_hints(cls)
    table: dict[str, tuple[str, Any]] = {}
    for f in cli_fields(cls):
        meta = f.metadata
        names = meta.get("flags") or ("--" + f.name.replace("_", "-"),)
        kind: Any
        if hints[f.name] is bool:
            table.update({n: (f.name, True) for n in names})
            if not meta.get("flags"):
                table[f"--no-{names[0][2:]}"] = (f.name, False)
            continue
        if meta.get("choices"):
            kind = tuple(meta["choices"])
        elif meta.get("path"):
            kind = Path
        elif int in (hints[f.name], *typing.get_args(hints[f.name])):
            kind = int
        else:
            kind = str
        table.update({n: (f.name, kind) for n in names})
    return table


SCORE_FLAGS: dict[str, tuple[str, Any]] = _flag_table(ScoreRun)
_MIN = {f.name: f.metadata.get("min") for f in cli_fields(ScoreRun)}


def parse_score_args(args: list[str]) -> dict[str, Any] | None:
    """`run_score`'s arguments for `sbasr score ARGS`.

    Args:
        args: The command line after `score`.

    Returns:
        `{"hyp", "ref", "options"}`, or None where typer must read the arguments (help,
        an error to report, a form such as `-lja` this reader leaves alone).
    """
    values: dict[str, Any] = {}
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            positional.extend(args[i:])
            break
        if not arg.startswith("-") or arg == "-":
            positional.append(arg)
            continue
        name, eq, attached = arg.partition("=")
        if name not in SCORE_FLAGS or (eq and not name.startswith("--")):
            return None
        param, kind = SCORE_FLAGS[name]
        if isinstance(kind, bool):
            if eq:
                return None
            values[param] = kind
            continue
        if eq:
            value = attached
        elif i < len(args):
            value, i = args[i], i + 1
        else:
            return None
        if not value or value.startswith("-"):
            return None
        if kind is int:
            if not (value.isascii() and value.isdigit()):
                return None
            if _MIN[param] is not None and int(value) < _MIN[param]:
                return None
            values[param] = int(value)
        elif kind is Path:
            values[param] = str(Path(value))  # as typer's Path, then the field's str
        elif kind is str or value in kind:
            values[param] = value
        else:
            return None
    if len(positional) != 2 or not all(positional):
        return None
    return {"hyp": Path(positional[0]), "ref": Path(positional[1]), "options": ScoreRun(**values)}


def run_score(hyp: Path, ref: Path, options: ScoreRun) -> int:
    """Score and print the table (or JSON), writing the alignments if asked.

    Args:
        hyp: The hypotheses.
        ref: The references.
        options: What `sbasr score` was given.

    Returns:
        The exit status: 0, or 2 after a one-line error on standard error.
    """
    from ..scoring.api import score, score_summary

    try:
        # the table needs the counts alone; the alignments need every utterance
        alignments = options.alignments
        if alignments is not None:
            check_not_an_input(Path(alignments), {"hypothesis": hyp, "reference": ref})
        report = (score if alignments is not None else score_summary)(hyp, ref, **options.scoring())
        if alignments is not None:
            from ..scoring.report import write_alignments

            write_alignments(report, Path(alignments))
    except SbasrError as e:
        sys.stdout.flush()
        sys.stderr.write(f"sbasr: error: {e}\n")
        return 2
    if options.as_json:
        sys.stdout.write(json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n")
        return 0
    from rich.console import Console

    from ..scoring.report import render_table

    render_table(report, Console())
    return 0


def check_not_an_input(output: Path, inputs: dict[str, Path]) -> None:
    """Refuse to write `output` where it is one of `inputs` (what -> path): the same
    path, or another name of the same file (a link, `./`, `/dev/fd/N`).

    Raises:
        SbasrError: `output` is one of the inputs.
    """
    for what, path in inputs.items():
        try:
            same = output.resolve() == path.resolve() or os.path.samefile(output, path)
        except (OSError, ValueError):  # one does not exist (yet): not the same file
            same = False
        if same:
            raise SbasrError(
                f"{output}: --alignments would overwrite the {what} file {path}; name another file"
            )
