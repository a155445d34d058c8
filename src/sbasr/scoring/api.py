"""Scoring hypotheses against references: per-language and pooled CER/WER.

The pooled figure is what MLC-SLM reports: total errors over total reference tokens across
all utterances and languages (characters for the languages written without spaces, words
for the rest), not a mean of per-language rates.
"""

from __future__ import annotations

import gc
import os
import stat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from itertools import pairwise

import numpy as np

from ..core.errors import SbasrError
from ..io import languages as lang_mod
from .by_language import language_code, language_order, per_language, utterance_languages
from .counts import count_texts
from .file_parts import FileParts, cut_alike
from .normalize import NORMALIZERS
from .normalize import normalize as normalize_texts
from .options import ScoreOptions, resolve_jobs
from .parallel import fork_map
from .results import ErrorCounts, ScoreReport, ScoreSummary
from .transcripts import Transcripts, keyed_rows, read_transcripts
from .units import UNITS

TranscriptSource = str | os.PathLike[str] | Transcripts | Mapping[str, str]
_DEFAULT = ScoreOptions()  # the keyword defaults below, each written once there


def score(
    hypothesis: TranscriptSource,
    reference: TranscriptSource,
    *,
    language: str | None = _DEFAULT.language,
    language_from_key: bool = _DEFAULT.language_from_key,
    normalize: str = _DEFAULT.normalize,
    unit: str | None = _DEFAULT.unit,
    by_line: bool = _DEFAULT.by_line,
    strict: bool = _DEFAULT.strict,
    jobs: int = _DEFAULT.jobs,
) -> ScoreReport:
    """Score `hypothesis` against `reference`, matching utterances by id.

    An utterance's language comes from `language`, else the manifest, else (with
    `language_from_key`) the key's first field; it decides the normaliser's rules and the
    unit. The defaults are `ScoreOptions`' (`sbasr.scoring.options`), as for `sbasr score`.

    Args:
        hypothesis: A file (keyed text, JSON Lines, or plain lines with `by_line`), a
            `Transcripts`, or a mapping id -> text.
        reference: The same kinds as `hypothesis`.
        language: The language of every utterance, as a code or an English name.
        language_from_key: Take the language from the key's first field.
        normalize: One of `NORMALIZERS`.
        unit: word, char or mixed for every utterance; None: by language.
        by_line: Match plain-text lines by number instead of by id.
        strict: Fail when an id is in one input but not the other.
        jobs: Processes for large sets (forked); 0: see `resolve_jobs`.

    Returns:
        The pooled and per-language counts, with every utterance's alignment inputs.

    Raises:
        SbasrError: An input that cannot be read, a mismatch under `strict`, no id in
            common, or an unknown normaliser or unit.
    """
    _check_names(normalize, unit)
    jobs = resolve_jobs(jobs)
    with gc_paused():
        return _score(
            hypothesis,
            reference,
            language,
            language_from_key,
            normalize,
            unit,
            by_line,
            strict,
            jobs,
        )


