"""Fusing two parallel encoder streams, the paper's variants a-e.

W is the Whisper stream, M the second encoder's, both at the same frame rate. Each
cross-attention is one multi-head attention layer whose keys and values come from the
other stream, masked by that stream's padding, with a residual and LayerNorm (and in the
gated variants a sigmoid gate on the attention output).

With `diagnose` on, each cross-attention also keeps two numbers from its last forward
pass, for training logs: how spread its attention is (normalised entropy, 1.0 uniform,
the sign that a fusion has stopped telling the encoders apart) and how open its gates are.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..core.choices import FUSIONS


class CrossAttention(nn.Module):
    """LN(X + CA(q=X, kv=Y)), or LN(X + sigmoid(Linear(H)) * H) with H = CA(...) when gated.

    With `diagnose` set, a forward pass also leaves `entropy` (the mean over heads and real
    query frames of the attention's entropy over the real key frames, divided by the log
    of their number: 1.0 is uniform) and, when gated, `gate_mean` (the mean gate value over
    real frames) as plain floats. They are computed apart from the output, which stays
    exactly what it is without them; off, they cost nothing.
    """

    def __init__(self, dim: int, other_dim: int, heads: int, gated: bool) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(
            dim, heads, kdim=other_dim, vdim=other_dim, batch_first=True
        )
        self.gate = nn.Linear(dim, dim) if gated else None
        self.norm = nn.LayerNorm(dim)
        self.diagnose = False
        self.entropy: float | None = None
        self.gate_mean: float | None = None

    def forward(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        y_pad: torch.Tensor,
        x_pad: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`x_pad` marks padded query frames; by default `y_pad`, as the streams are aligned."""
        h, _ = self.attn(x, y, y, key_padding_mask=y_pad, need_weights=False)
        g = torch.sigmoid(self.gate(h)) if self.gate is not None else None
        if self.diagnose:
            x_pad = y_pad if x_pad is None else x_pad
            # float32 whatever the training precision: entropies near 1 must be told apart
            with torch.no_grad(), torch.autocast(x.device.type, enabled=False):
                self.entropy = self._entropy(x.detach(), y.detach(), x_pad, y_pad)
                if g is not None:
                    real = g.detach()[~x_pad].float()
                    self.gate_mean = float(real.mean()) if real.numel() else None
        if g is not None:
            h = g * h
        return self.norm(x + h)

    def _entropy(
        self, x: torch.Tensor, y: torch.Tensor, x_pad: torch.Tensor, y_pad: torch.Tensor
    ) -> float | None:
        """The attention weights recomputed one utterance at a time on its real frames
        only (what the key padding mask does, without a (B, H, T, T) tensor).
        None when no utterance has a real query and two real keys."""
        attn = self.attn
        heads = attn.num_heads
        if attn._qkv_same_embed_dim:
            wq, wk, _ = attn.in_proj_weight.chunk(3)
        else:
            wq, wk = attn.q_proj_weight, attn.k_proj_weight
        bias = attn.in_proj_bias
        bq, bk = (None, None) if bias is None else bias.float().chunk(3)[:2]
        total, count = x.new_zeros((), dtype=torch.float32), 0
        for xb, yb, qp, kp in zip(x, y, x_pad, y_pad):
            q_in, k_in = xb[~qp].float(), yb[~kp].float()
            nq, nk = q_in.shape[0], k_in.shape[0]
            if nq == 0 or nk < 2:  # one key: no choice to measure
                continue
            q = F.linear(q_in, wq.float(), bq).view(nq, heads, -1).transpose(0, 1)
            k = F.linear(k_in, wk.float(), bk).view(nk, heads, -1).transpose(0, 1)
            logp = torch.log_softmax(q @ k.transpose(1, 2) / math.sqrt(q.shape[-1]), dim=-1)
            entropy = -(logp.exp() * logp).sum(-1)  # (heads, nq)
            total += entropy.sum() / math.log(nk)
            count += entropy.numel()
        return float(total) / count if count else None


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

    def layers(self) -> dict[str, CrossAttention]:
        """The cross-attentions by name ("w_to_m": Whisper queries the second encoder,
        "m_to_w" the reverse); none for concat."""
        named = {"w_to_m": self.w_to_m, "m_to_w": self.m_to_w}
        return {name: layer for name, layer in named.items() if layer is not None}

    @property
    def diagnose(self) -> bool:
        """Whether the cross-attentions keep their entropy and gate mean (see CrossAttention)."""
        return any(layer.diagnose for layer in self.layers().values())

    @diagnose.setter
    def diagnose(self, on: bool) -> None:
        for layer in self.layers().values():
            layer.diagnose = on

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
