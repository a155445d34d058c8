"""Fusing two parallel encoder streams, the paper's variants a-e.

W is the Whisper stream, M the second encoder's, both at the same frame rate. Each
cross-attention is one multi-head attention layer whose keys and values come from the
other stream, masked by that stream's padding, with a residual and LayerNorm (and in the
gated variants a sigmoid gate on the attention output).
"""

from __future__ import annotations

import torch
from torch import nn

from ..choices import FUSIONS


class CrossAttention(nn.Module):
    """LN(X + CA(q=X, kv=Y)), or LN(X + sigmoid(Linear(H)) * H) with H = CA(...) when gated."""

    def __init__(self, dim: int, other_dim: int, heads: int, gated: bool) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(
            dim, heads, kdim=other_dim, vdim=other_dim, batch_first=True
        )
        self.gate = nn.Linear(dim, dim) if gated else None
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, y: torch.Tensor, y_pad: torch.Tensor) -> torch.Tensor:
        h, _ = self.attn(x, y, y, key_padding_mask=y_pad, need_weights=False)
        if self.gate is not None:
            h = torch.sigmoid(self.gate(h)) * h
        return self.norm(x + h)


class Fusion(nn.Module):
    """One of FUSIONS; `dim` is the width of what comes out."""

    def __init__(self, kind: str, w_dim: int, m_dim: int, heads: int = 8) -> None:
        super().__init__()
        if kind not in FUSIONS:
            raise ValueError(f"unknown fusion {kind!r}; use one of {', '.join(FUSIONS)}")
        self.kind = kind
        gated = kind.startswith("gated")
        self.w_to_m = CrossAttention(w_dim, m_dim, heads, gated) if kind != "concat" else None
        self.m_to_w = CrossAttention(m_dim, w_dim, heads, gated) if "bi-cross" in kind else None
        self.dim = {
            "concat": w_dim + m_dim,
            "uni-cross": w_dim,
            "bi-cross": w_dim + m_dim,
            "gated-bi-cross": w_dim + m_dim,
            "gated-bi-cross-concat": 2 * (w_dim + m_dim),
        }[kind]

    def forward(self, w: torch.Tensor, m: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """`w` (B, T, Dw) and `m` (B, T, Dm) share frame counts; `mask` is True on real
        frames. Padded frames of the result are zero."""
        pad = ~mask
        if self.kind == "concat":
            out = torch.cat([w, m], dim=-1)
        elif self.kind == "uni-cross":
            out = self.w_to_m(w, m, pad)
        else:
            w2, m2 = self.w_to_m(w, m, pad), self.m_to_w(m, w, pad)
            parts = [w, m, w2, m2] if self.kind.endswith("concat") else [w2, m2]
            out = torch.cat(parts, dim=-1)
        return out * mask[..., None]
