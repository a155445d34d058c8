"""The hypothesis-conditioned Speech-LLM's guards: a correction that keeps less than half
of a long Whisper hypothesis (a loop, skipped sentences) gives way to the hypothesis, and
a correction stands only where Whisper and the LLM together score it above the hypothesis.
The hypotheses themselves are what the Whisper engine writes for the same clips."""

from __future__ import annotations

import contextlib
import json

import numpy as np
import pytest
import soundfile as sf
from conftest import SR, build, run_cli, speak, waves

from sbasr.asr.engines.speechllm import SpeechLLMEngine
from sbasr.asr.engines.whisper import WhisperEngine
from sbasr.asr.hypotheses import whisper_hypotheses
from sbasr.asr.options import EngineSettings, SpeechLLMDecodeOptions
from sbasr.asr.segments import Span
from sbasr.io.audio import load_range
from sbasr.speechllm.correction import lost_its_place

LONG = "press one for sales or two for support"


def test_only_a_collapse_or_a_runaway_of_a_long_hypothesis_counts():
    assert lost_its_place("ВЕСТЬАТЬАТЬ", LONG)
    assert lost_its_place("", LONG)
    counting = "press " + ", ".join(str(i) for i in range(1, 40))
    assert lost_its_place(counting, LONG)  # a loop the repetition stop does not see
    assert not lost_its_place("press one for sales or two for support today", LONG)
    assert not lost_its_place("eleven", "11")  # a short rewrite is what it learnt
    assert not lost_its_place("x", "spasibo bolshoe tebe")  # three words: left alone


def test_the_engine_keeps_whisper_where_the_llm_lost_its_place(parts, tmp_path):
    build(parts, hypothesis=True).save(tmp_path / "ger")
    engine = SpeechLLMEngine(str(tmp_path / "ger"), EngineSettings(device="cpu"))
    written = {0: "zzzz", 1: "eleven"}
    hypotheses = {0: LONG, 1: "11"}
    engine._hypotheses = lambda clips, order, options: hypotheses
    engine.model.transcribe = lambda clips, langs, *a, hypotheses=None: [
        written[0 if h == LONG else 1] for h in hypotheses
    ]
    (audio,) = waves(4.0)
    spans = [Span(0.0, 2.0), Span(2.5, 3.5)]
    options = SpeechLLMDecodeOptions(language="en", batch_size=2, check_corrections=False)
    out = engine.decode(audio, spans, options)
    assert {d.span: d.text for d in out} == {0: LONG, 1: "eleven"}


class _Scores:
    """Stands in for the Whisper engine's scoring: fixed log-probabilities by text."""

    def __init__(self, table):
        self.table, self.calls = table, 0

    def remembering(self):
        return contextlib.nullcontext()

    def score_texts(self, clips, texts, language):
        self.calls += 1
        assert len(clips) == len(texts) and language == "en"
        return [self.table[t] for t in texts]


@pytest.mark.parametrize("check", [True, False])
def test_a_correction_stands_only_where_both_models_prefer_it(parts, tmp_path, check):
    build(parts, hypothesis=True).save(tmp_path / "ger")
    engine = SpeechLLMEngine(str(tmp_path / "ger"), EngineSettings(device="cpu"))
    hyps = {0: "eleven", 1: "to", 2: "call me", 3: "same", 4: "Hold, thanks."}
    fixes = {"eleven": "seven", "to": "two", "call me": "call mee", "same": "same"}
    fixes["Hold, thanks."] = "hold thanks"  # case and punctuation only: not checked
    engine._hypotheses = lambda clips, order, options: hyps
    engine.model.transcribe = lambda clips, langs, *a, hypotheses=None: [
        fixes[h] for h in hypotheses
    ]
    # Whisper (acoustics) and the LLM (log-probabilities): "seven" is a guess the LLM barely
    # prefers and Whisper rejects; "two" the LLM prefers by far more than Whisper objects;
    # "call mee" cannot be judged by Whisper (None) and stands.
    heard = {"seven": -9.0, "eleven": -2.0, "two": -3.0, "to": -2.0, "call mee": None}
    heard["call me"] = None
    read = {"seven": -1.0, "eleven": -1.5, "two": -0.5, "to": -6.0, "call mee": -1, "call me": -2}
    whisper = _Scores(heard)
    engine._lid = whisper
    engine.model.score = lambda clips, langs, texts, hypotheses=None: [read[t] for t in texts]
    audio = waves(1.0, 1.0, 1.0, 1.0, 1.0)
    options = SpeechLLMDecodeOptions(language="en", batch_size=3, check_corrections=check)
    out = engine.decode_clips(audio, options)
    texts = [d[0].text for d in out]
    if check:
        assert texts == ["eleven", "two", "call mee", "same", "hold thanks"]
        assert whisper.calls == 1  # one batched call; an unchanged text is not scored
    else:
        assert texts == ["seven", "two", "call mee", "same", "hold thanks"]
        assert whisper.calls == 0


