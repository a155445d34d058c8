"""Whisper's N best transcripts of a clip with their log-probabilities, and the
log-probability Whisper gives any other text of it, from CTranslate2 directly.

faster-whisper's `transcribe` keeps only the best hypothesis of its beam; CTranslate2's
`generate` returns up to `num_hypotheses` of them with scores. Both work on the encoder
output of the clip's 30 s window (what faster-whisper's sequential decoding encodes), so
that the caller can encode once for the N-best list and the scoring of other texts.
"""

from __future__ import annotations

import numpy as np

from ..core.constants import WHISPER_MAX_POSITIONS as MAX_POSITIONS


def tokenizer(model, language: str | None):
    """faster-whisper's tokenizer of `model` (a faster_whisper.WhisperModel) for
    transcribing `language` (English for an English-only model)."""
    from faster_whisper.tokenizer import Tokenizer

    multilingual = model.model.is_multilingual
    return Tokenizer(
        model.hf_tokenizer,
        multilingual,
        task="transcribe",
        language=(language or "en") if multilingual else "en",
    )


def nbest(model, encoded, language: str | None, n: int) -> list[list[tuple[str, float]]]:
    """Up to `n` hypotheses per encoded window, best first, by beam search of width `n`
    (no timestamps, no temperature fallback).

    Args:
        model: a faster_whisper.WhisperModel.
        encoded: the windows' encoder output (a ctranslate2.StorageView, one row each).
        language: the language code all rows are decoded in.
        n: hypotheses per row (and the beam width), at least 1.

    Returns:
        Per row, (text, log-probability of its tokens and end) pairs, best first.
    """
    from faster_whisper.transcribe import get_suppressed_tokens

    tok = tokenizer(model, language)
    start = [*tok.sot_sequence, tok.no_timestamps]
    rows = encoded.shape[0]
    results = model.model.generate(
        encoded,
        [start] * rows,
        beam_size=max(1, n),
        num_hypotheses=max(1, n),
        return_scores=True,
        max_length=MAX_POSITIONS,
        suppress_blank=True,
        suppress_tokens=list(get_suppressed_tokens(tok, [-1])),
    )
    out = []
    for result in results:
        seen: dict[str, float] = {}
        for ids, score in zip(result.sequences_ids, result.scores):
            # the score is the log-probability over the length (length penalty 1)
            text = tok.decode(ids).strip()
            seen.setdefault(text, float(score) * max(1, len(ids)))
        out.append(list(seen.items()))
    return out


def forced_log_probs(model, encoded, texts: list[str], language: str | None) -> list[float | None]:
    """Whisper's log-probability of each text (its tokens and its end) given its row's
    window, in the distribution beam search draws from: timestamps and the suppressed
    tokens masked out, so that a text of the N-best list gets its own score back. None
    for a text too long for Whisper's window.

    Args:
        model: a faster_whisper.WhisperModel.
        encoded: one encoder output row per text (a ctranslate2.StorageView).
        texts: the texts, one per row.
        language: the language code of every row.
    """
    from faster_whisper.transcribe import get_suppressed_tokens

    tok = tokenizer(model, language)
    start = [*tok.sot_sequence, tok.no_timestamps]
    masked = [*get_suppressed_tokens(tok, [-1]), tok.no_timestamps]
    tokens = [tok.encode(" " + t.strip()) if t.strip() else [] for t in texts]
    results = model.model.generate(
        encoded,
        [start + t for t in tokens],
        beam_size=1,
        max_length=MAX_POSITIONS,
        return_logits_vocab=True,
        suppress_blank=False,
        suppress_tokens=[],
    )
    out: list[float | None] = []
    for target, result in zip(tokens, results):
        wanted = [*target, tok.eot]
        steps = result.logits[0]  # one logit vector per step, the forced ones first
        if len(start) + len(wanted) > MAX_POSITIONS or len(steps) < len(wanted):
            out.append(None)
            continue
        total = 0.0
        for step, token in zip(steps, wanted):
            logits = np.array(_on_host(step), dtype=np.float64)
            logits[tok.timestamp_begin :] = -np.inf
            logits[masked] = -np.inf
            top = logits.max()
            total += logits[token] - top - np.log(np.exp(logits - top).sum())
        out.append(float(total))
    return out


def _on_host(view):
    """A CTranslate2 array readable by numpy: logits computed on a GPU stay there."""
    import ctranslate2

    if getattr(view, "device", "cpu") != "cpu":
        return view.to_device(ctranslate2.Device.cpu)
    return view
