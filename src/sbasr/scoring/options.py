"""What a scoring run is set with, every default written once.

`sbasr.scoring.api` takes its keyword defaults from `ScoreOptions`, and `sbasr score`
derives its flags from it (`sbasr.cli.score`, `sbasr.cli.score_core`). Torch- and
numpy-free, so that `sbasr score` starts fast.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from ..core.choices import NORMALIZERS, UNITS
from ..core.options import option

MAX_AUTO_JOBS = 8  # scoring's share of a machine when `jobs` is 0


@dataclass(frozen=True)
class ScoreOptions:
    """How hypotheses are matched, normalised, counted and spread over processes."""

    language: str | None = option(None, "Language of every utterance.", flags=("--language", "-l"))
    language_from_key: bool = option(
        False, "Take the language from the key prefix (English-American-..., ja-...)."
    )
    normalize: str = option(
        "mlcslm", "Text normalisation; mlcslm is the challenge's rule.", choices=NORMALIZERS
    )
    unit: str | None = option(
        None,
        "Count words or characters for all (default: chars for ja ko th zh yue, words otherwise).",
        choices=UNITS,
    )
    by_line: bool = option(False, "Plain text, one utterance per line, matched by line number.")
    strict: bool = option(False, "Fail if an id is in one file but not the other.")
    jobs: int = option(
        0,
        f"Processes for large sets; 0 = one per CPU core (at most {MAX_AUTO_JOBS}) when "
        "no other thread runs.",
        min=0,
    )


def resolve_jobs(jobs: int) -> int:
    """The number of processes `jobs` stands for.

    Args:
        jobs: A count of processes, or 0 for one per CPU core (at most `MAX_AUTO_JOBS`).

    Returns:
        `jobs` itself when it is positive; for 0, one per core, or 1 while another Python
        thread runs (a forked worker could inherit a lock that thread holds).
    """
    if jobs > 0:
        return jobs
    if threading.active_count() > 1:
        return 1
    return max(1, min(os.cpu_count() or 1, MAX_AUTO_JOBS))
