"""Every place sbasr relies on a library's internals, each where no public hook does the
job; `tests/test_private_hooks.py` fails when a library changes under one of them.

- `TrainedWeightsTrainer._load_from_checkpoint` (transformers Trainer): the Speech-LLM's
  checkpoints hold only its trained weights in sbasr's own format (a few MB instead of
  the frozen encoders and LLM), which the Trainer's loader cannot read; `train
  (resume_from_checkpoint=...)` loads weights only through this method, and resuming
  must give the same run bit for bit.
- `TrainedWeightsTrainer.evaluation_loop` (a public method, but not among those the
  Trainer documents for overriding): the dev CER/WER added to the metrics inside the loop
  is what the callbacks, the best-checkpoint choice and the log history (checkpoint
  averaging) all see; `compute_metrics` only gets teacher-forced logits, not decoded text.
- `attention_implementation` (transformers config `_attn_implementation`): there is no
  public getter, and the Speech-LLM switches its LLM's attention for one call (with the
  public `set_attn_implementation`) and back.
- `eager_attention_of` (transformers modeling files): each model family's eager attention
  function is a module-level `eager_attention_forward`, not in the public
  `AttentionInterface` table; the packed rows run the LLM's own attention.
- `lora_dropouts` (peft `LoraLayer.lora_dropout`): peft offers no option for the dropout
  module, and its CPU dropout is a large share of a CPU training step.
- `exit_at_once` (`os._exit`): after `sbasr score`, nothing is left to do, and the
  interpreter's teardown would free every text of the test set one by one.

Torch-free at import: each library is imported where it is used.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from typing import Any


class TrainedWeightsTrainer:
    """A mixin for a transformers `Trainer` (put it first among the bases) whose
    checkpoints hold what `load_checkpoint_weights` reads, and whose evaluation adds
    `extra_eval_metrics`."""

    def load_checkpoint_weights(self, directory: str, model: Any) -> None:
        """Put the weights saved in checkpoint `directory` into `model` (unwrapped).

        Raises:
            NotImplementedError: a subclass must say how.
        """
        raise NotImplementedError

    def extra_eval_metrics(self, model: Any, dataset: Any) -> dict[str, float]:
        """Metrics to add to each evaluation, without the `eval_` prefix; none here.

        Args:
            model: The unwrapped model.
            dataset: The dataset evaluated.

        Returns:
            Name -> value.
        """
        return {}

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        target = self.accelerator.unwrap_model(model or self.model)  # type: ignore[attr-defined]
        self.load_checkpoint_weights(resume_from_checkpoint, target)

    def evaluation_loop(self, dataloader: Any, *args: Any, metric_key_prefix: str = "eval", **kw):
        output = super().evaluation_loop(  # type: ignore[misc]
            dataloader, *args, metric_key_prefix=metric_key_prefix, **kw
        )
        dataset = getattr(dataloader, "dataset", None) or self.eval_dataset  # type: ignore[attr-defined]
        if dataset is not None:
            model = self.accelerator.unwrap_model(self.model)  # type: ignore[attr-defined]
            extra = self.extra_eval_metrics(model, dataset)
            output.metrics.update({f"{metric_key_prefix}_{k}": v for k, v in extra.items()})
        return output


def attention_implementation(model: Any) -> str:
    """The attention implementation a transformers model runs.

    Args:
        model: A transformers `PreTrainedModel`.

    Returns:
        Its name in transformers' table (eager when none is set).
    """
    return model.config._attn_implementation or "eager"


def eager_attention_of(module: Any) -> Callable[..., Any]:
    """The eager attention function of the model family an attention module belongs to.

    Args:
        module: An attention layer of a transformers model.

    Returns:
        Its modeling file's `eager_attention_forward`.

    Raises:
        RuntimeError: the modeling file has none.
    """
    modeling = sys.modules.get(type(module).__module__)
    function = getattr(modeling, "eager_attention_forward", None)
    if function is None:
        raise RuntimeError(f"{type(module).__module__} has no eager_attention_forward")
    return function


def lora_dropouts(model: Any) -> Iterator[tuple[Any, str, Any]]:
    """Each peft LoRA dropout in `model`.

    Args:
        model: A torch module with peft LoRA layers anywhere in it.

    Yields:
        (the layer's dropout table, the adapter's name, the dropout module).
    """
    from torch import nn

    for module in model.modules():
        table = getattr(module, "lora_dropout", None)
        if isinstance(table, nn.ModuleDict):
            yield from ((table, name, drop) for name, drop in list(table.items()))


def exit_at_once(code: int) -> None:
    """Flush the standard streams and end the process with `code`, skipping the
    interpreter's teardown.

    Args:
        code: The exit status.

    Raises:
        OSError: a standard stream could not be flushed (a closed pipe); the process
            is then left to end as usual.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
