"""Export a fine-tuned Whisper to CTranslate2: a transformers Whisper directory, or a LoRA
adapter merged into its base first, converted with ctranslate2's own converter so that
faster-whisper and `sbasr transcribe --model DIR` decode it fast."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from ..core.choices import QUANTIZATIONS
from ..core.constants import DEFAULT_QUANTIZATION
from ..core.errors import SbasrError
from .ct2 import transformers_to_ct2
from .export_target import EXPORT_MARKER, check_export_target, is_export_of, written_files
from .models import cache_dir, is_ct2_dir, is_transformers_whisper, transformers_model


def export_ct2(
    source: str | Path,
    output: str | Path | None = None,
    quantization: str = DEFAULT_QUANTIZATION,
    overwrite: bool = False,
) -> Path:
    """Convert a fine-tuned Whisper to CTranslate2, for faster-whisper.

    A LoRA adapter is merged into its base weights first; languages, tasks, suppressed
    tokens and alignment heads are kept. Nothing sbasr did not write is deleted, and the
    source directory is never written over.

    Args:
        source: A transformers Whisper directory, or a LoRA adapter directory whose base
            is one.
        output: Where the export goes; None: `source`/ct2.
        quantization: The weights' type, one of `QUANTIZATIONS`.
        overwrite: Write into an `output` that holds other files (they are kept).

    Returns:
        The export's directory.

    Raises:
        SbasrError: An unknown quantization, a source that is not a Whisper model or
            adapter, or an `output` holding other files without `overwrite`.
    """
    from ..core.quiet import no_progress_bars

    with no_progress_bars():  # a bar per model loaded says nothing here
        return _export(Path(source), output, quantization, overwrite)


def _export(source: Path, output: str | Path | None, quantization: str, overwrite: bool) -> Path:
    if quantization not in QUANTIZATIONS:
        raise SbasrError(f"unknown quantization {quantization!r}; use {', '.join(QUANTIZATIONS)}")
    if source.exists() and not source.is_dir():
        raise SbasrError(f"{source}: is a file; the model to export is a directory")
    if not source.is_dir():
        raise SbasrError(f"{source}: no such directory")
    if is_ct2_dir(source):
        raise SbasrError(f"{source}: already a CTranslate2 model")
    out = Path(output) if output else source / "ct2"
    check_export_target(source, out, overwrite)  # before the merge and conversion
    if (source / "adapter_config.json").is_file():
        cache_dir().mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache_dir(), prefix=".merge-") as tmp:
            merged = merge_lora(source, Path(tmp) / "merged")
            return convert_to_ct2(merged, out, quantization, origin=source, overwrite=overwrite)
    if is_transformers_whisper(source):
        return convert_to_ct2(source, out, quantization, origin=source, overwrite=overwrite)
    raise SbasrError(
        f"{source}: neither a transformers Whisper model (config.json with model_type whisper) "
        "nor a LoRA adapter (adapter_config.json)"
    )


def merge_lora(adapter: Path, target: Path) -> Path:
    """A LoRA adapter directory merged into its base Whisper, saved in transformers format.

    Args:
        adapter: a `sbasr finetune --arch whisper` LoRA output directory (its
            adapter_config.json names the base model).
        target: the directory the merged model, its tokenizer and features are saved to.

    Returns:
        `target`.
    """
    from peft import PeftModel
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from ..core.quiet import quiet_peft

    config = json.loads((adapter / "adapter_config.json").read_text("utf-8"))
    base = transformers_model(str(config.get("base_model_name_or_path") or ""))
    model = WhisperForConditionalGeneration.from_pretrained(base)
    with quiet_peft():
        merged = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    merged.save_pretrained(target, safe_serialization=True)  # with the base's generation config
    # The tokenizer and features: the adapter's own where it carries them (sbasr saves them
    # beside every adapter), else the base's.
    source = adapter if (adapter / "tokenizer.json").is_file() else base
    save_processor(WhisperProcessor.from_pretrained(source), target)
    if (adapter / "tokenizer.json").is_file():  # the exact file faster-whisper reads
        shutil.copy2(adapter / "tokenizer.json", target / "tokenizer.json")
    return target


def save_processor(processor, directory: Path) -> None:
    """The processor as transformers saves it, and the two files faster-whisper reads
    beside a model whatever the transformers version: `preprocessor_config.json` (5.x
    saves the features inside `processor_config.json` instead) and `tokenizer.json`."""
    processor.save_pretrained(directory)
    processor.feature_extractor.save_pretrained(directory)
    if not (Path(directory) / "tokenizer.json").is_file():
        processor.tokenizer.backend_tokenizer.save(str(Path(directory) / "tokenizer.json"))


def convert_to_ct2(
    source: Path,
    target: Path,
    quantization: str | None = None,
    origin: Path | None = None,
    overwrite: bool = False,
) -> Path:
    """Convert a transformers Whisper directory to CTranslate2 in `target`, written beside
    it and renamed into place once complete. An earlier export of `origin` (default
    `source`; the model the user named) in `target` is replaced whole; into any other
    non-empty `target` (only with `overwrite`) the export's files are moved one by one,
    and nothing else there is touched (an earlier export holding files of someone else's
    too gets its own files replaced, and keeps those)."""
    origin = origin or source
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    except OSError as e:
        raise SbasrError(f"{target}: cannot write there: {e.strerror or e}") from None
    try:
        new = work / "m"
        transformers_to_ct2(source, new, quantization)
        files = sorted([*(p.name for p in new.iterdir()), EXPORT_MARKER])
        marker = {
            "source": str(origin.resolve()),
            "relative": os.path.relpath(origin.resolve(), target.resolve()),
            "quantization": quantization,
            "files": files,  # what sbasr wrote: a later export replaces these, no others
        }
        (new / EXPORT_MARKER).write_text(json.dumps(marker, indent=2) + "\n", "utf-8")
        if target.is_dir() and not any(target.iterdir()):
            target.rmdir()
        earlier = written_files(target) if is_export_of(target, origin) else None
        if not target.exists():
            os.replace(new, target)
        elif earlier is not None and {p.name for p in target.iterdir()} <= earlier:
            os.replace(target, work / "old")  # removed with the work folder
            os.replace(new, target)
        elif earlier is not None or overwrite:  # files of someone else's are there: kept
            for name in (earlier or set()) - set(files):
                stale = target / name
                if stale.is_file():
                    stale.unlink()
            for item in new.iterdir():
                os.replace(item, target / item.name)
        else:
            raise SbasrError(f"{target}: not empty and not an earlier export of {origin}")
    except OSError as e:
        raise SbasrError(f"{target}: cannot write the export: {e.strerror or e}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target
