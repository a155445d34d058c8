"""The hypothesis-conditioned Speech-LLM's guard: a correction that keeps less than half
of a long Whisper hypothesis (a loop, skipped sentences) gives way to the hypothesis."""

from __future__ import annotations

from conftest import build, waves

from sbasr.asr.engines.speechllm import SpeechLLMEngine, lost_its_place
from sbasr.asr.options import EngineSettings, SpeechLLMDecodeOptions
from sbasr.asr.segments import Span

LONG = "press one for sales or two for support"


def test_only_a_collapse_of_a_long_hypothesis_counts():
    assert lost_its_place("ВЕСТЬАТЬАТЬ", LONG)
    assert lost_its_place("", LONG)
    assert not lost_its_place("press one for sales or two for support please", LONG)
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
    out = engine.decode(audio, spans, SpeechLLMDecodeOptions(language="en", batch_size=2))
    assert {d.span: d.text for d in out} == {0: LONG, 1: "eleven"}
