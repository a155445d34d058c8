"""Whisper's own 1-best transcripts, for the hypothesis-conditioned Speech-LLM.

That variant (generative error correction with the acoustic embeddings, in the manner of
Whispering-LLaMA) prompts the LLM with what the Whisper model heard, beside the speech, so
that it learns to read the speech and correct the hypothesis rather than to align speech
with text from nothing: far less to learn from an hour of data. It is a variant beside
the paper's pure Speech-LLM, not the paper's system.

Training hypotheses are decoded once, greedily, by sbasr's own Whisper engine (the same
call the Speech-LLM engine makes at transcription) and cached by audio content, model
and language, so that a second stage or run decodes nothing again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..io.audio import SAMPLE_RATE
from ..io.files import write_atomic
from .options import WhisperDecodeOptions
from .segments import Span

# Bumped when `whisper_hypotheses` decodes differently: cached hypotheses of the old way
# are then decoded again, so that training and transcription see the same first pass.
HYPOTHESES_VERSION = "greedy-3"


def whisper_hypotheses(
    engine,
    audio: Sequence[np.ndarray],
    languages: Sequence[str | None],
) -> list[str]:
    """The Whisper engine's greedy transcript of each utterance, without timestamps:
    what `sbasr transcribe --engine whisper --beam-size 1 --temperature-increment 0`
    writes for it as an oracle segment, so that the LLM corrects the text a user of the
    Whisper engine gets, no worse a first pass.

    No temperature fallback: its sampling makes the text of a clip Whisper hesitates on
    differ from run to run (even with CTranslate2's seed set), and a hypothesis must be
    the same in training, in the cache and at transcription. One clip at a time, by
    the engine's sequential path (its default, batch size 1): faster-whisper's batched
    pipeline computes features per window and, on such clips, writes other words."""
    out = []
    for clip, language in zip(audio, languages):
        clip = np.asarray(clip, dtype=np.float32)
        options = WhisperDecodeOptions(
            language=language,
            beam_size=1,
            batch_size=1,
            temperature_increment=0.0,
            timestamps=False,
        )
        span = Span(0.0, (len(clip) + 0.5) / SAMPLE_RATE)  # every sample of the clip
        texts = (d.text.strip() for d in engine.decode(clip, [span], options))
        out.append(" ".join(t for t in texts if t))
    return out


class ContentCache:
    """Transcripts on disk, one JSON Lines file per Whisper model (and kind), keyed by the
    audio's content and the language: a changed file or model is simply decoded again.
    A subclass names its file, the row's field and how a stored value is read back."""

    field = "text"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, object] = {}
        if self.path.is_file():
            for line in self.path.read_text("utf-8").splitlines():
                try:
                    row = json.loads(line)
                    self.entries[row["key"]] = self.read_value(row[self.field])
                except (ValueError, KeyError, TypeError):
                    continue  # a torn last line from a killed run: decode that one again

    @staticmethod
    def read_value(value):
        """A stored value as the cache hands it out."""
        return value

    @staticmethod
    def key(audio: np.ndarray, language: str | None) -> str:
        digest = hashlib.blake2b(np.ascontiguousarray(audio, np.float32).tobytes(), digest_size=16)
        return f"{digest.hexdigest()}-{language or ''}"

    def save(self) -> None:
        rows = "".join(
            json.dumps({"key": k, self.field: v}, ensure_ascii=False) + "\n"
            for k, v in self.entries.items()
        )
        with contextlib.suppress(OSError):  # a read-only cache costs decoding again next time
            write_atomic(self.path, rows)

    def fill(
        self,
        items: Sequence[tuple[Callable[[], np.ndarray], str | None]],
        decode: Callable[[list[np.ndarray], list[str | None]], list],
        what: str,
        how: str = "",
        echo=print,
        chunk: int = 64,
    ) -> list:
        """The cached value of each of `items` ((load audio, language) pairs), decoding
        those the cache lacks with `decode`, `chunk` at a time and saved after each, so
        that an interrupted run keeps what it decoded; `what` names them in messages, and
        `how` says how the missing ones are decoded."""
        keys, missing = [], []
        for load, language in items:
            audio = load()
            key = self.key(audio, language)
            keys.append(key)
            if key not in self.entries:
                missing.append((key, audio, language))
        if missing:
            echo(f"{what}: decoding {len(missing):,} utterances{how}")
            for start in range(0, len(missing), chunk):
                part = missing[start : start + chunk]
                values = decode([a for _, a, _ in part], [lang for *_, lang in part])
                for (key, _, _), value in zip(part, values):
                    self.entries[key] = value
                self.save()
        else:
            echo(f"{what}: all {len(items):,} from {self.path}")
        return [self.entries[k] for k in keys]


class HypothesisCache(ContentCache):
    """1-best hypotheses on disk, one JSON Lines file per Whisper model."""

    def __init__(self, model: str, directory: Path | None = None) -> None:
        from ..whisper.models import cache_dir

        root = directory or cache_dir() / "hypotheses"
        super().__init__(root / f"{_model_fingerprint(model)}.jsonl")


def cached_hypotheses(
    model: str,
    items: Sequence[tuple[Callable[[], np.ndarray], str | None]],
    make_engine: Callable[[], object],
    echo=print,
    directory: Path | None = None,
    chunk: int = 64,
) -> list[str]:
    """Hypotheses for `items` ((load audio, language) pairs), decoding only those the
    cache lacks; the engine is made only when something must be decoded."""
    engine = None

    def decode(audio: list[np.ndarray], languages: list[str | None]) -> list[str]:
        nonlocal engine
        if engine is None:
            engine = make_engine()
        return whisper_hypotheses(engine, audio, languages)

    cache = HypothesisCache(model, directory)
    how = f" with Whisper {model} once"
    return cache.fill(items, decode, "hypotheses", how, echo, chunk)


def _model_fingerprint(model: str) -> str:
    """The model's name, and for a local model its files' sizes and times: a retrained
    model in the same place gets new hypotheses."""
    parts = [model, HYPOTHESES_VERSION]
    path = Path(model).expanduser()
    if path.is_dir():
        for f in sorted(path.iterdir()):
            if f.is_file():
                st = f.stat()
                parts.append(f"{f.name}:{st.st_size}:{int(st.st_mtime)}")
    digest = hashlib.blake2b("|".join(parts).encode(), digest_size=8).hexdigest()
    name = "".join(c if c.isalnum() or c in "._-" else "_" for c in os.path.basename(model))
    return f"{name or 'model'}-{digest}"
