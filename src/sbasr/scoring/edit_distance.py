"""Edit-distance counts (substitutions, deletions, insertions) and alignments.

The total error count of an utterance is unique, but how it splits into S, D and I is not
when several alignments cost the same ("a b" -> "b c" is 2 S, or 1 D + 1 I). Tools break
those ties differently: jiwer (rapidfuzz's backtrace) and meeteval (Kaldi's rule, through
kaldialign) disagree on some pairs. sbasr follows meeteval, the MLC-SLM challenge's own
tool, exactly, and agrees with jiwer on every total.

Doing that fast: rapidfuzz computes, in C and for all pairs in one call, the distance and
the least and the most substitutions any optimal alignment can have (two weighted
distances). Where those agree the split is forced; only the rest (few, on real pairs) go
through kaldialign, the library meeteval itself calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

SUB, DEL, INS, REF = range(4)


class Ranges(NamedTuple):
    """Per pair: total errors, and the most and least substitutions an optimal alignment
    can have. Where `most == least` the S/D/I split is forced."""

    errors: np.ndarray
    most: np.ndarray
    least: np.ndarray

    def tied(self) -> np.ndarray:
        return np.flatnonzero(self.most != self.least)


def error_ranges(refs: Sequence[str], hyps: Sequence[str], threads: bool = True) -> Ranges:
    """`Ranges` for pairs of encoded strings (one code point per token).

    `threads` lets rapidfuzz use every core; turn it off inside forked workers.
    """
    from rapidfuzz.distance import Levenshtein
    from rapidfuzz.process import cpdist

    n = len(refs)
    if n != len(hyps):
        raise ValueError(f"{n} references but {len(hyps)} hypotheses")
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Ranges(empty, empty, empty)
    workers = -1 if threads else 1
    n_ref = np.fromiter(map(len, refs), dtype=np.int64, count=n)
    n_hyp = np.fromiter(map(len, hyps), dtype=np.int64, count=n)
    # With K above any D + I, weights (K+1, K+1, K) minimise errors first and D + I second,
    # so give the most substitutions; (K, K, K+1) minimise errors, then S: the least.
    k = int((n_ref + n_hyp).max()) + 1

    def weighted(weights: tuple[int, int, int]) -> np.ndarray:
        return cpdist(
            refs,
            hyps,
            scorer=Levenshtein.distance,
            scorer_kwargs={"weights": weights},
            dtype=np.int64,
            workers=workers,
        )

    by_most = weighted((k + 1, k + 1, k))
    by_least = weighted((k, k, k + 1))
    errors = by_most // k
    return Ranges(errors, errors - by_most % k, by_least % k)


def kaldi_counts(ref: Sequence[str], hyp: Sequence[str]) -> tuple[int, int, int]:
    """(S, D, I) by Kaldi's tie-breaking, as meeteval reports them."""
    import kaldialign

    result = kaldialign.edit_distance(ref, hyp)
    return result["sub"], result["del"], result["ins"]


def assemble(
    errors: np.ndarray, subs: np.ndarray, diff: np.ndarray, n_ref: np.ndarray
) -> np.ndarray:
    """Rows (S, D, I, N) from the totals: on every alignment D - I equals the reference
    length minus the hypothesis length, and S + D + I the errors."""
    out = np.empty((len(errors), 4), dtype=np.int64)
    indel = errors - subs
    out[:, SUB] = subs
    out[:, DEL] = (indel + diff) // 2
    out[:, INS] = (indel - diff) // 2
    out[:, REF] = n_ref
    return out


class Aligned(NamedTuple):
    """One column of an alignment: ref or hyp is None for an insertion or a deletion."""

    ref: str | None
    hyp: str | None
    op: str  # "C" correct, "S", "D", "I"


def align(ref: Sequence[str], hyp: Sequence[str]) -> list[Aligned]:
    """The alignment behind the counts (Kaldi's tie-breaking), for people to read."""
    import kaldialign

    eps = "\x00"
    pairs = kaldialign.align(list(ref), list(hyp), eps)
    out = []
    for r, h in pairs:
        if r == eps:
            out.append(Aligned(None, h, "I"))
        elif h == eps:
            out.append(Aligned(r, None, "D"))
        else:
            out.append(Aligned(r, h, "C" if r == h else "S"))
    return out
