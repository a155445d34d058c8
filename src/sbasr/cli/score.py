"""`sbasr score HYP REF`: per-language and pooled CER/WER.

The flags are derived from `ScoreRun`'s fields (`sbasr.cli.derive`); `sbasr score`
mostly runs without typer (`score_core`), reading the same fields.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .derive import derived_command
from .score_core import ScoreRun, run_score


def score(
    hyp: Annotated[Path, typer.Argument(help="Hypotheses: keyed text or JSON Lines.")],
    ref: Annotated[Path, typer.Argument(help="References: keyed text or JSON Lines.")],
    *,
    given: dict[str, Any],
) -> None:
    """Score hypotheses against references: per-language and pooled CER/WER."""
    code = run_score(hyp, ref, ScoreRun(**given))
    if code:
        raise typer.Exit(code)


score = derived_command(score, {"score": ScoreRun})
