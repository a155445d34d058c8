"""What scoring returns: error counts per utterance, per language and pooled."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import numpy as np

from .edit_distance import DEL, INS, SUB
from .normalize import normalize as normalize_texts
from .units import tokens


class _Errors:
    """What every count of errors has: S, D and I, and their total."""

    substitutions: int
    deletions: int
    insertions: int

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    def _per(self, tokens: int) -> float | None:
        return self.errors / tokens if tokens else None


@dataclass(frozen=True)
class ErrorCounts(_Errors):
    """Error counts of a set of utterances: one language, or all of them pooled."""

    language: str | None  # a code; None for the pooled line or an unknown language
    unit: str  # "word", "char", "mixed", or "pooled"
    utterances: int
    ref_tokens: int
    substitutions: int
    deletions: int
    insertions: int

    @property
    def rate(self) -> float | None:
        """Errors per reference token; None where there is no reference token at all."""
        return self._per(self.ref_tokens)

    @property
    def metric(self) -> str:
        if self.unit == "mixed" and self.language is None:
            # words, with CJK and Thai characters counted one by one: a mixed error rate
            return "MER"
        return {"word": "WER", "char": "CER", "mixed": "CER"}.get(self.unit, "CER/WER")

    def to_dict(self) -> dict:
        return {**asdict(self), "errors": self.errors, "rate": self.rate, "metric": self.metric}


@dataclass(frozen=True)
class UtteranceScore(_Errors):
    """One utterance, tokenised as it was scored."""

    id: str
    language: str | None
    unit: str
    reference: list[str]
    hypothesis: list[str] | None  # None: the hypothesis file had no such id
    substitutions: int
    deletions: int
    insertions: int

    @property
    def rate(self) -> float | None:
        return self._per(len(self.reference))


@dataclass(kw_only=True)
class ScoreSummary:
    """What `sbasr score` prints: per-language rows, the pooled row and what did not
    match (`score_summary`)."""

    pooled: ErrorCounts
    languages: list[ErrorCounts]  # one row per language, in the order of their names
    missing: list[str]  # reference ids without a hypothesis (scored as all deletions)
    extra: list[str]  # hypothesis ids without a reference (not scored)
    normalize: str

    def to_dict(self) -> dict:
        return {
            "pooled": self.pooled.to_dict(),
            "languages": [row.to_dict() for row in self.languages],
            "missing_hypotheses": self.missing,
            "extra_hypotheses": self.extra,
            "normalize": self.normalize,
        }


@dataclass(kw_only=True)
class ScoreReport(ScoreSummary):
    """The result of `score`: the summary, and per utterance (in reference order) what was
    scored and how many errors it has.

    The per-utterance fields are parallel lists, one entry per reference utterance, kept
    as the raw texts: 10^5 utterances as token lists would cost more memory and time than
    the scoring itself, so `utterances()` tokenises again only when asked.
    """

    ids: list[str] = field(repr=False)
    utterance_languages: list[str | None] = field(repr=False)  # codes
    units: list[str] = field(repr=False)
    references: list[str] = field(repr=False)
    hypotheses: list[str | None] = field(repr=False)  # None: no hypothesis for that id
    # One row per utterance: substitutions, deletions, insertions, reference tokens
    # (columns SUB, DEL, INS, REF of `sbasr.scoring.edit_distance`). Reports compare
    # equal by their texts, which decide these.
    counts: np.ndarray = field(repr=False, compare=False)

    def __post_init__(self) -> None:
        n = len(self.ids)
        columns = (self.utterance_languages, self.units, self.references, self.hypotheses)
        if any(len(c) != n for c in columns) or self.counts.shape != (n, 4):
            raise ValueError(f"per-utterance fields must all have {n} entries ({n} x 4 counts)")

    def utterances(self) -> Iterator[UtteranceScore]:
        """Every scored utterance, in reference order, with its normalised tokens."""
        rows = zip(self.ids, self.utterance_languages, self.units, self.references, self.hypotheses)
        for (uid, lang, unit, ref, hyp), row in zip(rows, self.counts.tolist()):
            yield UtteranceScore(
                uid,
                lang,
                unit,
                tokens(normalize_texts([ref], [lang], self.normalize)[0], unit),
                None
                if hyp is None
                else tokens(normalize_texts([hyp], [lang], self.normalize)[0], unit),
                row[SUB],
                row[DEL],
                row[INS],
            )
