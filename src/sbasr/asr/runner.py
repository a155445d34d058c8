"""Running a batch of recordings for the CLI: outputs, progress, failures, resumption.

A bad file is reported on one line and the batch goes on; outputs are written atomically
once a recording is complete, so `skip_existing` resumes an interrupted batch exactly.
Warnings the library raises while a recording is processed (segments past the end of the
audio, a truncated file) are printed as one `sbasr: warning:` line each.
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from ..errors import SbasrError
from ..io.audio import load_audio
from .engines.base import Engine
from .inputs import MANIFEST_SUFFIXES, Recording
from .pipeline import TranscribeOptions, needs_split, transcribe_recording
from .writers import Writer


@dataclass
class BatchResult:
    done: int = 0
    skipped: int = 0
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def rtf(self) -> float | None:
        """Real-time factor: processing time over audio time (below 1 is faster than real time)."""
        return self.wall_seconds / self.audio_seconds if self.audio_seconds else None


def output_path(rec: Recording, writer: Writer, output_dir: Path | None) -> Path:
    """Where a recording's output goes: `output_dir`, else beside its audio (beside the
    manifest for manifest rows). Never onto an input: an MLC-SLM segment file is
    `<audio>.txt` too, so a clashing name gets `.transcript` added."""
    ext = writer.extension
    if output_dir is not None:
        return output_dir / f"{rec.id}.{ext}"
    if Path(rec.source).suffix.lower() in MANIFEST_SUFFIXES:
        path = Path(rec.source).parent / f"{rec.id}.{ext}"
    else:
        path = Path(rec.path).with_suffix(f".{ext}")
    inputs = {Path(p).resolve() for p in (rec.path, rec.segments_file) if p}
    if path.resolve() in inputs:
        path = path.with_name(f"{path.stem}.transcript.{ext}")
    return path


def check_output_dir(path: Path) -> None:
    """Create `path` and write a file there, so that an unusable --output-dir fails before a
    model loads, not after a batch has been decoded."""
    if path.exists() and not path.is_dir():
        raise SbasrError(f"{path}: cannot write outputs there: it is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".sbasr-check-"):
            pass
    except OSError as e:
        raise SbasrError(f"{path}: cannot write outputs there: {e.strerror or e}") from None


def report_warnings(caught: list[warnings.WarningMessage], console: Console) -> None:
    """Warnings caught while a recording was processed or a model loaded: sbasr's own (and
    any UserWarning) on one `sbasr: warning:` line each, others as Python shows them."""
    for w in caught:
        if issubclass(w.category, UserWarning):
            text = str(w.message).strip().splitlines()[0] if str(w.message).strip() else ""
            console.print(
                f"[yellow]sbasr: warning:[/] {escape(text)}", soft_wrap=True, highlight=False
            )
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def run_batch(
    recordings: list[Recording],
    engine: Engine,
    options: TranscribeOptions,
    writers: list[Writer],
    output_dir: Path | None,
    *,
    to_stdout: bool = False,
    skip_existing: bool = False,
    console: Console | None = None,
) -> BatchResult:
    console = console or Console(stderr=True)
    result = BatchResult()
    start = time.perf_counter()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        files = progress.add_task("files", total=len(recordings), info="")
        for rec in recordings:
            targets = [(w, output_path(rec, w, output_dir)) for w in writers]
            if skip_existing and not to_stdout and all(p.exists() for _, p in targets):
                result.skipped += 1
                progress.advance(files)
                continue
            progress.update(files, description=escape(rec.id[:40]))
            with warnings.catch_warnings(record=True) as caught:
                _run_one(rec, engine, options, targets, to_stdout, result, progress, files, console)
            report_warnings(caught, console)
            progress.advance(files)
    result.wall_seconds = time.perf_counter() - start
    return result


def _run_one(
    rec: Recording,
    engine: Engine,
    options: TranscribeOptions,
    targets: list[tuple[Writer, Path]],
    to_stdout: bool,
    result: BatchResult,
    progress: Progress,
    task: TaskID,
    console: Console,
) -> None:
    """Transcribe one recording and write its outputs; a failure is counted and reported."""
    try:
        audio = load_audio(rec.path, split_channels=needs_split(rec, options))
        segments = []
        for seg in transcribe_recording(rec, engine, options, audio):
            segments.append(seg)
            progress.update(task, info=f"{seg.end:,.0f}/{audio.duration:,.0f} s")
        if to_stdout:
            writer = targets[0][0]
            sys.stdout.write(writer.render(segments, rec.id, rec.path, audio.duration))
            sys.stdout.flush()
        else:
            for writer, path in targets:
                writer.write(path, segments, rec.id, rec.path, audio.duration)
        result.done += 1
        result.audio_seconds += audio.duration
    except SbasrError as e:
        result.failures.append((rec.path, str(e)))
        console.print(f"[red]sbasr: error:[/] {escape(str(e))}", soft_wrap=True, highlight=False)
    except Exception as e:  # one broken file must not stop the batch
        message = f"{rec.path}: {type(e).__name__}: {e}".splitlines()[0]
        result.failures.append((rec.path, message))
        console.print(f"[red]sbasr: error:[/] {escape(message)}", soft_wrap=True, highlight=False)
