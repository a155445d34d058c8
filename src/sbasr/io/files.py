"""Reading inputs with errors that name file and line; writing outputs so that an
interrupted run never leaves a half-written file behind."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..core.errors import SbasrError


def read_text(path: str | os.PathLike[str]) -> str:
    """A UTF-8 text file (a BOM is dropped), or an SbasrError naming the file and line."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise SbasrError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SbasrError(f"{path}: is a directory, not a text file") from None
    except OSError as e:
        raise SbasrError(f"{path}: cannot read: {e.strerror}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise SbasrError(
            f"{path}:{line}: not valid UTF-8 (byte 0x{data[e.start]:02x}); "
            "re-encode the file as UTF-8"
        ) from None


def jsonl_rows(path: str | os.PathLike[str], text: str) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSON Lines text. Lines end at
    "\n" alone, as JSON Lines defines them: a U+2028 or form feed inside a string is text."""
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise SbasrError(f"{path}:{number}: invalid JSON: {e.msg}") from None
        if not isinstance(row, dict):
            raise SbasrError(f"{path}:{number}: expected a JSON object per line")
        yield number, row


def write_atomic(path: str | os.PathLike[str], data: str | bytes) -> Path:
    """Write to a temporary file beside `path`, then rename it over `path`.

    The rename is atomic on POSIX and Windows, so readers see the old file or the new one,
    never a truncated one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs follow the umask
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_all_atomic(files: list[tuple[Path, str]]) -> None:
    """Write every (path, text) of `files` or none of them: each goes to a temporary
    file beside it first, and only once all are written are they renamed into place.

    Raises:
        SbasrError: a file cannot be written (a full disk, a folder in the way), naming
            that file; no temporary file is left behind.
    """
    temps: list[tuple[str, Path]] = []
    path = files[0][0] if files else Path()
    try:
        for path, text in files:
            if path.is_dir():  # the rename would fail, after others were done
                raise IsADirectoryError(errno.EISDIR, "a directory is in the way")
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            temps.append((tmp, path))
            with os.fdopen(fd, "wb") as f:
                f.write(text.encode("utf-8"))
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs follow the umask
        for tmp, path in temps:
            os.replace(tmp, path)
    except OSError as e:
        raise SbasrError(f"{path}: cannot write: {e.strerror or e}") from None
    finally:
        for tmp, _ in temps:
            Path(tmp).unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Names of the files `ensure_writable` writes and removes; listings of a folder skip them.
PROBE_PREFIX = ".sbasr-probe-"


def ensure_writable(directory: Path, what: str = "there") -> None:
    """Create `directory` and write (then remove) a file in it, so that a run fails on one
    line before it loads a model or trains, not when it saves; the error says it cannot
    write `what`."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=PROBE_PREFIX, dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise SbasrError(f"{directory}: cannot write {what}: {e.strerror or e}") from None


# Pickled weights transformers would hand to torch.load; sbasr loads safetensors only.
PICKLED_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")


def check_safetensors(directory: str | os.PathLike[str]) -> None:
    """Refuse a model directory whose weights are pickled only (`pytorch_model.bin`):
    sbasr loads safetensors, and a pickle can run code when it is loaded.

    Raises:
        SbasrError: `directory` holds pickled weights and no `.safetensors` file.
    """
    path = Path(directory)
    if not path.is_dir() or any(path.glob("*.safetensors")):
        return
    pickled = next((n for n in PICKLED_WEIGHTS if (path / n).is_file()), None)
    if pickled is not None:
        raise SbasrError(
            f"{path}: the weights are pickled ({pickled}), which sbasr does not load: "
            "convert them to safetensors (save_pretrained with safe_serialization=True, "
            "where you trust the file)"
        )