def score_summary(
    hypothesis: TranscriptSource,
    reference: TranscriptSource,
    *,
    language: str | None = _DEFAULT.language,
    language_from_key: bool = _DEFAULT.language_from_key,
    normalize: str = _DEFAULT.normalize,
    unit: str | None = _DEFAULT.unit,
    by_line: bool = _DEFAULT.by_line,
    strict: bool = _DEFAULT.strict,
    jobs: int = _DEFAULT.jobs,
) -> ScoreSummary:
    """The counts `score` gives, without the per-utterance detail: what `sbasr score`
    prints.

    Two keyed files that list the same ids in the same order, large enough for several
    `jobs`, are scored part by part, each process reading only its own lines of each
    (`file_parts`); anything else is scored as `score` does it.

    Args:
        hypothesis: As for `score`.
        reference: As for `score`.
        language: As for `score`.
        language_from_key: As for `score`.
        normalize: As for `score`.
        unit: As for `score`.
        by_line: As for `score`.
        strict: As for `score`.
        jobs: As for `score`.

    Returns:
        The pooled and per-language counts.

    Raises:
        SbasrError: As for `score`.
    """
    _check_names(normalize, unit)
    # A pipe (`<(...)`, /dev/stdin) can be read only once: it is read here, whole.
    hypothesis, reference = _read_pipe(hypothesis, by_line), _read_pipe(reference, by_line)
    jobs = resolve_jobs(jobs)
    with gc_paused():
        if not by_line:
            summary = _summary_in_parts(
                hypothesis, reference, language, language_from_key, normalize, unit, jobs
            )
            if summary is not None:
                return summary
        return _score(
            hypothesis,
            reference,
            language,
            language_from_key,
            normalize,
            unit,
            by_line,
            strict,
            jobs,
        )


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off for a block, then restored, even when the
    block raises. Scoring makes millions of short strings and lists, none in a cycle: the
    collector would only walk them again and again. It is process-wide, so other threads
    go without it for that while."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _score(
    hypothesis: TranscriptSource,
    reference: TranscriptSource,
    language: str | None,
    language_from_key: bool,
    normalize: str,
    unit: str | None,
    by_line: bool,
    strict: bool,
    jobs: int,
) -> ScoreReport:
    hyp = _load(hypothesis, by_line)
    ref = _load(reference, by_line)
    if by_line and len(hyp.ids) != len(ref.ids):
        raise SbasrError(
            f"{hyp.path}: {len(hyp.ids)} lines, but {ref.path} has {len(ref.ids)}; "
            "--by-line needs one line per utterance in both"
        )

    ids = ref.ids
    if hyp.ids == ids:  # same order: the common case, and a C-speed comparison
        hyp_texts: list[str | None] = list(hyp.texts)
    else:
        hyp_by_id = dict(zip(hyp.ids, hyp.texts))
        hyp_texts = [hyp_by_id.get(uid) for uid in ids]
    missing = [uid for uid, text in zip(ids, hyp_texts) if text is None]
    ref_ids = set(ids)
    extra = [uid for uid in hyp.ids if uid not in ref_ids]
    if strict and (missing or extra):
        raise SbasrError(_mismatch_message(hyp.path, ref.path, missing, extra))
    if len(missing) == len(ids):
        # Nothing matched: the files use other ids (or one or both are empty). Scoring it
        # would report a 100% error rate (or none at all) that is really a mistake in the
        # inputs.
        raise SbasrError(_no_match_message(hyp, ref))

    langs = utterance_languages(ref, hyp, language, language_from_key)
    unit_of = _units_of(langs, unit)
    units = [unit_of[code] for code in langs]

    hyp_or_empty = [t or "" for t in hyp_texts]
    chunks = _chunks(ref.texts, jobs if len(ids) >= _MIN_PER_JOB * 2 else 1)
    job = partial(_count_chunk, ref.texts, hyp_or_empty, langs, units, normalize, len(chunks) == 1)
    try:
        counts = np.concatenate(fork_map(job, chunks))
    except OverflowError:
        raise SbasrError(f"{ref.path}: over 1.1 million distinct tokens; split the set") from None

    rows = per_language(langs, unit_of, counts)
    return ScoreReport(
        pooled=_pooled(rows),
        languages=rows,
        missing=missing,
        extra=extra,
        normalize=normalize,
        ids=ids,
        utterance_languages=langs,
        units=units,
        references=ref.texts,
        hypotheses=hyp_texts,
        counts=counts,
    )


_MIN_PER_JOB = 20_000  # below this a fork costs more than it saves
# Past this many utterances even one job scores two keyed files in blocks, for memory.
_MIN_STREAMED = 1_000_000


def _check_names(normalize: str, unit: str | None) -> None:
    if normalize not in NORMALIZERS:
        raise SbasrError(f"unknown normaliser {normalize!r}; use {'|'.join(NORMALIZERS)}")
    if unit is not None and unit not in UNITS:
        raise SbasrError(f"unknown unit {unit!r}; use {'|'.join(UNITS)}")


def _units_of(langs: list[str | None], unit: str | None) -> dict[str | None, str]:
    return {code: unit or lang_mod.default_unit(code) for code in set(langs)}


def _pooled(rows: list[ErrorCounts], language: str | None = None) -> ErrorCounts:
    """Rows as one, under `language` (None: all languages pooled): total errors over
    total reference tokens, in the rows' unit where they share one."""
    units = {row.unit for row in rows}
    return ErrorCounts(
        language,
        units.pop() if len(units) == 1 else "pooled",
        sum(r.utterances for r in rows),
        sum(r.ref_tokens for r in rows),
        sum(r.substitutions for r in rows),
        sum(r.deletions for r in rows),
        sum(r.insertions for r in rows),
    )


@dataclass(frozen=True)
class _PartCounts:
    rows: list[ErrorCounts]  # per language
    id_hashes: np.ndarray  # to find an id repeated in another part


def _summary_in_parts(
    hypothesis: TranscriptSource,
    reference: TranscriptSource,
    language: str | None,
    language_from_key: bool,
    normalize: str,
    unit: str | None,
    jobs: int,
) -> ScoreSummary | None:
    """The summary of two keyed files scored part by part, or None where they cannot be
    (see `file_parts`): other ids or order, an id twice, JSON Lines, bad UTF-8 ..."""
    if not all(isinstance(s, (str, os.PathLike)) for s in (hypothesis, reference)):
        return None
    code = language_code(language) if language else None
    # With one job, only a set too large to hold is read in blocks, in this process.
    least = _MIN_PER_JOB if jobs > 1 else _MIN_STREAMED
    parts = cut_alike(hypothesis, reference, max(1, jobs), least)
    if parts is None:
        return None
    job = partial(_count_part, parts, code, language_from_key, normalize, unit)
    try:
        results = fork_map(job, parts.cuts)
    except OverflowError:
        return None  # the ordinary path says so, naming the file
    if any(r is None for r in results):
        return None
    hashes = np.concatenate([r.id_hashes for r in results])  # type: ignore[union-attr]
    if len(np.unique(hashes)) != len(hashes):  # an id in two parts (or a hash collision)
        return None
    by_language: dict[str | None, list[ErrorCounts]] = {}
    for result in results:
        for row in result.rows:  # type: ignore[union-attr]
            by_language.setdefault(row.language, []).append(row)
    rows = [_pooled(by_language[c], c) for c in language_order(by_language)]
    return ScoreSummary(
        pooled=_pooled(rows), languages=rows, missing=[], extra=[], normalize=normalize
    )


