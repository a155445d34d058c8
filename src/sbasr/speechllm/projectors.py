"""Projectors: encoder frames (50/s) down to LLM input embeddings (12.5/s by default).

Each takes (B, T, D) frames with a mask and returns (B, T', llm_dim) with new lengths;
whatever an utterance's output depends on stays inside the utterance (padded frames are
zeroed before every convolution, Q-Former windows never cross utterances).
"""

from __future__ import annotations

import torch
from torch import nn

from ..core.choices import PROJECTORS
from .encoders import frame_mask


class ConvProjector(nn.Module):
    """The MLC-SLM baseline's: drop T mod k frames, Conv1d -> GELU -> strided Conv1d ->
    Linear -> ReLU -> Linear -> ReLU -> LayerNorm, k times fewer positions."""

    def __init__(self, dim: int, llm_dim: int, k: int = 4) -> None:
        super().__init__()
        self.k = k
        self.conv1 = nn.Conv1d(dim, dim, 3, padding=1)
        self.conv2 = nn.Conv1d(dim, 4 * dim, 3, stride=k, padding=1)
        self.mlp = nn.Sequential(
            nn.Linear(4 * dim, dim),
            nn.ReLU(),
            nn.Linear(dim, llm_dim),
            nn.ReLU(),
            nn.LayerNorm(llm_dim),
        )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = _kept(lengths, self.k)
        width = max(int(lengths.max()), self.k)
        x = _fit(x, width)
        mask = frame_mask(lengths, x.shape[1])[:, None, :]  # (B, 1, T)
        h = x.transpose(1, 2) * mask
        h = nn.functional.gelu(self.conv1(h)) * mask
        h = self.conv2(h).transpose(1, 2)
        out_len = lengths // self.k
        return self.mlp(h[:, : int(out_len.max())]), out_len


class LinearProjector(nn.Module):
    """Frame stacking (k frames side by side) then Linear -> ReLU -> Linear."""

    def __init__(self, dim: int, llm_dim: int, k: int = 4) -> None:
        super().__init__()
        self.k = k
        self.mlp = nn.Sequential(
            nn.Linear(k * dim, llm_dim), nn.ReLU(), nn.Linear(llm_dim, llm_dim)
        )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = _kept(lengths, self.k)
        width = max(int(lengths.max()), self.k)
        x = _fit(x, width)
        stacked = x.reshape(x.shape[0], width // self.k, self.k * x.shape[2])
        return self.mlp(stacked), lengths // self.k


class QFormerProjector(nn.Module):
    """A window-level Q-Former: `queries` learned queries read each window of `window`
    frames through a small transformer decoder (self-attention among the queries,
    cross-attention to the window's real frames)."""

    def __init__(
        self,
        dim: int,
        llm_dim: int,
        window: int = 16,
        queries: int = 4,
        layers: int = 2,
        hidden: int = 256,
        heads: int = 4,
    ) -> None:
        super().__init__()
        self.window, self.queries = window, queries
        self.query = nn.Parameter(torch.randn(queries, hidden) * 0.02)
        self.inp = nn.Linear(dim, hidden)
        layer = nn.TransformerDecoderLayer(
            hidden, heads, 4 * hidden, dropout=0.1, batch_first=True, norm_first=True
        )
        self.decoder = nn.TransformerDecoder(layer, layers)
        self.out = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, llm_dim))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t, _ = x.shape
        n_win = -(-t // self.window)
        x = nn.functional.pad(x, (0, 0, 0, n_win * self.window - t))
        windows = self.inp(x).reshape(b * n_win, self.window, -1)
        pad = ~frame_mask(lengths, n_win * self.window).reshape(b * n_win, self.window)
        pad[pad.all(dim=1)] = False  # windows past an utterance's end: discarded below
        query = self.query[None].expand(b * n_win, -1, -1)
        h = self.decoder(query, windows, memory_key_padding_mask=pad.to(x.device))
        h = self.out(h).reshape(b, n_win * self.queries, -1)
        return h, -(-lengths // self.window) * self.queries


def build_projector(kind: str, dim: int, llm_dim: int, k: int = 4) -> nn.Module:
    if kind == "conv":
        return ConvProjector(dim, llm_dim, k)
    if kind == "linear":
        return LinearProjector(dim, llm_dim, k)
    if kind == "qformer":
        return QFormerProjector(dim, llm_dim, window=4 * k, queries=4)
    raise ValueError(f"unknown projector {kind!r}; use one of {', '.join(PROJECTORS)}")


@torch.no_grad()
def match_scale(projector: nn.Module, std: float, dim: int) -> None:
    """Start the projector's outputs at the scale of the LLM's token embeddings (`std` per
    element). Left at LayerNorm's unit scale they are several times larger than an LLM's
    token embeddings, and a frozen LLM then takes many more steps to read them. Only the
    initial values change: the conv projector's final LayerNorm gain, the others' last
    Linear layer."""
    if isinstance(projector, ConvProjector):
        projector.mlp[-1].weight.fill_(std)
        return
    last = projector.mlp[-1] if isinstance(projector, LinearProjector) else projector.out[-1]
    generator = torch.Generator().manual_seed(0)
    frames = torch.randn(4, 64, dim, generator=generator)
    out, _ = projector(frames, torch.full((4,), 64))
    last.weight.mul_(std / max(float(out.std()), 1e-6))
    last.bias.mul_(std / max(float(out.std()), 1e-6))


def _kept(lengths: torch.Tensor, k: int) -> torch.Tensor:
    """Frames kept once T mod k are dropped (at least k, so nothing comes out empty)."""
    return torch.clamp(lengths - lengths % k, min=k)


def _fit(x: torch.Tensor, width: int) -> torch.Tensor:
    """`x` cut or zero-padded to `width` frames."""
    if x.shape[1] >= width:
        return x[:, :width]
    return nn.functional.pad(x, (0, 0, 0, width - x.shape[1]))
