"""`sbasr models`: the models available here."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from ..core.errors import SbasrError
from .common import fail


def models(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """List the models available here: where each comes from, its path and size."""
    from ..whisper.models import list_models

    try:
        found = list_models()
    except SbasrError as e:
        raise fail(e) from None
    if as_json:
        sys.stdout.write(json.dumps([m.to_dict() for m in found], indent=2) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="sbasr models", title_justify="left")
    for header in ("name", "languages", "size", "source", "path"):
        table.add_column(header, overflow="fold")
    for m in found:
        size = f"{m.size / 1e6:,.0f} MB" if m.size else "-"
        table.add_row(m.name, m.languages, size, m.source, m.path or "-")
    Console().print(table)
