"""Running a batch of recordings for the CLI: outputs, progress, failures, resumption.

A bad file is reported on one line and the batch goes on; outputs are written atomically
once a recording is complete, so `skip_existing` resumes an interrupted batch exactly.
Spans of many recordings are decoded in shared batches (`sbasr.asr.corpus`), and each
recording's outputs are still its own.
Warnings the library raises while a recording is processed (segments past the end of the
audio, a truncated file) are printed as one `sbasr: warning:` line each.
"""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from ..core.errors import SbasrError
from ..io.files import ensure_writable, write_all_atomic
from ..io.manifests import is_kaldi_dir
from .corpus import Outcome, failure, transcribe_many
from .engines.base import Engine
from .inputs import MANIFEST_SUFFIXES, Recording
from .pipeline import TranscribeOptions
from .shards import ShardRecord
from .writers import Writer


@dataclass
class BatchResult:
    done: int = 0
    skipped: int = 0
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)
    interrupted: bool = False  # Ctrl-C: what was finished is written, the rest is not
    broken_pipe: bool = False  # standard output was closed (`-o - | head`): stopped

    @property
    def rtf(self) -> float | None:
        """Real-time factor: processing time over audio time (below 1 is faster than real time)."""
        return self.wall_seconds / self.audio_seconds if self.audio_seconds else None


# The longest ending `output_path` gives a name, and the longest name (in bytes) common
# file systems take.
_LONGEST_ENDING = len(".transcript.keyed")
_NAME_MAX = 255


