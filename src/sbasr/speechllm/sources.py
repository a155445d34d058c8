"""A trained Speech-LLM directory that stands on its own: the Whisper model its encoder
came from and the CTranslate2 model of its first pass (hypotheses, rescoring, language
identification) are kept inside it when they are local directories, so that moving or
deleting the Whisper run it was built on leaves it working.

Files are hard-linked where the file system allows (no second copy of the weights on
disk) and copied otherwise. Embedded models and hub ids are named, not copied.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

from ..core.errors import SbasrError
from .config import SpeechLLMConfig

# part -> (the folder inside the model directory, the configuration field it stands for)
PARTS = {"encoder": ("whisper", "encoder"), "first_pass": ("whisper-ct2", "hypothesis_model")}
# what a Whisper model directory needs, of the files it may hold
_KEEP_SUFFIXES = (".json", ".safetensors", ".bin", ".txt", ".model", ".tiktoken")


def first_pass_of(config: SpeechLLMConfig) -> str:
    """The Whisper model the engine decodes the first pass with: `hypothesis_model`, else
    the encoder's own model."""
    return config.hypothesis_model or config.encoder


def bundle(config: SpeechLLMConfig, directory: Path, first_pass: str | None = None) -> None:
    """Copy (or hard-link) the local Whisper models `config` names into `directory` and
    record them in `config.bundled`.

    Args:
        config: the model's configuration (its `bundled` is changed in place).
        directory: the trained model's directory.
        first_pass: the model the first pass decodes with (default: `first_pass_of`);
            a transformers directory is kept as its CTranslate2 conversion.
    """
    from ..whisper.models import is_ct2_dir, resolve_model

    sources = {"encoder": config.encoder, "first_pass": first_pass or first_pass_of(config)}
    for part, source in sources.items():
        folder, _ = PARTS[part]
        path = Path(source).expanduser()
        if not path.is_dir():
            continue  # an embedded name or a hub id: found again by name
        if part == "first_pass" and not is_ct2_dir(path):
            path = Path(resolve_model(str(path)))  # what the engine decodes: CTranslate2
        target = directory / folder
        if target.resolve() != path.resolve():
            _link_tree(path, target)
        config.bundled[part] = folder


def resolve_bundled(config: SpeechLLMConfig, directory: Path) -> SpeechLLMConfig:
    """`config` with each bundled part pointing into `directory`.

    Raises:
        SbasrError: a bundled folder is missing (one line naming it and where it came from).
    """
    changes = {}
    for part, folder in config.bundled.items():
        if part not in PARTS:
            continue
        path = directory / folder
        if not (path / "config.json").is_file():
            what = "its Whisper encoder" if part == "encoder" else "its first-pass Whisper model"
            raise SbasrError(
                f"{directory}: {folder}/ is missing ({what}, copied from "
                f"{config.encoder_origin or getattr(config, PARTS[part][1])}); copy the whole "
                "model directory"
            )
        changes[PARTS[part][1]] = str(path)
    bundled = config.bundled
    if "encoder" in bundled and "first_pass" not in bundled and not config.hypothesis_model:
        changes["hypothesis_model"] = changes["encoder"]  # the first pass is the encoder's
    return replace(config, **changes) if changes else config


def _link_tree(source: Path, target: Path) -> None:
    """The model files of `source` in `target`, hard-linked or copied, written beside it
    and renamed into place whole."""
    work = target.with_name(f".{target.name}.partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        for f in sorted(source.iterdir()):
            if not f.is_file() or not f.name.endswith(_KEEP_SUFFIXES):
                continue
            if f.name in ("training_args.bin", "trainer_state.json"):
                continue  # a run's training state, not the model
            try:
                os.link(f, work / f.name)
            except OSError:  # another file system, or links not allowed
                shutil.copy2(f, work / f.name)
        if target.exists():
            shutil.rmtree(target)
        os.replace(work, target)
    except OSError as e:
        raise SbasrError(f"{target}: cannot keep a copy of {source}: {e.strerror or e}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
