"""Stereo calls of real speech, transcribed as a user would: turns found, WER, sentences
written twice and language tags, with and without conditioning on the previous text.

Each call is built from the real Asterisk prompts (see `asterisk.py`): two speakers on two
channels taking turns, long prompts followed by one- or two-word answers (digits,
"Gracias", "Merci."), and the language changing between turns (en, es, fr, ru). Nothing
is written but a temporary folder.

    python benchmarks/call_bench.py --sounds ROOT [--calls 4] [--model base]

Each configuration is one row: the turns with any text attributed to them (a hypothesis
segment belongs to the turn of its channel it overlaps most), the pooled WER over the
turns (each turn scored with its own language's normaliser), the segments whose text is
a sentence already written earlier in the same call (where the reference has none), and
the share of segments tagged with their turn's language.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from asterisk import prompts

SR = 16_000
LANGUAGES = ("en", "es", "fr", "ru")


@dataclass
class Turn:
    channel: int
    start: float
    end: float
    language: str
    text: str


def _usable(text: str) -> bool:
    return not re.search(r"[()]", text) and bool(re.search(r"\w", text))  # no "(beep)"


def build_call(root: Path, seed: int, path: Path, turns: int = 12) -> list[Turn]:
    """A stereo call of real prompts at `path`: speakers alternate (0.4-1.2 s apart), a
    long prompt (8-16 words) is followed by short answers (1-2 words) on the other
    channel and, now and then, a short word on its own channel; every few turns the
    call changes language. Returns the turns, as the reference."""
    from sbasr.io.audio import load_audio

    rng = random.Random(seed)
    pool = {lang: prompts(root, lang) for lang in LANGUAGES}
    long = {
        lang: [p for p in pool[lang] if 8 <= len(p[2].split()) <= 16 and _usable(p[2])]
        for lang in LANGUAGES
    }
    short = {
        lang: [p for p in pool[lang] if len(p[2].split()) <= 2 and _usable(p[2])]
        for lang in LANGUAGES
    }
    languages = list(LANGUAGES)
    rng.shuffle(languages)
    out: list[Turn] = []
    pieces: list[tuple[int, int, np.ndarray]] = []
    t, speaker = 0.5, rng.randrange(2)
    for i in range(turns):
        lang = languages[(i // 3) % len(languages)]
        kind = "long" if i % 3 == 0 else "short"
        if kind == "short" and rng.random() < 0.3:
            speaker = 1 - speaker  # the same speaker again, after a pause
        _, wav, text = rng.choice(long[lang] if kind == "long" else short[lang])
        audio = load_audio(wav).channels[0]
        start = int(t * SR)
        pieces.append((speaker, start, audio))
        out.append(Turn(speaker, start / SR, (start + len(audio)) / SR, lang, text))
        t = (start + len(audio)) / SR + rng.uniform(0.4, 1.2)
        speaker = 1 - speaker
    stereo = np.zeros((int((t + 0.5) * SR), 2), np.float32)
    for channel, start, audio in pieces:
        stereo[start : start + len(audio), channel] += audio
    sf.write(path, stereo, SR)
    return out


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w']+", " ", text.lower()).split())


def evaluate(calls: list[tuple[list[Turn], list]]) -> dict:
    """Turns found, pooled WER, sentences written twice and language tags over `calls`
    (each: its turns and the segments transcribed)."""
    import sbasr

    found = total = repeated = tagged = segments = 0
    hyp: dict[str, dict[str, str]] = {lang: {} for lang in LANGUAGES}
    ref: dict[str, dict[str, str]] = {lang: {} for lang in LANGUAGES}
    for c, (turns, segs) in enumerate(calls):
        texts: dict[int, list[str]] = {}
        seen: set[str] = set()
        refs = {_norm(turn.text) for turn in turns}
        for seg in segs:
            segments += 1
            channel = seg.channel
            overlap = [
                (min(seg.end, tr.end) - max(seg.start, tr.start), i)
                for i, tr in enumerate(turns)
                if tr.channel == channel
            ]
            best, index = max(overlap, default=(0.0, -1))
            if best > 0:
                texts.setdefault(index, []).append(seg.text)
                tagged += seg.language == turns[index].language
            words = _norm(seg.text)
            counted = sum(_norm(tr.text) == words for tr in turns) > 1 and words in refs
            if words and words in seen and not counted:
                repeated += 1
            seen.add(words)
        for i, turn in enumerate(turns):
            total += 1
            text = " ".join(texts.get(i, []))
            found += bool(text.strip())
            hyp[turn.language][f"c{c}-t{i}"] = text
            ref[turn.language][f"c{c}-t{i}"] = turn.text
    errors = words = 0.0
    for lang in LANGUAGES:
        if ref[lang]:
            report = sbasr.score(hyp[lang], ref[lang], language=lang)
            errors += report.pooled.rate * report.pooled.ref_tokens
            words += report.pooled.ref_tokens
    return dict(
        found=found,
        turns=total,
        wer=100 * errors / max(words, 1),
        repeated=repeated,
        tagged=100 * tagged / max(segments, 1),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sounds", type=Path, required=True)
    parser.add_argument("--calls", type=int, default=4)
    parser.add_argument("--model", default="base")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--rows", default="0,1,2,3", help="which rows to run (0-3, comma-separated)"
    )
    args = parser.parse_args()

    import sbasr
    from sbasr.asr.engines.whisper import WhisperEngine
    from sbasr.asr.options import EngineSettings, TranscribeOptions, WhisperDecodeOptions

    engine = WhisperEngine(args.model, EngineSettings(device="cpu", threads=args.threads))
    with tempfile.TemporaryDirectory() as tmp:
        calls = []
        for seed in range(args.calls):
            path = Path(tmp) / f"call{seed}.wav"
            calls.append((path, build_call(args.sounds, seed, path)))
        seconds = sum(sf.info(p).duration for p, _ in calls)
        print(f"{len(calls)} stereo calls, {seconds:.0f} s, {sum(len(t) for _, t in calls)} turns")
        rows = [
            ("--language-per-segment", True, None),
            ("--language-per-segment --no-condition-on-previous-text", True, False),
            ("(default language detection)", False, None),
            ("(default language detection) --no-condition-on-previous-text", False, False),
        ]
        chosen = [rows[int(i)] for i in args.rows.split(",")]
        for name, per_segment, condition in chosen:
            decode = WhisperDecodeOptions()
            if condition is not None:
                decode = WhisperDecodeOptions(condition_on_previous_text=condition)
            options = TranscribeOptions(
                channels="split", language_per_segment=per_segment, decode=decode
            )
            begin = time.perf_counter()
            done = [
                (turns, list(sbasr.transcribe(path, engine=engine, options=options)))
                for path, turns in calls
            ]
            r = evaluate(done)
            print(
                f"{name:60s} turns found {r['found']}/{r['turns']}  WER {r['wer']:5.1f}%  "
                f"written twice {r['repeated']}  language right {r['tagged']:.0f}%  "
                f"({time.perf_counter() - begin:.0f} s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