def name_problem(rid: str) -> str | None:
    """Why the id `rid` cannot name an output file (`<id>.<format>`), or None.

    An id is a file name, never a path: no "/" or "\\", not "." or "..", no NUL, valid
    UTF-8 (transcripts carry it), and short enough for a file name with its ending.
    """
    if rid in ("", ".", ".."):
        return "is not a file name"
    if "/" in rid or "\\" in rid:
        return "is a path (has a '/' or '\\'), not a file name"
    if "\0" in rid:
        return "has a NUL character"
    try:
        size = len(rid.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid UTF-8 (a file name in another encoding: rename the file)"
    if size + _LONGEST_ENDING > _NAME_MAX:
        return f"is too long for a file name ({size} bytes)"
    return None


def check_ids(
    recordings: list[Recording], *, to_files: bool = True
) -> tuple[list[Recording], list[tuple[str, str]]]:
    """The recordings whose ids can name their outputs, and (path, problem) for the rest.

    Outputs are `<id>.<format>`, so an id that is not a plain file name (see
    `name_problem`) is refused before anything is decoded, rather than written outside
    the output directory or renamed: the keyed output keeps the manifest's own ids. With
    `to_files` False (`-o -`) ids only key the lines written, and only need to be text.
    """
    ok: list[Recording] = []
    problems: list[tuple[str, str]] = []
    for rec in recordings:
        why = name_problem(rec.id) if to_files else _text_problem(rec.id)
        keys = [s.id for s in rec.spans or () if s.id]
        bad_key = next((k for k in keys if _text_problem(k)), None)
        if why is None and bad_key is None:
            ok.append(rec)
            continue
        where = printable(rec.source if _from_list(rec) else rec.path)
        if why is None:
            what = f"id {bad_key!r} {_text_problem(bad_key)}"
        elif to_files:
            what = f"id {rec.id!r} cannot name an output file: it {why}"
        else:
            what = f"id {rec.id!r} {why}"
        problems.append((rec.path, f"{where}: {what}"))
    return ok, problems


def _from_list(rec: Recording) -> bool:
    """Whether `rec` is a row of a manifest or Kaldi directory (whose errors name it)."""
    source = Path(rec.source)
    return source.suffix.lower() in MANIFEST_SUFFIXES or (source.is_dir() and is_kaldi_dir(source))


def _text_problem(key: str) -> str | None:
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8 (a file name in another encoding: rename the file)"
    return None


def printable(path: str) -> str:
    """`path` as it can be printed: bytes of a file name that are not UTF-8 (kept by
    Python as lone surrogates) are shown as escapes."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def output_path(rec: Recording, writer: Writer, output_dir: Path | None) -> Path:
    """Where a recording's output goes: `output_dir`, else beside its audio (beside the
    manifest for manifest rows). Never onto an input: an MLC-SLM segment file is
    `<audio>.txt` too, so a clashing name gets `.transcript` added.

    Raises:
        SbasrError: the id is not a file name (`name_problem`; `check_ids` finds these
            before a batch starts).
    """
    why = name_problem(rec.id)
    if why is not None:
        raise SbasrError(
            f"{printable(rec.path)}: id {rec.id!r} cannot name an output file: it {why}"
        )
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
    ensure_writable(path, "outputs there")


def report_warnings(caught: list[warnings.WarningMessage], console: Console, show=None) -> None:
    """Warnings caught while a recording was processed or a model loaded: sbasr's own (and
    any UserWarning) on one `sbasr: warning:` line each, others as Python shows them
    (`show`: the `warnings.showwarning` outside the catching)."""
    show = show or warnings.showwarning
    for w in caught:
        if issubclass(w.category, UserWarning):
            text = str(w.message).strip().splitlines()[0] if str(w.message).strip() else ""
            console.print(
                f"[yellow]sbasr: warning:[/] {escape(text)}", soft_wrap=True, highlight=False
            )
        else:
            show(w.message, w.category, w.filename, w.lineno)


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
    record: ShardRecord | None = None,
    indices: list[int] | None = None,
) -> BatchResult:
    """Transcribe `recordings` (spans of many batched together, `sbasr.asr.corpus`) and
    write each one's outputs as it completes, in input order. With a shard `record`, each
    recording is also recorded under its index in the whole run (`indices`), and
    `skip_existing` skips only what the record says was done.

    Ctrl-C (KeyboardInterrupt) and a closed standard output (BrokenPipeError, `to_stdout`)
    stop the batch after the recordings already written: the result says which
    (`interrupted`, `broken_pipe`) and counts what was done."""
    console = console or Console(stderr=True)
    indices = indices if indices is not None else list(range(len(recordings)))
    result = BatchResult()
    start = time.perf_counter()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
    )
    todo = []
    for index, rec in zip(indices, recordings):
        targets = [(w, output_path(rec, w, output_dir)) for w in writers]
        done = record is None or record.finished(rec)
        if skip_existing and not to_stdout and done and all(p.exists() for _, p in targets):
            result.skipped += 1
        else:
            todo.append((index, rec, targets))
    show = warnings.showwarning
    with (
        Progress(*columns, console=console, transient=True) as progress,
        warnings.catch_warnings(record=True) as caught,  # from the audio thread too
    ):
        files = progress.add_task("files", total=len(recordings), info="")
        progress.advance(files, result.skipped)
        outcomes = transcribe_many([rec for _, rec, _ in todo], engine, options)
        try:
            for outcome in outcomes:
                index, rec, targets = todo[outcome.index]
                _finish_one(outcome, index, targets, to_stdout, result, record, console)
                report_warnings(caught[:], console, show)
                caught.clear()
                progress.update(files, description=escape(rec.id[:40]))
                progress.advance(files)
                progress.update(files, info=f"{result.audio_seconds:,.0f} s of audio")
        except KeyboardInterrupt:  # what is finished stays written; the caller says so
            result.interrupted = True
        except BrokenPipeError:  # nobody reads on: decoding the rest would be wasted
            result.broken_pipe = True
        finally:
            outcomes.close()
    result.wall_seconds = time.perf_counter() - start
    return result


def _finish_one(
    outcome: Outcome,
    index: int,
    targets: list[tuple[Writer, Path]],
    to_stdout: bool,
    result: BatchResult,
    record: ShardRecord | None,
    console: Console,
) -> None:
    """Write one recording's outputs (atomically), or count and report its failure."""
    rec = outcome.recording
    message = outcome.error
    if message is None:
        try:
            if to_stdout:
                writer = targets[0][0]
                sys.stdout.write(
                    writer.render(outcome.segments, rec.id, rec.path, outcome.duration)
                )
                sys.stdout.flush()
            else:  # all of a recording's outputs, or none (a full disk: none)
                write_all_atomic(
                    [
                        (path, writer.render(outcome.segments, rec.id, rec.path, outcome.duration))
                        for writer, path in targets
                    ]
                )
        except BrokenPipeError:
            if to_stdout:
                raise  # the reader is gone: `run_batch` stops
            message = failure(rec, OSError("broken pipe"))
        except Exception as e:  # a full disk, a file in the way: this one fails, the rest go on
            message = failure(rec, e)
    if message is not None:
        result.failures.append((rec.path, message))
        console.print(f"[red]sbasr: error:[/] {escape(message)}", soft_wrap=True, highlight=False)
        if record is not None:
            record.add(index, rec, {"error": message})
        return
    result.done += 1
    result.audio_seconds += outcome.duration
    if record is not None:
        segments = [s.to_dict() for s in outcome.segments]
        record.add(index, rec, {"duration": round(outcome.duration, 3), "segments": segments})