def _count_part(
    parts: FileParts,
    code: str | None,
    language_from_key: bool,
    normalize: str,
    unit: str | None,
    cut: tuple[slice, slice],
) -> _PartCounts | None:
    """One part of both files read, checked and counted, a block of lines at a time (the
    memory of one block, whatever the files' size): the work of one process. None where
    the part's two sides do not list the same ids in the same order once each."""
    rows: list[ErrorCounts] = []
    hashes: list[np.ndarray] = []
    try:
        for hyp_text, ref_text in parts.blocks(cut):
            hyp_ids, hyp_texts = keyed_rows(hyp_text)
            ids, ref_texts = keyed_rows(ref_text)
            if hyp_ids != ids:
                return None
            if not ids:
                continue
            # as `_languages` finds them for keyed files: the flag's, else the key's
            if code or not language_from_key:
                langs: list[str | None] = [code] * len(ids)
            else:
                langs = [lang_mod.from_key(uid) for uid in ids]
            unit_of = _units_of(langs, unit)
            units = [unit_of[c] for c in langs]
            counts = _count_chunk(
                ref_texts, hyp_texts, langs, units, normalize, False, range(len(ids))
            )
            rows += per_language(langs, unit_of, counts)
            hashes.append(np.fromiter(map(hash, ids), dtype=np.int64, count=len(ids)))
    except UnicodeDecodeError:
        return None
    if not hashes:
        return None
    # an id twice in the part is found with those of the other parts, by the caller
    by_language: dict[str | None, list[ErrorCounts]] = {}
    for row in rows:
        by_language.setdefault(row.language, []).append(row)
    merged = [_pooled(group, language) for language, group in by_language.items()]
    return _PartCounts(merged, np.concatenate(hashes))


def _chunks(texts: list[str], jobs: int) -> list[range]:
    """Contiguous index ranges of about equal text volume, one per job."""
    n = len(texts)
    if jobs <= 1 or n == 0:
        return [range(n)]
    sizes = np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=n))
    cuts = np.searchsorted(sizes, sizes[-1] * np.arange(1, jobs) / jobs)
    bounds = [0, *(int(c) for c in cuts), n]
    return [range(a, b) for a, b in pairwise(bounds) if b > a]


def _count_chunk(
    refs: list[str],
    hyps: list[str],
    langs: list[str | None],
    units: list[str],
    normalize: str,
    threads: bool,
    where: range,
) -> np.ndarray:
    """Normalise and count utterances `where`: the work of one process."""
    sl = slice(where.start, where.stop)
    ref_norm = normalize_texts(refs[sl], langs[sl], normalize)
    hyp_norm = normalize_texts(hyps[sl], langs[sl], normalize)
    return count_texts(ref_norm, hyp_norm, units[sl], threads)


def _read_pipe(source: TranscriptSource, by_line: bool) -> TranscriptSource:
    """`source` read into `Transcripts` where it is a path to anything but a regular file
    (a pipe, a terminal), which a second reader would find empty; else `source` as is."""
    if not isinstance(source, (str, os.PathLike)):
        return source
    try:
        regular = stat.S_ISREG(os.stat(source).st_mode)
    except (OSError, ValueError):
        return source  # the reader says what is wrong
    return source if regular else _load(source, by_line)


def _load(source: TranscriptSource, by_line: bool) -> Transcripts:
    if isinstance(source, Transcripts):
        return source
    if isinstance(source, Mapping):
        return Transcripts("<mapping>", [str(k) for k in source], [str(v) for v in source.values()])
    return read_transcripts(source, by_line=by_line)


def _mismatch_message(hyp_path: str, ref_path: str, missing: list[str], extra: list[str]) -> str:
    parts = []
    if missing:
        parts.append(f"{len(missing)} reference ids have no hypothesis (first: {missing[0]!r})")
    if extra:
        parts.append(f"{len(extra)} hypothesis ids are not in {ref_path} (first: {extra[0]!r})")
    return f"{hyp_path}: " + "; ".join(parts)


def _no_match_message(hyp: Transcripts, ref: Transcripts) -> str:
    def first(t: Transcripts) -> str:
        return f"first: {t.ids[0]!r}" if t.ids else "empty"

    return (
        f"{hyp.path}: no hypothesis id matches a reference id in {ref.path} "
        f"({len(hyp.ids)} hypotheses, {first(hyp)}; {len(ref.ids)} references, {first(ref)}); "
        "both files must name utterances by the same ids"
    )
