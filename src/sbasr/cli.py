"""The `sbasr` command line: parses arguments and hands over to the library.

Heavy modules (torch, transformers, numpy) are imported inside the commands, so that
`sbasr --help` and `sbasr score` start in a fraction of a second.
"""

from __future__ import annotations

import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from . import __version__
from .errors import SbasrError

app = typer.Typer(
    name="sbasr",
    help="Multilingual conversational speech recognition: Whisper and Speech-LLM side by side.",
    no_args_is_help=True,
    add_completion=False,  # static scripts ship in completions/ instead
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


class Normalizer(str, Enum):
    mlcslm = "mlcslm"
    whisper = "whisper"
    none = "none"


class Unit(str, Enum):
    word = "word"
    char = "char"
    mixed = "mixed"


def _fail(error: SbasrError) -> typer.Exit:
    typer.echo(f"sbasr: error: {error}", err=True)
    return typer.Exit(2)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"sbasr {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Multilingual conversational speech recognition: Whisper and Speech-LLM side by side."""


@app.command()
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
    ] = Normalizer.mlcslm,
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
    from .score import score as run_score

    try:
        report = run_score(
            hyp,
            ref,
            language=language,
            language_from_key=language_from_key,
            normalize=normalize.value,
            unit=unit.value if unit else None,
            by_line=by_line,
            strict=strict,
            jobs=jobs or min(os.cpu_count() or 1, 8),
        )
        if alignments is not None:
            from .report import write_alignments

            write_alignments(report, alignments)
    except SbasrError as e:
        raise _fail(e) from None
    if as_json:
        sys.stdout.write(json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n")
        return
    from rich.console import Console

    from .report import render_table

    render_table(report, Console())


_PENDING = {"context_settings": {"allow_extra_args": True, "ignore_unknown_options": True}}


@app.command(**_PENDING)
def transcribe() -> None:
    """Transcribe recordings (Whisper or Speech-LLM engine). Not implemented yet."""
    _not_yet("transcribe")


@app.command(**_PENDING)
def finetune() -> None:
    """Fine-tune Whisper (LoRA or full) or train a Speech-LLM. Not implemented yet."""
    _not_yet("finetune")


@app.command(**_PENDING)
def export() -> None:
    """Export a fine-tuned model to CTranslate2. Not implemented yet."""
    _not_yet("export")


def _not_yet(name: str) -> None:
    typer.echo(f"sbasr: error: '{name}' is not implemented yet", err=True)
    raise typer.Exit(2)


def main() -> None:
    app()
