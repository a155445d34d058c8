"""The output directory of a training run: refused when it is a file or cannot be written,
and when it holds something an earlier run (or someone else) left there, unless asked to
go on (`--resume`) or to train anew (`--overwrite`)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..core.errors import SbasrError
from ..io.files import PROBE_PREFIX, ensure_writable
from .arguments import checkpoints

RUN_CONFIG = "sbasr-finetune.json"  # written at the start of every run (and stage)


def is_main_process() -> bool:
    """True in a single process, and in the first one under torchrun."""
    return int(os.environ.get("RANK", "0")) == 0


def check_not_a_file(out: Path) -> None:
    """Refuse an output path that is, or is inside, a regular file."""
    for path in (out, *out.parents):
        if path.exists():
            if not path.is_dir():
                raise SbasrError(f"{path}: is a file, not a directory; --output-dir is a folder")
            return


def contents(out: Path) -> list[Path]:
    """What `out` holds (nothing if it does not exist), but another process's probe."""
    if not out.is_dir():
        return []
    return [p for p in out.iterdir() if not p.name.startswith(PROBE_PREFIX)]


def ensure_writable_dir(out: Path) -> None:
    """Create `out` and check that files can be written in it, so that a run never trains
    for hours before failing to save; one-line errors, not tracebacks."""
    check_not_a_file(out)
    ensure_writable(out)


def refuse_earlier_run(out: Path, what: str) -> SbasrError:
    """The error for an output directory that holds `what` of an earlier run."""
    if checkpoints(out):
        return SbasrError(
            f"{out}: holds checkpoints of an earlier run; use --resume to go on from them, "
            "--overwrite to train anew, or another --output-dir"
        )
    return SbasrError(
        f"{out}: holds {what}; use --overwrite to train anew there, or another --output-dir"
    )


def remove_checkpoints(run_dir: Path) -> None:
    """Remove the `checkpoint-N` folders of an earlier run in `run_dir`, so that a later
    --resume never goes on from them."""
    for path in checkpoints(run_dir):
        shutil.rmtree(path)
