"""`sbasr transcribe FILES`: recordings to timed, speaker-attributed transcripts.

The decoding, engine and channel flags are derived from the options dataclasses of
`sbasr.asr.options`; what is declared here is the batch around them: inputs, engine,
model and outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..asr.options import ENGINE_OPTIONS, EngineSettings, ShardOptions, TranscribeOptions
from ..core.choices import ENGINES, OUTPUT_FORMATS
from ..core.errors import SbasrError
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

    from ..asr.engines import registry
    from ..asr.inputs import MANIFEST_SUFFIXES, expand_inputs
    from ..asr.options import options_from
    from ..asr.runner import check_ids, check_output_dir, report_warnings, run_batch
    from ..asr.shards import ShardRecord, parse_shard, split, torchrun_shard
    from ..asr.writers import check_stdout, writers_for

    given = dict(given)
    shard_flag = given.pop("shard", None)
    ranks = torchrun_shard()
    try:  # a bad option or language fails here, before the inputs are read or a model loads
        options, settings = options_from(engine.value, given)
        part = parse_shard(shard_flag) if shard_flag else None
        if ranks and part:
            raise SbasrError("--shard under torchrun: torchrun's ranks are the shards already")
        if ranks:
            part = ranks[:2]
            settings = _rank_settings(settings, ranks[2])
        if part and (output_dir is None or str(output_dir) == "-"):
            how = "--shard" if shard_flag else "torchrun"
            raise SbasrError(f"{how}: give an --output-dir, where every shard writes")
    except SbasrError as e:
        raise fail(e) from None
    err = Console(stderr=True)
    recordings, problems = expand_inputs(files, oracle_segments=segments)
    dash = output_dir is not None and str(output_dir) == "-"
    recordings, bad_ids = check_ids(recordings, to_files=not dash)
    problems += bad_ids
    for _, message in problems:
        err.print(f"[red]sbasr: error:[/] {escape(message)}", soft_wrap=True, highlight=False)
    if not recordings:
        raise typer.Exit(2)
    try:  # where outputs go is checked before anything loads or is decoded
        if dash:
            check_stdout(output_format.value, len(recordings))
        elif output_dir is not None:
            check_output_dir(output_dir)
        with warnings.catch_warnings(record=True) as caught:
            asr = registry.load_engine(engine.value, model, settings)
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
    record, indices, mine = None, None, recordings
    if part:  # this process's share of the recordings, and its record of them
        assert output_dir is not None
        indices = split(recordings, part[1])[part[0]]
        mine = [recordings[i] for i in indices]
        record = ShardRecord(output_dir, *part, recordings, indices, resume=skip_existing)
    result = run_batch(
        mine,
        asr,
        options,
        writers_for(output_format.value),
        None if dash else output_dir,
        to_stdout=to_stdout,
        skip_existing=skip_existing,
        console=err,
        record=record,
        indices=indices,
    )
    if result.broken_pipe:  # `-o - | head`: stop quietly, as other Unix tools do
        import os
        import sys

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error
        raise typer.Exit(141)
    failures = problems + result.failures
    rtf = f"{result.rtf:.3f}" if result.rtf is not None else "n/a"
    who = f"shard {part[0]}/{part[1]}: " if part else ""
    err.print(
        f"{who}{result.done} transcribed, {result.skipped} skipped, {len(failures)} failed; "
        f"audio {result.audio_seconds:,.1f} s in {result.wall_seconds:,.1f} s "
        f"(real-time factor {rtf})",
        highlight=False,
        soft_wrap=True,
    )
    if not to_stdout and result.done:
        where = _where(mine, output_dir, writers_for(output_format.value))
        err.print(escape(where), highlight=False, soft_wrap=True)
    if failures:
        err.print("failed:", highlight=False)
        for _, message in failures:
            err.print(f"  {escape(message)}", soft_wrap=True, highlight=False)
    if result.interrupted:
        left = len(mine) - result.done - result.skipped - len(result.failures)
        err.print(
            f"interrupted: {left} of {len(mine)} recordings not done; what was finished is "
            "written: to go on, run the same command again with --skip-existing",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(130)
    merged_ok = True
    if ranks:  # every rank done: rank 0 joins the shards' outputs
        assert output_dir is not None
        merged_ok = _merge_ranks(ranks[0], output_dir, err)
    if failures or not merged_ok:
        raise typer.Exit(1)


def _where(recordings: list, output_dir: Path | None, writers: list) -> str:
    """The summary's line that says where the outputs went."""
    if output_dir is not None:
        return f"outputs in {output_dir}"
    from ..asr.runner import output_path

    folders = list(dict.fromkeys(output_path(r, writers[0], None).parent for r in recordings))
    where = str(folders[0]) if len(folders) == 1 else f"{len(folders)} folders ({folders[0]}, ...)"
    return f"outputs beside the inputs, in {where} (--output-dir puts them elsewhere)"


def _rank_settings(settings: EngineSettings, local_rank: int) -> EngineSettings:
    """A torchrun rank's own device: GPU LOCAL_RANK where there are GPUs, else its share
    of the CPU cores (unless --threads says)."""
    import os
    from dataclasses import replace

    import ctranslate2

    gpus = ctranslate2.get_cuda_device_count() if settings.device != "cpu" else 0
    if gpus:
        return replace(settings, device_index=local_rank % gpus)
    if settings.threads:
        return settings
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return replace(settings, threads=max(1, (os.cpu_count() or 1) // max(1, local)))


def _merge_ranks(rank: int, output_dir: Path, err) -> bool:
    """Wait for every rank (gloo, over torchrun's rendezvous), then merge on rank 0 while
    the others wait, so that torchrun sees no rank exit before the merge is written."""
    from datetime import timedelta

    import torch.distributed as dist

    from .merge import report_merge

    # A rank may finish hours after another: the barrier waits as long as a run can take.
    dist.init_process_group("gloo", timeout=timedelta(days=7))
    try:
        dist.barrier()
        ok = True
        if rank == 0:
            ok = report_merge(output_dir, err)
        dist.barrier()
        return ok
    finally:
        dist.destroy_process_group()


transcribe = derived_command(
    transcribe, dict(ENGINE_OPTIONS), shared=(TranscribeOptions, EngineSettings, ShardOptions)
)
