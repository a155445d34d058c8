"""What `sbasr score` does, without typer: the run itself, and a reader of its flags
straight from the command line.

Scoring 10^5 utterances takes under a second, so start-up matters: typer's import and
its per-parameter validators (pydantic) were a third of a run. `sbasr score` therefore
reads its arguments here first, and hands over to typer (`sbasr.cli.score`, the one
definition of the flags and their help) for anything this reader does not take as
plainly valid: --help, a mistake, an unusual spelling. Both call `run_score`, and a test
checks that both read every flag alike.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from ..core.choices import NORMALIZERS, UNITS
from ..core.errors import SbasrError

# Option spelling -> (parameter, what it takes): a tuple of choices, `str`, `int` (>= 0),
# `Path`, or the value a bare flag sets.
SCORE_FLAGS: dict[str, tuple[str, Any]] = {
    "--language": ("language", str),
    "-l": ("language", str),
    "--language-from-key": ("language_from_key", True),
    "--no-language-from-key": ("language_from_key", False),
    "--normalize": ("normalize", NORMALIZERS),
    "--unit": ("unit", UNITS),
    "--by-line": ("by_line", True),
    "--no-by-line": ("by_line", False),
    "--strict": ("strict", True),
    "--no-strict": ("strict", False),
    "--json": ("as_json", True),
    "--alignments": ("alignments", Path),
    "--jobs": ("jobs", int),
}


def parse_score_args(args: list[str]) -> dict[str, Any] | None:
    """`run_score`'s keyword arguments for `sbasr score ARGS`, or None where typer must
    read them (help, an error to report, a form such as `-lja` this reader leaves alone)."""
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
            values[param] = int(value)
        elif kind is Path:
            values[param] = Path(value)
        elif kind is str or value in kind:
            values[param] = value
        else:
            return None
    if len(positional) != 2 or not all(positional):
        return None
    return {"hyp": Path(positional[0]), "ref": Path(positional[1]), **values}


def run_score(
    hyp: Path,
    ref: Path,
    *,
    language: str | None = None,
    language_from_key: bool = False,
    normalize: str = "mlcslm",
    unit: str | None = None,
    by_line: bool = False,
    strict: bool = False,
    as_json: bool = False,
    alignments: Path | None = None,
    jobs: int = 0,
) -> int:
    """Score and print the table (or JSON); the exit status: 2 after a one-line error."""
    from ..scoring.api import score, score_summary

    try:
        if alignments is not None:
            check_not_an_input(alignments, {"hypothesis": hyp, "reference": ref})
        # the table needs the counts alone; the alignments need every utterance
        report = (score if alignments is not None else score_summary)(
            hyp,
            ref,
            language=language,
            language_from_key=language_from_key,
            normalize=normalize,
            unit=unit,
            by_line=by_line,
            strict=strict,
            jobs=jobs or min(os.cpu_count() or 1, 8),
        )
        if alignments is not None:
            from ..scoring.report import write_alignments

            write_alignments(report, alignments)
    except SbasrError as e:
        sys.stdout.flush()
        sys.stderr.write(f"sbasr: error: {e}\n")
        return 2
    if as_json:
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
