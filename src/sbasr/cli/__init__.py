"""The `sbasr` command line: one module per command, each parsing its options and
handing over to the library.

Heavy modules (torch, transformers, numpy) are imported inside the commands, and a
command's module only when that command runs, so that `sbasr --help` and `sbasr score`
start in a fraction of a second: `sbasr score` never builds transcribe's or finetune's
flags (derived from their options classes at import).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from importlib import import_module
from typing import TYPE_CHECKING, Any

from .. import __version__

if TYPE_CHECKING:
    import typer

# The commands, in the order `sbasr --help` lists them: command name -> the module of
# sbasr.cli that defines it, as a function of the same name. Adding a command is one line
# here (`"merge": "merge",` for `merge.merge` in cli/merge.py); do not import command
# modules at the top of this file, nor call `app.command()` here.
COMMANDS: dict[str, str] = {
    "score": "score",
    "transcribe": "transcribe",
    "merge": "merge",
    "models": "models",
    "finetune": "finetune",
    "export": "export",
}

HELP = "Multilingual conversational speech recognition: Whisper and Speech-LLM side by side."


def build_app(names: Iterable[str] = COMMANDS) -> typer.Typer:
    """The typer app with the commands `names` (all by default), importing only their
    modules (and typer itself only here: `sbasr score` mostly runs without it)."""
    import typer

    def version_flag(value: bool) -> None:
        if value:
            typer.echo(f"sbasr {__version__}")
            raise typer.Exit()

    def root(
        version: bool = typer.Option(
            False, "--version", callback=version_flag, is_eager=True, help="Show the version."
        ),
    ) -> None:
        """Multilingual conversational speech recognition: Whisper and Speech-LLM side by
        side."""

    app = typer.Typer(
        name="sbasr",
        help=HELP,
        no_args_is_help=True,
        add_completion=False,  # static scripts ship in completions/ instead
        context_settings={"help_option_names": ["-h", "--help"]},
        pretty_exceptions_enable=False,
        rich_markup_mode=None,  # click's plain help: see `help`
    )
    app.callback()(root)
    from .help import PlainHelpCommand

    for name in names:
        module = import_module(f"{__name__}.{COMMANDS[name]}")
        app.command(name, cls=PlainHelpCommand)(getattr(module, name))
    return app


def __getattr__(name: str) -> Any:
    # `sbasr.cli.app`, every command registered, for tests, completions and embedding;
    # built on first use.
    if name == "app":
        app = globals()["app"] = build_app()
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def entry() -> None:
    """The `sbasr` command (and `python -m sbasr`): `main`, then, after `sbasr score`, out
    at once (`sbasr.core.private_hooks.exit_at_once`): nothing is left to do, and scoring's
    workers are already reaped (`sbasr.scoring.parallel`)."""
    try:
        main()
    except SystemExit as done:
        code = done.code
        if sys.argv[1:2] != ["score"] or not (code is None or isinstance(code, int)):
            raise
        from ..core.private_hooks import exit_at_once

        try:
            exit_at_once(code or 0)
        except OSError:  # a closed pipe: the interpreter reports it as it always did
            raise done from None


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else None
    if name == "score":  # without typer where it can: see `score_core`
        from .score_core import parse_score_args, run_score

        kwargs = parse_score_args(sys.argv[2:])
        if kwargs is not None:
            sys.exit(run_score(**kwargs))
    # Only the command being run is built; anything else (--help, --version, a typo)
    # gets the whole app, so lists and suggestions name every command.
    build_app([name] if name in COMMANDS else COMMANDS)()
