"""Splitting normalised text into the units an error rate counts: words or characters.

For speed every token is encoded as one character of a string (a per-run vocabulary maps
each distinct word to a code point), so that rapidfuzz compares whole utterances in C
without a Python object per word. The encoded strings are what
`sbasr.scoring.edit_distance` consumes.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from ..core.choices import UNITS

# Scripts written without spaces, as the MLC-SLM recipe lists them: Hangul, CJK (with
# their punctuation and full-width forms) and Thai. A character of these is one token.
_CJKT_RANGES = (
    (0x1100, 0x11FF),
    (0x2E80, 0xA4CF),
    (0xA840, 0xD7AF),
    (0xF900, 0xFAFF),
    (0xFE30, 0xFE4F),
    (0xFF65, 0xFFDC),
    (0x20000, 0x2FFFF),
    (0x3000, 0x303F),
    (0xFF01, 0xFF60),
    (0x0E00, 0x0E7F),
)


CJKT_CLASS = "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in _CJKT_RANGES)  # for a [...] regex


@cache
def _spaced_cjkt() -> dict[int, str]:
    """A str.translate table that puts spaces around every CJK/Thai character: splitting
    the result on whitespace gives the "mixed" tokens, at C speed for a whole test set."""
    table = {c: f" {chr(c)} " for lo, hi in _CJKT_RANGES for c in range(lo, hi + 1)}
    table[0x3000] = " "  # the ideographic space is a space, not a token
    return table


def tokens(text: str, unit: str) -> list[str]:
    """The tokens of one text: what the alignment and the reports show."""
    if unit == "word":
        return text.split()
    if unit == "char":
        return [c for c in text if not c.isspace()]
    if unit == "mixed":
        return text.translate(_spaced_cjkt()).split()
    raise ValueError(f"unknown unit {unit!r}; choose from {', '.join(UNITS)}")


# Control characters that join utterances while encoding; the first absent from the texts
# is used. Token codes start at U+0100, so a separator never collides with a token.
_SEPARATORS = "".join(chr(c) for c in range(1, 32) if not chr(c).isspace())


class Vocabulary(dict):
    """Token -> one code point, assigned on first sight.

    Code points run from U+0100 upwards; the surrogate block is fine inside a Python str and
    rapidfuzz treats it as any other code point. 1.1 million distinct tokens is the limit.
    """

    def __init__(self, separator: str) -> None:
        super().__init__({separator: separator})
        self._next = 0x100

    def __missing__(self, token: str) -> str:
        if self._next > 0x10FFFF:
            raise OverflowError("more than 1.1 million distinct tokens")
        code = self[token] = chr(self._next)
        self._next += 1
        return code


class _SeparatorInText(Exception):
    pass


def encode_pairs(
    refs: Sequence[str], hyps: Sequence[str], unit: str
) -> tuple[list[str], list[str]]:
    """Encode references and hypotheses as strings of one code point per token, with one
    vocabulary, so that equal tokens get equal codes."""
    for separator in _SEPARATORS:
        vocab = Vocabulary(separator)
        try:
            return _encode(refs, unit, vocab, separator), _encode(hyps, unit, vocab, separator)
        except _SeparatorInText:
            continue
    raise ValueError("the texts contain every ASCII control character; cannot encode them")


def _encode(texts: Sequence[str], unit: str, vocab: Vocabulary, separator: str) -> list[str]:
    """All texts go through each step together (one join, one split, one lookup pass, one
    split back), as per-utterance calls would cost more than the alignment itself. In "char"
    units a character is its own code point and `vocab` is not used."""
    if not texts:
        return []
    joined = f" {separator} ".join(texts)
    if joined.count(separator) != len(texts) - 1:
        raise _SeparatorInText
    if unit == "char":
        return "".join(joined.split()).split(separator)
    if unit == "word":
        flat = joined.split()
    elif unit == "mixed":
        flat = joined.translate(_spaced_cjkt()).split()
    else:
        raise ValueError(f"unknown unit {unit!r}; choose from {', '.join(UNITS)}")
    return "".join(map(vocab.__getitem__, flat)).split(separator)
