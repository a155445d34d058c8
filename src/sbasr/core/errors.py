"""The one error type users see: a short message naming the file and the problem."""

from __future__ import annotations


class SbasrError(Exception):
    """Bad input or a missing resource; the CLI prints the message on one line, exits 2."""
