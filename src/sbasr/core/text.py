"""Clean-ups of decoded text shared by both engines."""

from __future__ import annotations


def collapse_repetitions(text: str, max_n: int = 10, min_repeats: int = 5) -> str:
    """Collapse a trailing n-gram (n <= `max_n` tokens) repeated `min_repeats` or more times
    to one copy: the loop a decoder falls into on noise ("thank you. thank you. ...").

    Tokens are words, or characters for text written without spaces (Japanese, Thai).
    """
    text = text.strip()
    words = text.split()
    tokens, joiner = (words, " ") if len(words) > 1 else (list(text), "")
    for n in range(1, max_n + 1):
        if len(tokens) < n * min_repeats:
            break
        gram = tokens[-n:]
        repeats = 1
        while tokens[len(tokens) - (repeats + 1) * n : len(tokens) - repeats * n] == gram:
            repeats += 1
        if repeats >= min_repeats:
            return joiner.join(tokens[: len(tokens) - (repeats - 1) * n])
    return text
