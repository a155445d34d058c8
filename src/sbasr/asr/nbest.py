"""Whisper's N-best first pass, for rescoring and for correction over the list: up to N
transcripts of each utterance with their log-probabilities, decoded once by the Whisper
engine (`WhisperEngine.nbest`, beam search of width N) and cached by audio content,
model, language and N, like the 1-best hypotheses (`asr.hypotheses`), so that
training, the dev set's choice of weight and a second run decode nothing again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .hypotheses import ContentCache, _model_fingerprint

# Bumped when the N-best list is decoded differently: cached lists are decoded again.
NBEST_VERSION = "beam-1"

NBest = list[tuple[str, float | None]]  # (text, Whisper's log-probability), best first


class NBestCache(ContentCache):
    """N-best lists on disk, one JSON Lines file per Whisper model and N, keyed by the
    audio's content and the language."""

    field = "nbest"

    def __init__(self, model: str, n: int, directory: Path | None = None) -> None:
        from ..whisper.models import cache_dir

        root = directory or cache_dir() / "nbest"
        super().__init__(root / f"{_model_fingerprint(model)}-{NBEST_VERSION}-n{n}.jsonl")

    @staticmethod
    def read_value(value) -> NBest:
        return [(str(t), s) for t, s in value]


def whisper_nbest(
    engine, audio: Sequence[np.ndarray], languages: Sequence[str | None], n: int
) -> list[NBest]:
    """Each utterance's N-best list from `engine` (a WhisperEngine), best first; a clip
    over Whisper's window has its 1-best transcript alone, without a score."""
    out: list[NBest | None] = [None] * len(audio)
    for language in dict.fromkeys(languages):
        where = [i for i, lang in enumerate(languages) if lang == language]
        clips = [np.asarray(audio[i], dtype=np.float32) for i in where]
        for i, hyps in zip(where, engine.nbest(clips, language, n)):
            out[i] = hyps
    long = [i for i, hyps in enumerate(out) if not hyps]
    if long:
        from .hypotheses import whisper_hypotheses

        texts = whisper_hypotheses(engine, [audio[i] for i in long], [languages[i] for i in long])
        for i, text in zip(long, texts):
            out[i] = [(text, None)]
    return [list(hyps or []) for hyps in out]


def cached_nbest(
    model: str,
    items: Sequence[tuple[Callable[[], np.ndarray], str | None]],
    make_engine: Callable[[], object],
    n: int,
    echo=print,
    directory: Path | None = None,
    chunk: int = 64,
) -> list[NBest]:
    """N-best lists for `items` ((load audio, language) pairs), decoding only those the
    cache lacks; the engine is made only when something must be decoded.

    Args:
        model: the Whisper model's name or directory (the cache's key).
        items: how to load each utterance, and its language.
        make_engine: makes the Whisper engine, once, if anything is missing.
        n: hypotheses per utterance.
        echo: where to say what was decoded or reused.
        directory: the cache's directory (default: the user cache).
        chunk: utterances decoded between saves of the cache.

    Returns:
        One N-best list per item, best first.
    """
    engine = None

    def decode(audio: list[np.ndarray], languages: list[str | None]) -> list[NBest]:
        nonlocal engine
        if engine is None:
            engine = make_engine()
        return whisper_nbest(engine, audio, languages, n)

    cache = NBestCache(model, n, directory)
    how = f" with Whisper {model} once (N={n})"
    return cache.fill(items, decode, "N-best", how, echo, chunk)


def nbest_prompt_text(hyps: NBest, limit: int) -> str:
    """The N-best list as the correction prompt carries it (HyPoradise style): the first
    `limit` distinct transcripts, numbered, one per line; the 1-best alone as it is."""
    texts = [t for t, _ in hyps[: max(1, limit)]]
    if len(texts) <= 1:
        return texts[0] if texts else ""
    return "\n" + "\n".join(f"{k}. {t}" for k, t in enumerate(texts, 1))


def nbest_hypotheses(
    engine, clips: Sequence[np.ndarray], language: str | None, n: int, limit: int | None = None
) -> tuple[dict[int, str], dict[int, str]]:
    """For correction over the N-best list: each clip's 1-best transcript (what the
    correction check compares with) and its prompt text (`nbest_prompt_text` of the first
    `limit`, default `n`), by clip index."""
    lists = whisper_nbest(engine, clips, [language] * len(clips), n)
    first = {i: hyps[0][0] if hyps else "" for i, hyps in enumerate(lists)}
    prompts = {i: nbest_prompt_text(hyps, limit or n) for i, hyps in enumerate(lists)}
    return first, prompts
