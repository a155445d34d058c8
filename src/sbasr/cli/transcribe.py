"""`sbasr transcribe FILES`: recordings to timed, speaker-attributed transcripts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..choices import CHANNELS, DEVICES, ENGINES, OUTPUT_FORMATS
from ..errors import SbasrError
from .common import choice, fail

Channels = choice("Channels", CHANNELS)
Engine = choice("Engine", ENGINES)
Device = choice("Device", DEVICES)
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
    language: Annotated[
        str | None, typer.Option("--language", "-l", help="Force a language (else detected).")
    ] = None,
    language_per_segment: Annotated[
        bool, typer.Option(help="Detect the language of each segment (code-switching).")
    ] = False,
    channels: Annotated[
        Channels, typer.Option(help="split: each channel is its own speaker.")
    ] = Channels.mix,
    segments: Annotated[
        bool, typer.Option("--segments", help="Use the MLC-SLM <audio>.txt oracle segments.")
    ] = False,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="Output format.")
    ] = OutputFormat.txt,
    output_dir: Annotated[
        Path | None, typer.Option("--output-dir", "-o", help="Default: beside each input.")
    ] = None,
    skip_existing: Annotated[
        bool, typer.Option(help="Skip recordings whose outputs exist (resume a batch).")
    ] = False,
    beam_size: Annotated[
        int | None, typer.Option(min=1, help="Beam width (default: whisper 5, speechllm 1).")
    ] = None,
    temperature: Annotated[float, typer.Option(min=0.0, help="First temperature.")] = 0.0,
    temperature_increment: Annotated[
        float, typer.Option(min=0.0, help="Fallback step on failed decodes; 0 = no fallback.")
    ] = 0.2,
    initial_prompt: Annotated[str | None, typer.Option(help="Text to prime the decoder.")] = None,
    hotwords: Annotated[str | None, typer.Option(help="Words to favour.")] = None,
    condition_on_previous_text: Annotated[
        bool, typer.Option(help="Prompt each window with the text before it.")
    ] = True,
    word_timestamps: Annotated[bool, typer.Option(help="Time every word.")] = False,
    device: Annotated[Device, typer.Option(help="Where to run.")] = Device.auto,
    compute_type: Annotated[
        str, typer.Option(help="CTranslate2 compute type: auto, int8, float16, float32 ...")
    ] = "auto",
    threads: Annotated[int, typer.Option(min=0, help="CPU threads; 0 = all cores.")] = 0,
    batch_size: Annotated[
        int | None,
        typer.Option(min=1, help="Segments decoded together (default: whisper 1, speechllm 8)."),
    ] = None,
    max_new_tokens: Annotated[
        int | None, typer.Option(min=1, help="Longest text per segment, in tokens.")
    ] = None,
) -> None:
    """Transcribe recordings into timed, speaker-attributed transcripts."""
    from rich.console import Console

    from ..asr.engines.base import DecodeOptions, load_engine
    from ..asr.inputs import MANIFEST_SUFFIXES, expand_inputs
    from ..asr.pipeline import TranscribeOptions
    from ..asr.runner import run_batch
    from ..asr.writers import writers_for

    err = Console(stderr=True)
    recordings, problems = expand_inputs(files, oracle_segments=segments)
    for _, message in problems:
        err.print(f"[red]sbasr: error:[/] {message}", soft_wrap=True, highlight=False)
    if not recordings:
        raise typer.Exit(2)
    temperatures = [temperature]
    while temperature_increment > 0 and temperatures[-1] + temperature_increment <= 1.0 + 1e-9:
        temperatures.append(round(temperatures[-1] + temperature_increment, 6))
    options = TranscribeOptions(
        channels=channels.value,
        language_per_segment=language_per_segment,
        decode=DecodeOptions(
            language=language,
            beam_size=beam_size,
            temperature=tuple(temperatures),
            initial_prompt=initial_prompt,
            hotwords=hotwords,
            condition_on_previous_text=condition_on_previous_text,
            word_timestamps=word_timestamps,
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
        ),
    )
    try:
        asr = load_engine(
            engine.value, model, device=device.value, compute_type=compute_type, threads=threads
        )
    except SbasrError as e:
        raise fail(e) from None
    # One audio file in txt and nowhere to put it: the transcript goes to stdout.
    to_stdout = (
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
        output_dir,
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
            err.print(f"  {message}", soft_wrap=True, highlight=False)
        raise typer.Exit(1)
