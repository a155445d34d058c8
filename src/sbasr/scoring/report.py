"""Showing a `ScoreReport` to people: the rich table and the alignment file."""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Iterable

from rich.cells import cell_len
from rich.console import Console
from rich.segment import Segments
from rich.table import Table

from ..io import languages
from ..io.files import write_atomic
from .edit_distance import align
from .results import ErrorCounts, ScoreReport, ScoreSummary, UtteranceScore

_UNIT_NAMES = {"word": "words", "char": "chars", "mixed": "chars", "pooled": "tokens"}


def _rate(rate: float | None) -> str:
    return "n/a" if rate is None else f"{100 * rate:.2f}%"


def render_table(report: ScoreSummary, console: Console) -> None:
    """Per-language rows, then the pooled row that is the headline figure."""
    table = Table(title=f"sbasr score (normalize: {report.normalize})", title_justify="left")
    for header in ("language", "metric", "utts", "ref tokens", "sub", "del", "ins", "errors"):
        left = header in ("language", "metric")
        table.add_column(header, justify="left" if left else "right", no_wrap=left)
    table.add_column("rate", justify="right", style="bold")

    def row(counts: ErrorCounts, label: str, **style: str) -> None:
        table.add_row(
            label,
            counts.metric,
            f"{counts.utterances:,}",
            f"{counts.ref_tokens:,}",
            f"{counts.substitutions:,}",
            f"{counts.deletions:,}",
            f"{counts.insertions:,}",
            f"{counts.errors:,}",
            _rate(counts.rate),
            **style,
        )

    for counts in report.languages:
        label = languages.name(counts.language)
        row(counts, label if counts.language is None else f"{label} ({counts.language})")
    table.add_section()
    row(report.pooled, "pooled", style="bold")
    # A table wider than the terminal (or than rich's 80 columns in a pipe) is printed
    # whole, for the terminal to wrap, rather than squeezed into counts cut short ("1,90…").
    natural = console.measure(table, options=console.options.update_width(10_000)).maximum
    lines = console.render(table, console.options.update_width(max(console.width, natural)))
    console.print(Segments(lines), crop=False, soft_wrap=True)
    unknown = [c for c in report.languages if c.language is None]
    if unknown:
        n = unknown[0].utterances
        what = f"{n:,} utterance has" if n == 1 else f"{n:,} utterances have"
        console.print(
            f"[yellow]{what} no language[/] and scored by the mixed rule (MER): give "
            "--language CODE, or --language-from-key where keys start with one "
            "(English-American-..., ja-...)",
            soft_wrap=True,
        )
    if report.missing:
        console.print(
            f"[yellow]{len(report.missing)} reference utterances have no hypothesis and count "
            f"as all deletions[/] (first: {report.missing[0]})"
        )
    if report.extra:
        console.print(
            f"[yellow]{len(report.extra)} hypothesis utterances have no reference and were not "
            f"scored[/] (first: {report.extra[0]})"
        )


def write_alignments(report: ScoreReport, path: str | os.PathLike[str]) -> None:
    """Every utterance aligned, worst first, so that a reader meets the problems at the top."""
    utts = sorted(
        report.utterances(),
        key=lambda u: (-u.errors, -(u.rate if u.rate is not None else float("inf")), u.id),
    )
    write_atomic(path, "".join(_blocks(utts)))


def _blocks(utts: Iterable[UtteranceScore]) -> Iterable[str]:
    for u in utts:
        yield alignment_text(u) + "\n"


def alignment_text(utt: UtteranceScore) -> str:
    """One utterance as REF / HYP / marks lines, columns padded to the display width."""
    unit = _UNIT_NAMES.get(utt.unit, "tokens")
    header = (
        f"{utt.id}  {languages.name(utt.language)}  "
        f"{_rate(utt.rate)}  {utt.errors} errors (S {utt.substitutions}, D {utt.deletions}, "
        f"I {utt.insertions}) / {len(utt.reference)} {unit}"
    )
    if utt.hypothesis is None:
        header += "  [no hypothesis]"
    ref_cells, hyp_cells, marks = ["REF:"], ["HYP:"], ["    "]
    for col in align(utt.reference, utt.hypothesis or []):
        r = _shown(col.ref) if col.ref is not None else None
        h = _shown(col.hyp) if col.hyp is not None else None
        r = r if r is not None else "*" * max(1, cell_len(h or ""))
        h = h if h is not None else "*" * max(1, cell_len(r))
        width = max(cell_len(r), cell_len(h))
        ref_cells.append(_pad(r, width))
        hyp_cells.append(_pad(h, width))
        marks.append(_pad("" if col.op == "C" else col.op, width))
    lines = [header, " ".join(ref_cells), " ".join(hyp_cells), " ".join(marks).rstrip()]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _shown(token: str) -> str:
    """A token as printed: a lone combining mark (Thai vowel or tone sign scored on its own)
    rides on a dotted circle, as dictionaries print it, instead of on its neighbour."""
    if token and unicodedata.category(token[0]).startswith("M"):
        return "\u25cc" + token
    return token


def _pad(text: str, width: int) -> str:
    return text + " " * (width - cell_len(text))
