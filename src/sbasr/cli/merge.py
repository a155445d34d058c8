"""`sbasr merge OUTPUT_DIR`: join the outputs of a run split into shards (`sbasr transcribe
--shard K/N` in a job array; torchrun's rank 0 does it itself) into one keyed file and
one JSON Lines file, in input order."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..core.errors import SbasrError
from .common import fail


def merge(
    output_dir: Annotated[
        Path, typer.Argument(help="The --output-dir every shard of the run wrote to.")
    ],
) -> None:
    """Join a sharded transcription's outputs in input order, and list its failures."""
    from rich.console import Console

    try:
        ok = report_merge(output_dir, Console(stderr=True), strict=True)
    except SbasrError as e:
        raise fail(e) from None
    if not ok:
        raise typer.Exit(1)


def report_merge(output_dir: Path, console, strict: bool = False) -> bool:
    """Merge and print what was merged and what failed; False when anything failed (or,
    unless `strict`, when merging itself failed: printed as the one-line error)."""
    from rich.markup import escape

    from ..asr.shards import merge as join

    try:
        merged = join(output_dir)
    except SbasrError as e:
        if strict:
            raise
        console.print(f"[red]sbasr: error:[/] {escape(str(e))}", soft_wrap=True, highlight=False)
        return False
    where = ", ".join(str(p) for p in merged.files)
    console.print(
        f"merged {merged.recordings} recordings of {merged.shards} shards "
        f"({merged.segments} segments, {len(merged.failures)} failed): {where}",
        highlight=False,
        soft_wrap=True,
    )
    if merged.failures:
        console.print("failed:", highlight=False)
        for message in merged.failures:
            console.print(f"  {escape(message)}", soft_wrap=True, highlight=False)
    return not merged.failures
