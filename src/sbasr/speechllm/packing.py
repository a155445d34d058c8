"""The LLM over a batch's real positions only, in one packed row (padding not computed).

A training batch of utterances of unequal length is a fifth padding, and every position
costs the LLM's projections, MLP, norms and LoRA, forward and backward, whether it is
padding or not. Packed, the rows lie end to end in one sequence (positions counted from 0
in each), so that all of that runs on real positions alone; only the attention itself
needs the rows apart, so it lays its queries, keys and values out as padded rows, runs
the model's own attention there with a causal mask, and packs its output again (what
varlen flash attention does on a GPU, for any attention and device). Each row's result is
what the LLM computes for that row alone.

Written here because transformers packs sequences only for flash attention, or with a
block-diagonal mask that makes the attention quadratic in the whole batch's length.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from ..core.private_hooks import attention_implementation, eager_attention_of

NAME = "sbasr_packed_rows"  # the attention implementation's name in transformers' table


@dataclass
class Packing:
    """Where the packed positions came from: `real` holds each one's slot in the padded
    rows [rows, width], flattened, in packed order."""

    real: torch.Tensor
    rows: int
    width: int
    inner: str  # the LLM's own attention implementation, run on the padded rows

    def take(self, padded: torch.Tensor) -> torch.Tensor:
        """[rows, width, dim] -> the real positions' [positions, dim], in packed order."""
        return padded.reshape(-1, padded.shape[-1]).index_select(0, self.real)


def pack(mask: torch.Tensor, inner: str) -> tuple[torch.Tensor, Packing]:
    """The packing of padded rows with `mask` [rows, width], and the packed row's position
    ids [1, positions], counted from 0 in each row."""
    keep = mask.bool()
    real = keep.reshape(-1).nonzero()[:, 0]
    positions = (keep.long().cumsum(1) - 1).reshape(-1).index_select(0, real)
    return positions[None], Packing(real, *keep.shape, inner)


def _rows_attention(module, query, key, value, attention_mask, **kwargs):
    """The model's own attention per row: [1, heads, positions, d] laid out as padded
    rows, causal (right padding: a real query never sees padding), packed again."""
    from transformers import AttentionInterface

    packing: Packing | None = kwargs.pop("sbasr_packing", None)
    if packing is None:  # not a packed call (say, a model whose LLM took this name)
        raise RuntimeError("the packed-rows attention was called without a packing")
    kwargs.pop("position_ids", None)  # the packed row's: flash attention would read them
    if packing.inner == "eager":
        inner = eager_attention_of(module)
    else:
        inner = AttentionInterface()[packing.inner]
    rows, width = packing.rows, packing.width

    # copies by index_copy and index_select: their backward passes are the same cheap
    # copies, where indexing's is an accumulating index_put
    def spread(x: torch.Tensor) -> torch.Tensor:  # [1, h, n, d] -> [rows, h, width, d]
        x = x[0].transpose(0, 1)  # [n, h, d]
        slots = x.new_zeros(rows * width, *x.shape[1:]).index_copy(0, packing.real, x)
        return slots.view(rows, width, *x.shape[1:]).transpose(1, 2)

    causal = None
    if packing.inner == "eager":  # the others take no mask as causal
        causal = torch.full(
            (width, width), torch.finfo(query.dtype).min, dtype=query.dtype, device=query.device
        ).triu(1)
    out, _ = inner(module, spread(query), spread(key), spread(value), causal, **kwargs)
    # out: [rows, width, heads, d]
    return out.reshape(rows * width, *out.shape[2:]).index_select(0, packing.real)[None], None


@contextlib.contextmanager
def packed_attention(model) -> Iterator[str]:
    """The attention of transformers model `model` switched to the packed rows' for one
    forward call; yields its own implementation's name. transformers finds attention
    implementations by name in one table: this adds a name to it (once), sets it with
    the public `set_attn_implementation`, and sets the model's own back after."""
    from transformers import AttentionInterface

    if NAME not in AttentionInterface().valid_keys():
        AttentionInterface.register(NAME, _rows_attention)
    inner = attention_implementation(model)
    model.set_attn_implementation(NAME)
    try:
        yield inner
    finally:
        model.set_attn_implementation(inner)
