"""A trained Speech-LLM's files: its trained weights (`model.safetensors`), the LLM's LoRA
in peft's format (`llm_adapter/`) and its configuration; reading them back, and the mean
of several checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ..core.constants import SPEECHLLM_CONFIG
from ..core.errors import SbasrError
from ..io.files import write_atomic
from .config import ADAPTER_DIR, WEIGHTS_NAME


def save_trained(model: nn.Module, directory: str | Path) -> None:
    """Write `model`'s trained weights, its LLM adapter and its configuration.

    Args:
        model: The Speech-LLM.
        directory: Where they go (made if missing).

    Raises:
        SbasrError: The model's LoRA is merged into the LLM (a decoding copy).
    """
    from safetensors.torch import save_file

    if model.merged:
        raise SbasrError("a model with its LoRA merged (for decoding) cannot be saved")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {
        n: p.detach().contiguous().cpu()
        for n, p in model.named_parameters()
        if model._is_trained(n) and not n.startswith("llm.")
    }
    save_file(state, str(directory / WEIGHTS_NAME), metadata={"format": "pt"})
    if model.spec.llm_lora:
        model.llm.save_pretrained(str(directory / ADAPTER_DIR))
    text = json.dumps(model.spec.to_dict(), indent=2) + "\n"
    write_atomic(directory / SPEECHLLM_CONFIG, text)


def load_trained(model: nn.Module, state: dict, adapter: dict | None) -> None:
    """Put saved trained weights in place.

    An LLM adapter needs the model in stage 2 already (`set_stage(2)`, or a configuration
    saved after it): loading never changes what the model is made of.

    Args:
        model: The Speech-LLM.
        state: The trained weights outside the LLM, by parameter name.
        adapter: The LLM's LoRA weights in peft's naming, or None.

    Raises:
        SbasrError: A weight is missing or left over, or the adapter does not fit.
    """
    expected = {
        n for n, _ in model.named_parameters() if model._is_trained(n) and not n.startswith("llm.")
    }
    if set(state) != expected:
        missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
        raise SbasrError(
            f"saved weights do not fit the configuration (missing "
            f"{missing[:3]}, unexpected {extra[:3]})"
        )
    if (adapter is not None) != model.spec.llm_lora:
        which = "an LLM adapter, the model none" if adapter else "no LLM adapter, the model one"
        raise SbasrError(f"saved weights do not fit the configuration ({which})")
    model.load_state_dict(state, strict=False)
    if adapter is not None:
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model.llm, adapter)


def read_trained(directory: str | Path) -> tuple[dict, dict | None]:
    """The trained weights saved in a model or checkpoint directory.

    Args:
        directory: The directory.

    Returns:
        (the weights of model.safetensors, the LLM adapter's or None).

    Raises:
        SbasrError: A missing, truncated, empty or foreign file, named.
    """
    directory = Path(directory)
    if not (directory / WEIGHTS_NAME).is_file():
        raise SbasrError(f"{directory}: no {WEIGHTS_NAME}")
    state = _load_weights(directory / WEIGHTS_NAME)
    adapter_file = directory / ADAPTER_DIR / "adapter_model.safetensors"
    adapter = _load_weights(adapter_file) if adapter_file.is_file() else None
    return state, adapter


def _load_weights(path: Path) -> dict:
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as e:  # SafetensorError (bad header), OSError, a foreign format
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SbasrError(
            f"{path}: cannot read the weights ({reason}); the file is damaged or incomplete: "
            "copy it again from the training run"
        ) from None


def average_trained(directories: list[Path]) -> tuple[dict, dict | None]:
    """The element-wise mean of several checkpoints' trained weights.

    Args:
        directories: The checkpoints.

    Returns:
        (the mean weights, the mean adapter or None when any checkpoint has none).

    Raises:
        SbasrError: A checkpoint cannot be read.
    """
    loaded = [read_trained(d) for d in directories]

    def mean(dicts: list[dict]) -> dict:
        return {
            k: torch.stack([d[k].float() for d in dicts]).mean(0).to(dicts[0][k].dtype)
            for k in dicts[0]
        }

    state = mean([s for s, _ in loaded])
    adapters = [a for _, a in loaded]
    if any(a is None for a in adapters):
        return state, None
    return state, mean(adapters)  # type: ignore[arg-type]