def test_whisper_scores_its_own_transcript_above_a_cut_or_changed_one():
    engine = WhisperEngine("tiny.en", EngineSettings(device="cpu"))
    clip = speak("hold on while we try to connect you")
    (heard,) = [d.text for d in engine.decode_clips([clip], _greedy())[0]]
    cut = " ".join(heard.split()[:-2])
    changed = " ".join(["Cheese", *heard.split()[1:]])  # the first word wrong
    own, shorter, other, silence = engine.score_texts(
        [clip, clip, clip, clip], [heard, cut, changed, "cheese on toast"], "en"
    )
    assert own > shorter  # ending early costs the end token's probability
    assert heard.split()[1:] and own > other > silence
    assert engine.score_texts([waves(31.0)[0]], [heard], "en") == [None]  # past 30 s


def test_whisper_encodes_a_clip_scored_twice_once():
    engine = WhisperEngine("tiny.en", EngineSettings(device="cpu"))
    clip, other = speak("press one for sales"), speak("hold the line")
    texts = ["press one for sales", "press one for tails", "hold the line", "hold on"]
    copies = engine.score_texts([clip, clip.copy(), other, other.copy()], texts, "en")
    widths, encode = [], engine.model.encode
    engine.model.encode = lambda features: widths.append(len(features)) or encode(features)
    shared = engine.score_texts([clip, clip, other, other], texts, "en")
    assert widths == [2]  # two clips encoded for four texts
    assert shared == pytest.approx(copies, abs=1e-4)
    assert shared[0] > shared[1] and shared[2] > shared[3]


def test_the_check_scores_the_window_decoding_encoded_and_reuses_it(monkeypatch):
    from faster_whisper import WhisperModel

    engine = WhisperEngine("tiny.en", EngineSettings(device="cpu"))
    clip = speak("press one for sales")
    windows, plain = [], WhisperModel.encode

    def spy(self, features):
        windows.append(np.array(features))
        return plain(self, features)

    monkeypatch.setattr(WhisperModel, "encode", spy)
    (heard,) = whisper_hypotheses(engine, [clip], ["en"])
    fresh = engine.score_texts([clip], [heard], "en")
    assert len(windows) == 2 and np.array_equal(windows[1][0], windows[0])  # the same window
    with engine.remembering():
        assert whisper_hypotheses(engine, [clip], ["en"]) == [heard]
        passes = len(windows)
        kept = engine.score_texts([clip, clip], [heard, "press one for tails"], "en")
    assert len(windows) == passes  # the check encoded nothing again
    assert kept[0] == pytest.approx(fresh[0], abs=1e-4) and kept[0] > kept[1]
    assert "encode" not in vars(engine.model)  # faster-whisper's own method again


def test_hypotheses_are_what_the_whisper_engine_writes(tmp_path):
    rows = []
    for i, text in enumerate(["press one for sales", "the conference has been extended"]):
        path = tmp_path / f"p{i}.wav"
        audio = speak(text)
        sf.write(path, audio, SR)
        end = round(len(audio) / SR, 3)
        rows.append({"id": f"p{i}", "audio": str(path), "language": "en", "start": 0.0, "end": end})
    manifest = tmp_path / "test.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "hyp"
    args = ["--engine", "whisper", "--model", "tiny.en", "--beam-size", "1", "-f", "keyed"]
    args += ["--temperature-increment", "0"]
    run = run_cli("transcribe", str(manifest), *args, "-o", str(out))
    assert run.returncode == 0, run.stderr
    written = dict(
        line.split(" ", 1)
        for f in sorted(out.glob("*.keyed"))
        for line in f.read_text().splitlines()
    )
    clips = [load_range(r["audio"], r["start"], r["end"]) for r in rows]
    engine = WhisperEngine("tiny.en", EngineSettings(device="cpu"))
    assert whisper_hypotheses(engine, clips, ["en", "en"]) == [
        written["p0"],
        written["p1"],
    ]


def _greedy():
    from sbasr.asr.options import WhisperDecodeOptions

    return WhisperDecodeOptions(language="en", beam_size=1, timestamps=False)
