"""Shared helpers: random transcripts with known kinds of errors, and a CLI runner."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

# Words of several scripts, with punctuation and case that the normalisers must handle.
VOCAB = {
    "en": ["the", "cat", "Sat", "on", "a", "mat,", "don't", "well-known", "42", "hello!"],
    "es": ["el", "gato", "está", "¿qué?", "sí", "niño", "año"],
    "ja": ["今日", "は", "良い", "天気", "です。", "東京", "iPhone"],
    "th": ["สวัสดี", "ครับ", "ค่ะ", "ขอบคุณ", "ไม่", "เป็นไร"],
    "ko": ["안녕하세요", "감사합니다", "네", "아니요"],
}
KEY_PREFIX = {
    "en": "English-American",
    "es": "Spanish",
    "ja": "Japanese",
    "th": "Thai",
    "ko": "Korean",
}


def random_pairs(n: int, seed: int = 0) -> list[tuple[str, str, str, str]]:
    """(id, language, reference, hypothesis): random edits, empties, identical pairs."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        lang = rng.choice(list(VOCAB))
        words = VOCAB[lang][: rng.randint(1, len(VOCAB[lang]))]  # small vocabularies: ties
        ref = [rng.choice(words) for _ in range(rng.randint(0, 12))]
        hyp = list(ref)
        for _ in range(rng.randint(0, 4)):
            op, pos = rng.random(), rng.randrange(len(hyp) + 1)
            if op < 0.4 and pos < len(hyp):
                hyp[pos] = rng.choice(words)
            elif op < 0.7 and pos < len(hyp):
                del hyp[pos]
            else:
                hyp.insert(pos, rng.choice(words))
        if rng.random() < 0.05:
            hyp = []
        rows.append((f"{KEY_PREFIX[lang]}-{i:05d}-A-{i:06d}", lang, " ".join(ref), " ".join(hyp)))
    return rows


def write_keyed(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("".join(f"{k} {t}\n".replace(" \n", "\n") for k, t in rows), "utf-8")
    return path


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sbasr", *args], capture_output=True, text=True, cwd=cwd
    )


@pytest.fixture
def pairs() -> list[tuple[str, str, str, str]]:
    return random_pairs(3000)
