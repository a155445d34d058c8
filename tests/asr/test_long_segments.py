"""Oracle segments longer than Whisper's 30 s window: cut where the speaker pauses, so that
no word is split between two pieces, and still one segment with the row's own times."""

from __future__ import annotations

import numpy as np
from conftest import SR, speak

from sbasr.asr.segments import MAX_SPAN, Span, split_long


def _phrases(n: int, pause: float) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """n spoken phrases with `pause` seconds of silence between them, and their times."""
    phrase = speak("Press one for sales, or two for support.")
    gap = np.zeros(int(pause * SR), dtype=np.float32)
    pieces, times, t = [], [], 0.0
    for _ in range(n):
        pieces += [phrase, gap]
        times.append((t, t + len(phrase) / SR))
        t += (len(phrase) + len(gap)) / SR
    return np.concatenate(pieces), times


def test_a_long_row_is_cut_in_its_pauses_not_through_words():
    audio, times = _phrases(16, pause=1.5)
    row = Span(0.0, len(audio) / SR, id="long", language="en")
    assert row.duration > 2 * MAX_SPAN
    pieces = split_long([row], audio)
    assert len(pieces) >= 3 and all(p.id == "long" for p in pieces)
    assert all(p.duration <= MAX_SPAN for p in pieces)
    for cut in [p.end for p in pieces[:-1]] + [p.start for p in pieces[1:]]:
        # every cut lies in silence, with VAD's 0.2 s padding
        assert not any(start + 0.25 < cut < end - 0.25 for start, end in times), cut
    # equal thirds of this row would have cut through phrases
    third = row.duration / 3
    assert any(start < third < end or start < 2 * third < end for start, end in times)


def test_a_long_silent_row_falls_back_to_equal_parts():
    audio = np.zeros(int(70 * SR), dtype=np.float32)
    pieces = split_long([Span(0.0, 70.0, id="quiet")], audio)
    assert [(round(p.start, 3), round(p.end, 3)) for p in pieces] == [
        (0.0, 23.333),
        (23.333, 46.667),
        (46.667, 70.0),
    ]
