"""CTC alignment of the projector against the LLM's own token embeddings.

With an hour of speech, the LLM's next-token loss is a weak, indirect signal for where
each speech position should sit. A CTC loss over the LLM's vocabulary gives every
position a direct, monotonic target: the logit of token v at a position is the dot
product of the projected speech vector with the LLM's (frozen) input embedding of v, plus
one learned blank. Minimising it pulls each position toward the embedding of what is
said there, which is what the LLM reads best. It is an auxiliary loss (`--ctc-weight`),
in stage 1 and 2 alike, and adds two trained tensors: the blank and a scale.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class TokenCTC(nn.Module):
    """The blank embedding and logit scale of the CTC head; the vocabulary is the LLM's."""

    def __init__(self, dim: int, embedding_std: float) -> None:
        super().__init__()
        self.blank = nn.Parameter(torch.zeros(dim))
        # Dot products of two vectors of this spread over `dim` components have a spread
        # of std^2 * sqrt(dim): start the logits near unit scale.
        self.log_scale = nn.Parameter(
            torch.tensor(-math.log(max(embedding_std, 1e-6) ** 2 * math.sqrt(dim)))
        )

    def forward(
        self,
        speech: torch.Tensor,
        lengths: torch.Tensor,
        targets: list[list[int]],
        embeddings: torch.Tensor,
    ) -> torch.Tensor:
        """Mean CTC loss of (batch, positions, dim) `speech` against token `targets`.

        Utterances whose text needs more positions than they have (a byte-level
        tokenizer on a script it saw little of) contribute nothing rather than infinity."""
        vocab = torch.cat([embeddings, self.blank[None].to(embeddings.dtype)])  # blank last
        logits = (speech.float() @ vocab.float().T) * self.log_scale.exp()
        log_probs = logits.log_softmax(-1).transpose(0, 1)  # (positions, batch, vocab + 1)
        flat = torch.tensor([t for row in targets for t in row], dtype=torch.long)
        target_lengths = torch.tensor([len(row) for row in targets], dtype=torch.long)
        return nn.functional.ctc_loss(
            log_probs,
            flat.to(speech.device),
            lengths.to(speech.device),
            target_lengths.to(speech.device),
            blank=embeddings.shape[0],
            zero_infinity=True,
        )
