"""The `sbasr` command line: one module per command, each parsing its options and
handing over to the library.

Heavy modules (torch, transformers, numpy) are imported inside the commands, so that
`sbasr --help` and `sbasr score` start in a fraction of a second.
"""

from __future__ import annotations

from typing import Annotated

import typer

from .. import __version__
from . import export, finetune, models, score, transcribe

app = typer.Typer(
    name="sbasr",
    help="Multilingual conversational speech recognition: Whisper and Speech-LLM side by side.",
    no_args_is_help=True,
    add_completion=False,  # static scripts ship in completions/ instead
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


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


# Registered in the order `sbasr --help` lists them.
app.command()(score.score)
app.command()(transcribe.transcribe)
app.command()(models.models)
app.command()(finetune.finetune)
app.command()(export.export)


def main() -> None:
    app()
