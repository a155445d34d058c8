"""Text normalisation before scoring.

Every normaliser returns texts in canonical spacing: tokens separated by single spaces, no
space at either end. Counting then needs no tokenising of the parts two texts share.
Each works on the whole list of texts at once: a test set has 10^5 utterances, and
per-call overhead, not the string work, is what costs.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from functools import cache

from ..core.choices import NORMALIZERS

# Everything str.split() splits on, except the newline that joins texts in a batch.
WHITESPACE = (
    "\t\x0b\x0c\r\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_SPACE_TABLE = str.maketrans(WHITESPACE, " " * len(WHITESPACE))

# The MLC-SLM challenge rule: lower-case, delete these, collapse spaces. Apostrophes,
# hyphens and digits stay.
MLCSLM_DELETE = '!"#$%&()*+,./:;<=>?@[\\]^_`{|}~' + "。、？！・¿¡，"
_MLCSLM_TABLE = str.maketrans(WHITESPACE, " " * len(WHITESPACE), MLCSLM_DELETE)


def normalize(texts: Sequence[str], languages: Sequence[str | None], mode: str) -> list[str]:
    """Normalise every text under one rule.

    Args:
        texts: The texts.
        languages: Each text's language code (or None); only the whisper rule uses it.
        mode: mlcslm, whisper or none.

    Returns:
        The normalised texts, in order.
    """
    if mode == "none":
        return _batched(lambda s: s.translate(_SPACE_TABLE), texts)
    if mode == "mlcslm":
        return _batched(lambda s: s.lower().translate(_MLCSLM_TABLE), texts)
    if mode == "whisper":
        english, basic = _english_normalizer(), basic_text
        return [
            " ".join((english(t) if lang == "en" else basic(t)).split())
            for t, lang in zip(texts, languages)
        ]
    raise ValueError(f"unknown normaliser {mode!r}; choose from {', '.join(NORMALIZERS)}")


def mlcslm_text(text: str) -> str:
    """The official MLC-SLM normalisation of one text."""
    return normalize([text], [None], "mlcslm")[0]


def _batched(func: Callable[[str], str], texts: Sequence[str]) -> list[str]:
    """Apply a character-wise `func` to all texts joined by newlines, then canonicalise
    the spacing with a few C-speed replaces rather than a regular expression (slow on a
    large test set)."""
    if not texts:
        return []
    joined = "\n".join(texts)
    if joined.count("\n") != len(texts) - 1:  # a text holds a newline of its own
        joined = "\n".join(t.replace("\n", " ") for t in texts)
    s = func(joined)
    while "  " in s:
        s = s.replace("  ", " ")
    s = s.replace(" \n", "\n").replace("\n ", "\n").strip(" ")
    return s.split("\n")


_BRACKETED = re.compile(r"[<\[][^>\]]*[>\]]|\(([^)]+?)\)")


def basic_text(text: str) -> str:
    """Whisper's basic normaliser, except that Unicode marks are kept.

    Whisper's own version replaces every mark (category M) with a space, which cuts Thai
    and Hindi words apart at their vowel and tone signs; scores made that way are not
    comparable across systems, so we write this one rather than import it.
    """
    text = _BRACKETED.sub("", text.lower())
    text = unicodedata.normalize("NFKC", text)
    text = "".join(" " if unicodedata.category(c)[0] in "PS" else c for c in text)
    return " ".join(text.split())


@cache
def _english_normalizer() -> Callable[[str], str]:
    # whisper-normalizer ships Whisper's English rule with its spelling table (english.json),
    # which transformers only has inside hub tokenizer files.
    from whisper_normalizer.english import EnglishTextNormalizer

    return EnglishTextNormalizer()
