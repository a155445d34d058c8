"""The language of each scored utterance, and counts summed per language."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..core.errors import SbasrError
from ..io import languages as lang_mod
from .edit_distance import DEL, INS, REF, SUB
from .results import ErrorCounts
from .transcripts import Transcripts


def utterance_languages(
    ref: Transcripts, hyp: Transcripts, language: str | None, from_key: bool
) -> list[str | None]:
    """Each reference utterance's language code: `language` for all, else the reference's
    own, the hypothesis's, then the key's (`from_key`); None where none says.

    Raises:
        SbasrError: `language` is not a known language.
    """
    n = len(ref.ids)
    if language:
        return [language_code(language)] * n
    cache: dict[str, str | None] = {}

    def resolve(value: str) -> str | None:
        if value not in cache:
            cache[value] = lang_mod.to_code(value)
        return cache[value]

    langs: list[str | None] = [None] * n
    if ref.languages:
        langs = [resolve(v) if v else None for v in ref.languages]
    if hyp.languages and None in langs:
        by_id = dict(zip(hyp.ids, hyp.languages))
        langs = [
            code or (resolve(by_id[uid]) if by_id.get(uid) else None)
            for uid, code in zip(ref.ids, langs)
        ]
    if from_key and None in langs:
        langs = [code or lang_mod.from_key(uid) for uid, code in zip(ref.ids, langs)]
    return langs


def language_code(language: str) -> str:
    """The code of `language` (a code or a name).

    Raises:
        SbasrError: The language is unknown.
    """
    code = lang_mod.to_code(language)
    if code is None:
        raise SbasrError(f"unknown language {language!r}; give a code such as en or ja")
    return code


def language_order(codes: Iterable[str | None]) -> list[str | None]:
    """The report's order of language rows: by name, unknown last."""
    return sorted(codes, key=lambda c: (c is None, lang_mod.name(c)))


def per_language(
    langs: list[str | None], unit_of: dict[str | None, str], counts: np.ndarray
) -> list[ErrorCounts]:
    """Per-utterance counts (rows of ref, sub, del, ins) summed per language, in report order."""
    order = language_order(unit_of)
    index = {code: i for i, code in enumerate(order)}
    group = np.fromiter((index[c] for c in langs), dtype=np.int64, count=len(langs))
    sums = np.zeros((len(order), 4), dtype=np.int64)
    np.add.at(sums, group, counts)
    utts = np.bincount(group, minlength=len(order))
    return [
        ErrorCounts(
            code,
            unit_of[code],
            int(utts[i]),
            int(sums[i, REF]),
            int(sums[i, SUB]),
            int(sums[i, DEL]),
            int(sums[i, INS]),
        )
        for i, code in enumerate(order)
    ]
