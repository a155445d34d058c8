"""What every command module shares: choice types built from `sbasr.core.choices`, and the
one-line error."""

from __future__ import annotations

from enum import Enum

import typer

from ..core.errors import SbasrError


def choice(name: str, values: tuple[str, ...]) -> type[Enum]:
    """A string Enum typer can show as a choice list, from one of sbasr's vocabularies."""
    return Enum(name, {v: v for v in values}, type=str)  # type: ignore[return-value]


def fail(error: SbasrError) -> typer.Exit:
    """Print `error` as sbasr's one-line message; raise the result to exit with code 2."""
    typer.echo(f"sbasr: error: {error}", err=True)
    return typer.Exit(2)
