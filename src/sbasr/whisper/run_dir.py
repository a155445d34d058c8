"""A Whisper model to build on, as `sbasr finetune --arch speechllm --model` names it: an
embedded name, a transformers Whisper directory, a hub id, or the output directory of
`sbasr finetune --arch whisper` (full weights, or a LoRA adapter).

A LoRA run is merged into its base once and cached by the adapter's files, so that the
Speech-LLM's encoder loads plain transformers weights; the first pass (Whisper's own
transcripts) is the run's CTranslate2 export where it has one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import SbasrError
from .models import EMBEDDED, _build_once, cache_dir, is_ct2_dir, is_transformers_whisper

ADAPTER_CONFIG = "adapter_config.json"


@dataclass(frozen=True)
class WhisperSource:
    """Where each part of a Speech-LLM built on a Whisper model comes from.

    Attributes:
        source: what the user named (a local path made absolute).
        kind: "embedded", "transformers", "lora" or "hub".
        encoder: what transformers loads the encoder from (a directory, name or hub id).
        first_pass: what the Whisper engine decodes the first pass with: a CTranslate2
            directory where there is one, else a model the engine converts itself.
    """

    source: str
    kind: str
    encoder: str
    first_pass: str


def whisper_source(model: str) -> WhisperSource:
    """The parts of Whisper model `model` a Speech-LLM is built from.

    Args:
        model: an embedded name, a transformers Whisper directory, the output directory
            of `sbasr finetune --arch whisper` (full or LoRA), or a hub id.

    Returns:
        Its `WhisperSource`; a LoRA run is merged into its base (once, cached).

    Raises:
        SbasrError: a directory that is none of these, or an adapter whose base is missing.
    """
    if model in EMBEDDED:
        return WhisperSource(model, "embedded", model, model)
    path = Path(model).expanduser()
    if not path.exists():
        if "/" in model and not model.startswith((".", "/", "~")):
            return WhisperSource(model, "hub", model, model)
        raise SbasrError(
            f"{model}: no such model directory; use {', '.join(EMBEDDED)} (embedded), a "
            "Whisper directory, the output directory of sbasr finetune --arch whisper, or a hub id"
        )
    path = path.resolve()
    if not path.is_dir():
        raise SbasrError(f"{model}: a model is a directory, not a file")
    export = _own_export(path)
    if (path / ADAPTER_CONFIG).is_file():
        merged = merged_lora(path)
        return WhisperSource(str(path), "lora", str(merged), str(export or merged))
    if is_transformers_whisper(path):
        return WhisperSource(str(path), "transformers", str(path), str(export or path))
    if is_ct2_dir(path):
        raise SbasrError(
            f"{model}: a CTranslate2 model, which has no encoder weights transformers can "
            "train on; give the transformers Whisper directory it was exported from"
        )
    raise SbasrError(
        f"{model}: neither a transformers Whisper directory (config.json with model_type "
        "whisper), nor an sbasr finetune --arch whisper run (a model or adapter_config.json)"
    )


def merged_lora(adapter: Path) -> Path:
    """A LoRA adapter directory merged into its base Whisper, in transformers format:
    built once into the cache, keyed by the adapter's place and files, so that a retrained
    adapter is merged again and an unchanged one never.

    Raises:
        SbasrError: the adapter's configuration is unreadable or names no base model.
    """
    from .export import merge_lora

    try:
        config = json.loads((adapter / ADAPTER_CONFIG).read_text("utf-8"))
    except (OSError, ValueError) as e:
        raise SbasrError(f"{adapter / ADAPTER_CONFIG}: cannot read it ({e})") from None
    if not isinstance(config, dict) or not config.get("base_model_name_or_path"):
        raise SbasrError(f"{adapter / ADAPTER_CONFIG}: names no base model to merge into")
    stamp = hashlib.sha1(str(adapter.resolve()).encode())
    for f in sorted(adapter.iterdir()):
        if f.is_file():
            st = f.stat()
            stamp.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    target = cache_dir() / "merged" / f"{adapter.name}-{stamp.hexdigest()[:12]}"
    return _build_once(target, is_transformers_whisper, lambda work: merge_lora(adapter, work))


def _own_export(run: Path) -> Path | None:
    """The run's CTranslate2 export (`run`/ct2), where it has a complete one."""
    export = run / "ct2"
    return export if is_ct2_dir(export) else None
