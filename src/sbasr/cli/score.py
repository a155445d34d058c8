"""`sbasr score HYP REF`: per-language and pooled CER/WER."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..core.choices import NORMALIZERS, UNITS
from .common import choice
from .score_core import run_score

Normalizer = choice("Normalizer", NORMALIZERS)
Unit = choice("Unit", UNITS)


def score(
    hyp: Annotated[Path, typer.Argument(help="Hypotheses: keyed text or JSON Lines.")],
    ref: Annotated[Path, typer.Argument(help="References: keyed text or JSON Lines.")],
    language: Annotated[
        str | None, typer.Option("--language", "-l", help="Language of every utterance.")
    ] = None,
    language_from_key: Annotated[
        bool,
        typer.Option(help="Take the language from the key prefix (English-American-..., ja-...)."),
    ] = False,
    normalize: Annotated[
        Normalizer, typer.Option(help="Text normalisation; mlcslm is the challenge's rule.")
    ] = Normalizer["mlcslm"],
    unit: Annotated[
        Unit | None,
        typer.Option(
            help="Count words or characters for all (default: chars for ja ko th zh "
            "yue, words otherwise)."
        ),
    ] = None,
    by_line: Annotated[
        bool, typer.Option(help="Plain text, one utterance per line, matched by line number.")
    ] = False,
    strict: Annotated[
        bool, typer.Option(help="Fail if an id is in one file but not the other.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
    alignments: Annotated[
        Path | None,
        typer.Option(help="Write every utterance aligned (REF/HYP/S-D-I), worst first."),
    ] = None,
    jobs: Annotated[
        int, typer.Option(help="Processes for large sets; 0 = one per CPU core.", min=0)
    ] = 0,
) -> None:
    """Score hypotheses against references: per-language and pooled CER/WER."""
    # `sbasr score` usually runs `run_score` without typer (`score_core`); this is the
    # same run for what that fast path hands over.
    code = run_score(
        hyp,
        ref,
        language=language,
        language_from_key=language_from_key,
        normalize=normalize.value,
        unit=unit.value if unit else None,
        by_line=by_line,
        strict=strict,
        as_json=as_json,
        alignments=alignments,
        jobs=jobs,
    )
    if code:
        raise typer.Exit(code)
