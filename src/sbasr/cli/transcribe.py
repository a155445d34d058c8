"""`sbasr transcribe FILES`: recordings to timed, speaker-attributed transcripts.

The decoding, engine and channel flags are derived from the options dataclasses of
`sbasr.asr.options`; what is declared here is the batch around them: inputs, engine,
model and outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..asr.options import ENGINE_OPTIONS, EngineSettings, TranscribeOptions
from ..choices import ENGINES, OUTPUT_FORMATS
from ..errors import SbasrError
from .common import choice, fail
from .derive import derived_command

Engine = choice("Engine", ENGINES)
OutputFormat = choice("OutputFormat", OUTPUT_FORMATS)


def transcribe(
    files: Annotated[
        list[Path], typer.Argument(help="Audio files, directories, or JSON Lines manifests.")
    ],
    engine: Annotated[Engine, typer.Option(help="Recogniser family.")] = Engine.whisper,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="whisper: base, tiny.en, a model directory or hub id; speechllm: a trained "
            "model directory.",
        ),
    ] = None,
    segments: Annotated[
        bool, typer.Option("--segments", help="Use the MLC-SLM <audio>.txt oracle segments.")
    ] = False,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="Output format.")
    ] = OutputFormat.txt,
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "--output-dir",
            "-o",
            help="Default: beside each input. '-': standard output (txt and keyed; other "
            "formats for one recording).",
        ),
    ] = None,
    skip_existing: Annotated[
        bool, typer.Option(help="Skip recordings whose outputs exist (resume a batch).")
    ] = False,
    *,
    given: dict[str, Any],
) -> None:
    """Transcribe recordings into timed, speaker-attributed transcripts."""
    import warnings

    from rich.console import Console
    from rich.markup import escape

    from ..asr.engines import base
    from ..asr.inputs import MANIFEST_SUFFIXES, expand_inputs
    from ..asr.options import options_from
    from ..asr.runner import check_output_dir, report_warnings, run_batch
    from ..asr.writers import check_stdout, writers_for

    try:  # a bad option or language fails here, before the inputs are read or a model loads
        options, settings = options_from(engine.value, given)
    except SbasrError as e:
        raise fail(e) from None
    err = Console(stderr=True)
    recordings, problems = expand_inputs(files, oracle_segments=segments)
    for _, message in problems:
        err.print(f"[red]sbasr: error:[/] {escape(message)}", soft_wrap=True, highlight=False)
    if not recordings:
        raise typer.Exit(2)
    dash = output_dir is not None and str(output_dir) == "-"
    try:  # where outputs go is checked before anything loads or is decoded
        if dash:
            check_stdout(output_format.value, len(recordings))
        elif output_dir is not None:
            check_output_dir(output_dir)
        with warnings.catch_warnings(record=True) as caught:
            asr = base.load_engine(engine.value, model, settings)
    except SbasrError as e:
        raise fail(e) from None
    report_warnings(caught, err)
    # `-o -`, or one audio file in txt and nowhere to put it: the transcript goes to stdout.
    to_stdout = dash or (
        output_dir is None
        and output_format == OutputFormat.txt
        and len(recordings) == 1
        and len(files) == 1
        and files[0].is_file()
        and files[0].suffix.lower() not in MANIFEST_SUFFIXES
    )
    result = run_batch(
        recordings,
        asr,
        options,
        writers_for(output_format.value),
        None if dash else output_dir,
        to_stdout=to_stdout,
        skip_existing=skip_existing,
        console=err,
    )
    failures = problems + result.failures
    rtf = f"{result.rtf:.3f}" if result.rtf is not None else "n/a"
    err.print(
        f"{result.done} transcribed, {result.skipped} skipped, {len(failures)} failed; "
        f"audio {result.audio_seconds:,.1f} s in {result.wall_seconds:,.1f} s "
        f"(real-time factor {rtf})",
        highlight=False,
        soft_wrap=True,
    )
    if failures:
        err.print("failed:", highlight=False)
        for _, message in failures:
            err.print(f"  {escape(message)}", soft_wrap=True, highlight=False)
        raise typer.Exit(1)


transcribe = derived_command(
    transcribe, dict(ENGINE_OPTIONS), shared=(TranscribeOptions, EngineSettings)
)
