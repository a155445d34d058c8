"""Training and evaluation data: JSON Lines manifests, MLC-SLM directories and Kaldi data
directories, read into one list of examples and checked once before training.

Audio is decoded and resampled to 16 kHz on the fly, one segment at a time; a row whose
audio cannot be read is skipped and counted, it never stops an epoch.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..core.constants import WINDOW_SECONDS as MAX_SPAN
from ..io import languages
from ..io.audio import load_range
from ..io.manifests import Utterance, read_utterances

# Training reads the rows that transcription and scoring read, into the same type: an
# utterance has one id and one language code whichever command meets it.
Example = Utterance


@dataclass
class DataReport:
    """What `check_examples` found; bad rows are dropped, never trained on."""

    total: int = 0
    kept: int = 0
    missing_audio: list[str] = field(default_factory=list)
    unreadable_audio: list[str] = field(default_factory=list)
    empty_text: list[str] = field(default_factory=list)
    too_long: list[str] = field(default_factory=list)
    unknown_language: list[str] = field(default_factory=list)
    no_language: list[str] = field(default_factory=list)
    seconds: float = 0.0
    languages: Counter = field(default_factory=Counter)
    # where the first skipped row of each kind is (file:line, or its id), by list name
    first: dict[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        langs = ", ".join(f"{lang or '?'} {n:,}" for lang, n in self.languages.most_common())
        out = [
            f"{self.kept:,} of {self.total:,} examples kept, {self.seconds / 3600:.2f} h; {langs}"
        ]
        for name, label in (
            ("missing_audio", "with missing audio"),
            ("unreadable_audio", "with unreadable audio"),
            ("empty_text", "with empty text"),
            ("too_long", f"over {MAX_SPAN:.0f} s"),
            ("unknown_language", "with an unknown language"),
            ("no_language", "without a language (the model is prompted with one)"),
        ):
            ids = getattr(self, name)
            if ids:
                rows = "row" if len(ids) == 1 else "rows"
                first = self.first.get(name, ids[0])
                out.append(f"skipped {len(ids):,} {rows} {label}; first: {first}")
        return out


def read_examples(source: str | os.PathLike[str]) -> list[Example]:
    """Examples from a manifest (.jsonl), a Kaldi data directory (has wav.scp) or an
    MLC-SLM directory (recordings with `.txt` segment files); see `sbasr.io.manifests`."""
    return read_utterances(source)


def row_locator(source: str | os.PathLike[str]) -> Callable[[int, Example], str]:
    """Where example `index` of `read_examples(source)` comes from, for messages: the
    manifest's `file:line` (one example per non-blank line), else the utterance's id."""
    path = Path(source)
    numbers: list[int] = []

    def locate(index: int, ex: Example) -> str:
        if path.is_file():
            if not numbers:  # read only when a row is reported
                text = path.read_text("utf-8-sig", errors="replace")
                numbers.extend(n for n, line in enumerate(text.splitlines(), 1) if line.strip())
            if index < len(numbers):
                return f"{source}:{numbers[index]}"
        return f"{ex.id} in {source}"

    return locate


def check_examples(
    examples: list[Example],
    need_language: bool = False,
    locate: Callable[[int, Example], str] | None = None,
) -> tuple[list[Example], DataReport]:
    """Drop what cannot be trained on, once, before training: missing or unreadable audio,
    empty text, segments over 30 s, unknown languages, and no language where the model is
    prompted with one (`need_language`). `locate` names a row for the report."""
    report = DataReport(total=len(examples))
    durations: dict[str, float | None] = {}
    kept = []
    for index, ex in enumerate(examples):
        if ex.audio not in durations:
            durations[ex.audio] = _probe(ex.audio)
        total = durations[ex.audio]
        if not ex.audio or not Path(ex.audio).exists():
            skipped = "missing_audio"
        elif total is None:
            skipped = "unreadable_audio"
        elif not ex.text.strip():
            skipped = "empty_text"
        elif (ex.duration if ex.duration is not None else total) > MAX_SPAN:
            skipped = "too_long"
        elif ex.language is not None and ex.language not in languages.WHISPER_CODES:
            skipped = "unknown_language"
        elif ex.language is None and need_language:
            skipped = "no_language"
        else:
            # whole files get their probed length, so that batches can be cut by seconds
            kept.append(ex if ex.duration is not None else replace(ex, start=0.0, end=total))
            report.seconds += ex.duration if ex.duration is not None else total
            report.languages[ex.language] += 1
            continue
        getattr(report, skipped).append(ex.id)
        if skipped not in report.first:
            where = locate(index, ex) if locate else ex.id
            shown = f" ({ex.language})" if skipped == "unknown_language" else ""
            report.first[skipped] = where + shown
    report.kept = len(kept)
    return kept, report


def load_example_audio(ex: Example) -> np.ndarray:
    """The example's samples at 16 kHz, mono."""
    return load_range(ex.audio, ex.start, ex.end)


def _probe(path: str) -> float | None:
    """The duration of an audio file from its header, or None if it cannot be opened."""
    if not path or not Path(path).exists():
        return None
    try:
        import av

        with av.open(path) as container:
            if not container.streams.audio:
                return None
            if container.duration:
                return container.duration / 1_000_000
            stream = container.streams.audio[0]
            return float(stream.duration * stream.time_base) if stream.duration else None
    except Exception:  # any failure to open means unreadable
        return None


def error_rates(examples: list[Example], hypotheses) -> dict[str, float]:
    """The dev set scored by sbasr, as the Trainer logs it: {"wer": pooled CER/WER,
    "wer_<language>": ...}; `hypotheses` are Transcripts keyed by the examples' ids."""
    from ..scoring.api import score
    from ..scoring.transcripts import Transcripts

    refs = Transcripts(
        "dev",
        [ex.id for ex in examples],
        [ex.text for ex in examples],
        [ex.language for ex in examples],
    )
    report = score(hypotheses, refs)
    rates = {"wer": report.pooled.rate or 0.0}
    for row in report.languages:
        rates[f"wer_{row.language or 'unknown'}"] = row.rate or 0.0
    return rates
