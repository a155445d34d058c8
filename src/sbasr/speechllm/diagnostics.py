"""Fusion diagnostics for training: per cross-attention layer, how spread its attention is
and how open its gates are, added to the Trainer's logs (and so to TensorBoard).

The paper's failure signature for cross-attention fusion is attention that turns uniform:
each frame then takes the same average of the other stream, and the fusion no longer
tells the encoders apart. Logged, that shows in the curves; past a threshold, a warning
says so while the run goes on.

The Trainer hands every callback the same `logs` dict in turn, so this callback must
come before the TensorBoard one in the callbacks list for the keys to reach it.
"""

from __future__ import annotations

import warnings
from functools import partial
from typing import Any

import torch
from torch import nn
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from .fusion import CrossAttention, Fusion

# Normalised entropy above which a layer's attention counts as uniform.
UNIFORM = 0.98


class FusionDiagnostics(TrainerCallback):
    """Logs `fusion/<layer>/attention_entropy` and, for gated fusion, `fusion/<layer>/gate_mean`,
    each averaged over the training forward passes since the last log, and warns once per
    layer when the entropy goes above `uniform`. Dev passes and decoding are not measured.
    A model without a cross-attention fusion makes it a no-op."""

    def __init__(self, uniform: float = UNIFORM) -> None:
        self.uniform = uniform
        self._hooks: list[torch.utils.hooks.RemovableHandle] = []
        self._layers: dict[str, CrossAttention] = {}
        self._sums: dict[str, list[float]] = {}  # key -> [sum, count]
        self._warned: set[str] = set()

    def on_train_begin(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: nn.Module | None = None,
        **kwargs: Any,
    ) -> None:
        self._stop()
        fusion = find_fusion(model)
        self._layers = fusion.layers() if fusion is not None else {}
        for name, layer in self._layers.items():
            self._hooks.append(layer.register_forward_pre_hook(_diagnose_if_training))
            self._hooks.append(layer.register_forward_hook(partial(self._record, name)))

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        if not self._sums:  # nothing trained since the last log (e.g. an eval log)
            return
        means = {key: total / n for key, (total, n) in self._sums.items()}
        self._sums.clear()
        if logs is not None:
            logs.update(means)
        # The Trainer appends a copy of the logs to the history before the callbacks run.
        history = state.log_history
        if history and history[-1].get("step") == state.global_step:
            history[-1].update(means)
        for name in self._layers:
            entropy = means.get(f"fusion/{name}/attention_entropy")
            if entropy is not None and entropy > self.uniform and name not in self._warned:
                self._warned.add(name)
                warnings.warn(
                    f"fusion layer {name}: attention nearly uniform (normalised entropy "
                    f"{entropy:.3f} at step {state.global_step}), so the fusion no longer "
                    "tells the encoders apart",
                    stacklevel=2,
                )

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._stop()

    def _record(self, name: str, layer: CrossAttention, inputs: Any, output: Any) -> None:
        if not layer.training:
            return
        for metric, value in (("attention_entropy", layer.entropy), ("gate_mean", layer.gate_mean)):
            if value is not None:
                acc = self._sums.setdefault(f"fusion/{name}/{metric}", [0.0, 0])
                acc[0] += value
                acc[1] += 1

    def _stop(self) -> None:
        """Hooks off and the layers back to not diagnosing."""
        for hook in self._hooks:
            hook.remove()
        self._hooks.clear()
        for layer in self._layers.values():
            layer.diagnose = False
        self._sums.clear()


def find_fusion(model: nn.Module | None) -> Fusion | None:
    """The model's fusion, wherever a wrapper (DDP, compile) put it; None without one."""
    if model is None:
        return None
    return next((m for m in model.modules() if isinstance(m, Fusion)), None)


def _diagnose_if_training(layer: CrossAttention, inputs: Any) -> None:
    """Training passes measure; dev passes and decoding inside the run cost nothing extra."""
    layer.diagnose = layer.training
