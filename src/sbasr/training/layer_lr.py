"""Layer-wise learning-rate decay for Whisper fine-tuning: each layer's rate scaled by
its depth below the top of its own stack (encoder or decoder)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..core.errors import SbasrError

if TYPE_CHECKING:
    from torch import nn


def check_layer_lr_decay(decay: float) -> None:
    """Refuse a decay outside (0, 1]: 0 would freeze every lower layer, and above 1 the lower
    layers would outpace the top, the reverse of what the option is for."""
    if not 0.0 < decay <= 1.0:
        raise SbasrError(f"--layer-lr-decay {decay}: must be above 0 and at most 1 (1 is off)")


# `encoder.layers.3.` in a plain model's names and inside a PEFT wrapper's alike
_LAYER = re.compile(r"(?:^|\.)(encoder|decoder)\.layers\.(\d+)\.")
# what feeds a stack's layer 0: the conv stem and the token and position embeddings
_STEM = re.compile(r"(?:^|\.)(encoder|decoder)\.(conv1|conv2|embed_positions|embed_tokens)\.")


def layer_depths(names: list[str]) -> dict[str, int]:
    """Each parameter's distance below the top layer of its own stack (encoder or decoder).

    The stem counts as one below layer 0; the final layer norms and anything outside the two
    stacks (the output projection) are at the top, depth 0. The stack sizes are read from the
    names, so that a PEFT-wrapped model and a frozen encoder are counted the same way.
    """
    sizes: dict[str, int] = {}
    for name in names:
        if m := _LAYER.search(name):
            sizes[m[1]] = max(sizes.get(m[1], 0), int(m[2]) + 1)
    depths = {}
    for name in names:
        if m := _LAYER.search(name):
            depths[name] = sizes[m[1]] - 1 - int(m[2])
        elif m := _STEM.search(name):
            depths[name] = sizes.get(m[1], 0)
        else:
            depths[name] = 0
    return depths


def layer_lr_groups(
    model: nn.Module, decay_names: list[str], lr: float, weight_decay: float, decay: float
) -> list[dict]:
    """Optimizer param groups of the trainable parameters, one per (depth, weight decay)
    pair, each with its own "lr" = `lr` * `decay`**depth; the Trainer's schedulers (LambdaLR)
    scale every group from its own initial rate, so the ratios hold through the schedule.
    Weight decay goes to `decay_names` only, as the Trainer does (none for biases and norms).
    """
    named = list(model.named_parameters())
    depths = layer_depths([n for n, _ in named])
    decayed = set(decay_names)
    groups: dict[tuple[int, bool], list] = {}
    for name, param in named:
        if param.requires_grad:
            groups.setdefault((depths[name], name in decayed), []).append(param)
    return [
        {
            "params": params,
            "weight_decay": weight_decay if with_decay else 0.0,
            "lr": lr * decay**depth,
        }
        for (depth, with_decay), params in sorted(groups.items(), key=lambda kv: kv[0])
    ]
