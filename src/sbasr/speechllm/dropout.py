"""LoRA dropout that is cheap on a CPU.

peft puts an `nn.Dropout` before every adapted projection, and torch's CPU dropout draws
one Bernoulli number per element: a large share of a Speech-LLM training step on a CPU.
No library offers a cheaper one, so it is written here: four 15-bit uniform numbers are
cut from each 64-bit random integer torch draws, which gives the same distribution with
`p` rounded to a multiple of 1/32768. On other devices torch's own dropout runs.
"""

from __future__ import annotations

import torch
from torch import nn

from ..core.private_hooks import lora_dropouts

_LEVELS = 1 << 15


class CpuDropout(nn.Module):
    """`nn.Dropout(p)` with a cheaper mask on a CPU (seeded by torch's generator too)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability {p} is not in [0, 1)")
        self.p = p
        self.threshold = round(p * _LEVELS)  # drawn values below it are dropped
        self.scale = _LEVELS / (_LEVELS - self.threshold)  # the kept mean stays exact

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.threshold == 0:
            return x
        if x.device.type != "cpu":
            return nn.functional.dropout(x, self.p, True)
        n = x.numel()
        draws = torch.empty((n + 3) // 4, dtype=torch.int64).random_()
        # random_ fills [0, 2**63): each 16-bit slice's low 15 bits are uniform
        uniform = draws.view(torch.int16)[:n].view(x.shape) & (_LEVELS - 1)
        keep = (uniform >= self.threshold).to(x.dtype).mul_(self.scale)
        return x * keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


def cheapen_lora_dropout(model: nn.Module) -> int:
    """Put `CpuDropout` in place of each peft LoRA dropout in `model`.

    Args:
        model: A torch module with peft LoRA layers anywhere in it.

    Returns:
        How many dropouts were replaced.
    """
    swapped = 0
    for table, name, drop in lora_dropouts(model):
        if isinstance(drop, nn.Dropout):
            table[name] = CpuDropout(drop.p)
            swapped += 1
    return swapped
