"""`sbasr export DIR`: a fine-tuned Whisper to CTranslate2."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..core.choices import EXPORT_FORMATS, QUANTIZATIONS
from ..core.constants import DEFAULT_QUANTIZATION
from ..core.errors import SbasrError
from .common import choice, fail

ExportFormat = choice("ExportFormat", EXPORT_FORMATS)
Quantization = choice("Quantization", QUANTIZATIONS)
_QUANTIZATION = Quantization(DEFAULT_QUANTIZATION)


def export(
    model_dir: Annotated[
        Path, typer.Argument(help="A transformers Whisper directory or a LoRA adapter.")
    ],
    to: Annotated[ExportFormat, typer.Option(help="Target format.")] = ExportFormat.ct2,
    quantization: Annotated[
        Quantization, typer.Option(help="Weight type of the export.")
    ] = _QUANTIZATION,
    output_dir: Annotated[
        Path | None, typer.Option("--output-dir", "-o", help="Default: MODEL_DIR/ct2.")
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            help="Write the export into a folder that holds other files (they are kept); "
            "an earlier export of the same model is replaced without it."
        ),
    ] = False,
) -> None:
    """Export a fine-tuned Whisper to CTranslate2 (LoRA merged), for fast decoding."""
    from ..whisper.export import export_ct2

    try:
        out = export_ct2(model_dir, output_dir, quantization.value, overwrite=overwrite)
    except SbasrError as e:
        raise fail(e) from None
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        raise fail(SbasrError(f"{where}{e.strerror or e}")) from None
    typer.echo(f"exported to {out}; use it with: sbasr transcribe --model {out}")
