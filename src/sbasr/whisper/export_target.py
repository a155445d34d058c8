"""Where an export may be written, and what it consists of: an export directory carries a
marker naming the model it was made from and the files sbasr wrote, so that a later export
replaces those files and nothing else, and the model directory is never written over."""

from __future__ import annotations

import json
from pathlib import Path

from ..core.errors import SbasrError

EXPORT_MARKER = "sbasr-export.json"  # in every export: which model it was made from


def check_export_target(source: Path, out: Path, overwrite: bool = False) -> None:
    """Refuse an export target that would write over the model, or over files sbasr did
    not write there (unless `overwrite`): one-line errors, before any work is done."""
    src, dst = source.resolve(), out.resolve()
    if dst == src:
        raise SbasrError(
            f"{out}: is the model directory itself; export to another folder "
            f"(default: {source / 'ct2'})"
        )
    if src.is_relative_to(dst):
        raise SbasrError(f"{out}: contains the model directory {source}; export elsewhere")
    for path in (out, *out.parents):
        if path.exists():
            if not path.is_dir():
                raise SbasrError(f"{path}: is a file; the export goes into a folder")
            break
    if not out.is_dir() or not any(out.iterdir()) or is_export_of(out, source):
        if dst.is_relative_to(src) and dst.parent != src:
            raise SbasrError(
                f"{out}: inside the model directory; export to a folder directly in it "
                f"(default: {source / 'ct2'}) or outside it"
            )
        return
    if dst.is_relative_to(src):  # a folder of the model's own: checkpoints, logs
        raise SbasrError(
            f"{out}: a folder of the model directory that is not an export of it; "
            f"export to another folder (default: {source / 'ct2'})"
        )
    if not overwrite:
        raise SbasrError(
            f"{out}: not empty and not an earlier export of {source}; use --overwrite to "
            "write the export into it (its other files are kept), or another --output-dir"
        )


def is_export_of(directory: Path, source: Path) -> bool:
    """Whether `directory` is an export sbasr made of `source` (its marker says so), by
    absolute path or by its place relative to the export (a moved run folder)."""
    try:
        marker = json.loads((directory / EXPORT_MARKER).read_text("utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(marker, dict):
        return False
    src = source.resolve()
    absolute, relative = marker.get("source"), marker.get("relative")
    return (isinstance(absolute, str) and Path(absolute).resolve() == src) or (
        isinstance(relative, str) and (directory / relative).resolve() == src
    )


def written_files(export: Path) -> set[str]:
    """The files sbasr wrote into an earlier export, by its marker (older markers list
    none: the files a CTranslate2 Whisper export has)."""
    try:
        files = json.loads((export / EXPORT_MARKER).read_text("utf-8")).get("files")
    except (OSError, ValueError, AttributeError):
        files = None
    if not isinstance(files, list):
        files = [*CT2_FILES, EXPORT_MARKER]
    return {str(f) for f in files}


def remove_export(export: Path) -> None:
    """Remove the files sbasr wrote into an export, and the folder once nothing else is
    in it."""
    for name in written_files(export):
        path = export / name
        if path.is_file():
            path.unlink()
    if not any(export.iterdir()):
        export.rmdir()


# what the converter and sbasr write into a Whisper export
CT2_FILES = (
    "model.bin",
    "config.json",
    "vocabulary.json",
    "vocabulary.txt",
    "tokenizer.json",
    "preprocessor_config.json",
)
