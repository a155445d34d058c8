"""Exporting a fine-tuned Whisper (full weights or a LoRA adapter) to CTranslate2, so that
faster-whisper and `sbasr transcribe --model DIR` decode it fast."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from ..choices import QUANTIZATIONS
from ..errors import SbasrError
from .models import (
    cache_dir,
    convert_to_ct2,
    is_ct2_dir,
    is_transformers_whisper,
    transformers_model,
)


def export_ct2(
    source: str | Path, output: str | Path | None = None, quantization: str = "int8"
) -> Path:
    """Convert `source` (a transformers Whisper directory, or a LoRA adapter directory whose
    base is one) to CTranslate2 in `output` (default: `source`/ct2). A LoRA adapter is merged
    into its base weights first; languages, tasks, suppressed tokens and alignment heads
    are kept."""
    source = Path(source)
    if quantization not in QUANTIZATIONS:
        raise SbasrError(f"unknown quantization {quantization!r}; use {', '.join(QUANTIZATIONS)}")
    if not source.is_dir():
        raise SbasrError(f"{source}: no such directory")
    if is_ct2_dir(source):
        raise SbasrError(f"{source}: already a CTranslate2 model")
    out = Path(output) if output else source / "ct2"
    if (source / "adapter_config.json").is_file():
        cache_dir().mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache_dir(), prefix=".merge-") as tmp:
            merged = _merge_lora(source, Path(tmp) / "merged")
            return convert_to_ct2(merged, out, quantization)
    if is_transformers_whisper(source):
        return convert_to_ct2(source, out, quantization)
    raise SbasrError(
        f"{source}: neither a transformers Whisper model (config.json with model_type whisper) "
        "nor a LoRA adapter (adapter_config.json)"
    )


def _merge_lora(adapter: Path, target: Path) -> Path:
    from peft import PeftModel
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    config = json.loads((adapter / "adapter_config.json").read_text("utf-8"))
    base = transformers_model(str(config.get("base_model_name_or_path") or ""))
    model = WhisperForConditionalGeneration.from_pretrained(base)
    merged = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    merged.save_pretrained(target, safe_serialization=True)  # with the base's generation config
    # The tokenizer and features: the adapter's own where it carries them (sbasr saves them
    # beside every adapter), else the base's.
    source = adapter if (adapter / "tokenizer.json").is_file() else base
    WhisperProcessor.from_pretrained(source).save_pretrained(target)
    if (adapter / "tokenizer.json").is_file():  # the exact file faster-whisper reads
        shutil.copy2(adapter / "tokenizer.json", target / "tokenizer.json")
    return target
