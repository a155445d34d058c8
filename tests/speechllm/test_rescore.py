"""N-best rescoring: Whisper's N-best list with its log-probabilities (decoded once and
cached), the Speech-LLM's teacher-forced scores of every candidate in one pass, the
best combined score winning, and the weight chosen on the dev set, saved and used."""

from __future__ import annotations

import contextlib
import json

import numpy as np
import pytest
from conftest import build, run_cli, waves

from sbasr.asr.engines.speechllm import SpeechLLMEngine
from sbasr.asr.engines.whisper import WhisperEngine
from sbasr.asr.nbest import NBestCache, cached_nbest, nbest_prompt_text
from sbasr.asr.options import EngineSettings, SpeechLLMDecodeOptions
from sbasr.asr.rescore import Candidates, candidates, choose_weight, llm_scores


class _FakeWhisper:
    """N-best lists and scores by clip length, and a count of what was decoded."""

    def __init__(self):
        self.decoded = 0

    def nbest(self, clips, language, n):
        self.decoded += len(clips)
        return [[(f"len {len(c)} #{k}", -1.0 - k) for k in range(n)] for c in clips]

    def log_probs(self, clips, texts, language):
        return [-7.0 for _ in texts]

    def remembering(self):
        return contextlib.nullcontext()


def test_nbest_lists_are_decoded_once_and_reused(tmp_path):
    clips = waves(0.5, 1.2, 0.8)
    engine = _FakeWhisper()
    made = []

    def make():
        made.append(1)
        return engine

    items = [(lambda c=c: c, "en") for c in clips]
    quiet = {"echo": lambda m: None, "directory": tmp_path}
    first = cached_nbest("m", items, make, 3, **quiet)
    again = cached_nbest("m", items, make, 3, **quiet)
    assert first == again and len(made) == 1 and engine.decoded == 3
    assert first[1] == [(f"len {len(clips[1])} #{k}", -1.0 - k) for k in range(3)]
    assert len(NBestCache("m", 3, tmp_path).entries) == 3
    cached_nbest("m", items, make, 2, **quiet)  # another N is another list
    assert len(made) == 2
    more = [*items, (lambda: waves(0.3, seed=9)[0], "fr")]
    cached_nbest("m", more, make, 3, **quiet)  # only the new utterance is decoded
    assert engine.decoded == 3 + 3 + 1


def test_whisper_nbest_scores_are_its_log_probabilities_of_the_texts():
    engine = WhisperEngine("tiny.en", EngineSettings(device="cpu"))
    (clip,) = waves(1.5, seed=3)
    with engine.remembering():
        (hyps,) = engine.nbest([clip], "en", 3)
        texts = [t for t, _ in hyps]
        forced = engine.log_probs([clip] * len(texts), texts, "en")
    assert 1 <= len(hyps) <= 3 and len(set(texts)) == len(texts)
    scores = [s for _, s in hyps]
    assert all(s < 0 for s in scores)
    for s, f in zip(scores, forced):  # the beam's own score, given back by teacher forcing
        assert f == pytest.approx(s, abs=0.05 * abs(s) + 0.3)


def test_the_best_combined_score_wins_and_the_weight_is_chosen_on_errors():
    c = Candidates(["a", "b", "c"], [-1.0, -2.0, None], [-9.0, -3.0, -1.0])
    assert c.best(1.0) == 0  # Whisper alone; "c" it could not score counts as its worst
    assert c.best(0.0) == 2  # the LLM alone
    assert c.best(0.5) == 2  # -5, -2.5, -1.5
    assert candidates([("x", -1.0), (" y ", -2.0)], "y").texts == ["x", "y"]  # no duplicate
    assert candidates([("x", -1.0)], "z").whisper == [-1.0, None]
    # two utterances: the LLM is right on the first, Whisper on the second
    sets = [
        Candidates(["w", "l"], [-1.0, -3.0], [-10.0, -1.0]),
        Candidates(["w", "l"], [-1.0, -1.5], [-2.0, -1.9]),
    ]
    errors = [[2, 0], [0, 3]]
    weight, totals = choose_weight(errors, sets)
    assert totals[weight] == 0 and totals[1.0] == 2 and totals[0.0] == 3
    assert 0.0 < weight < 1.0


def test_llm_scores_every_candidate_in_one_pass(parts):
    model = build(parts)
    clips = waves(1.0, 0.7)
    calls = []
    plain = model.score

    def counted(*args, **kw):
        calls.append(len(args[2]))
        return plain(*args, **kw)

    model.score = counted
    sets = [Candidates(["one", "two", "three"], [0.0] * 3), Candidates(["four"], [0.0])]
    llm_scores(model, sets, clips, ["en", "en"])
    assert calls == [4]
    alone = plain([clips[0]], ["en"], ["two"])[0]
    assert sets[0].llm[1] == pytest.approx(alone, abs=1e-4)


@pytest.mark.parametrize("hypothesis", [False, True])
def test_scoring_from_the_shared_prefix_equals_the_teacher_forced_pass(parts, hypothesis):
    from sbasr.speechllm.scoring import forced_score, score

    model = build(parts, hypothesis=hypothesis)
    a, b = waves(1.0, 0.6, seed=3)
    # candidates of two clips, each clip's rows together or not, texts of any length
    # (the empty one is its end token alone), and two prompts for one clip
    audio = [a, a, b, a, b, b]
    texts = ["one two three", "one", "", "four five six seven", "eight", "one"]
    hyps = ["one two", "one two", "eight", "won too", "eight", "eight"] if hypothesis else None
    fast = score(model, audio, ["en"] * 6, texts, hyps)
    plain = forced_score(model, audio, ["en"] * 6, texts, hyps)
    assert fast == pytest.approx(plain, abs=1e-4)
    assert len(set(np.round(plain, 3))) == 6  # the texts do differ in score


def test_nbest_prompt_lists_the_hypotheses():
    assert nbest_prompt_text([("a b", -1.0)], 5) == "a b"
    assert nbest_prompt_text([("a", -1.0), ("b", -2.0), ("c", -3.0)], 2) == "\n1. a\n2. b"


@pytest.mark.parametrize(("weight", "expected"), [(1.0, "len 16000 #0"), (0.0, "mine")])
def test_the_engine_rescores_with_the_saved_weight(parts, tmp_path, weight, expected):
    model = build(parts, rescore_weight=weight, nbest=3)
    model.save(tmp_path / "slm")
    engine = SpeechLLMEngine(str(tmp_path / "slm"), EngineSettings(device="cpu"))
    assert engine.model.spec.rescore_weight == weight
    engine._lid = _FakeWhisper()
    engine.model.transcribe = lambda clips, langs, *a, hypotheses=None: ["mine"] * len(clips)
    table = {"mine": -0.5}  # the LLM prefers its own text, Whisper its first hypothesis
    engine.model.score = lambda clips, langs, texts, hyps=None: [table.get(t, -5.0) for t in texts]
    clip = waves(1.0)
    out = engine.decode_clips(clip, SpeechLLMDecodeOptions(language="en"))
    assert out[0][0].text == expected
    # the weight given at transcription wins; --no-rescore decodes as the model would
    other = SpeechLLMDecodeOptions(language="en", rescore_weight=1.0 - weight)
    assert engine.decode_clips(clip, other)[0][0].text != expected
    plain = SpeechLLMDecodeOptions(language="en", rescore=False)
    assert engine.decode_clips(clip, plain)[0][0].text == "mine"


def test_finetune_with_rescore_saves_the_dev_weight(parts, noise_corpus, tmp_path):
    # correction over the N-best list in the prompt, rescored: both from one N-best list
    out = tmp_path / "m"
    run = run_cli(
        "finetune",
        "--arch",
        "speechllm",
        "--train",
        str(noise_corpus / "train.jsonl"),
        "--dev",
        str(noise_corpus / "dev.jsonl"),
        "-o",
        str(out),
        "-m",
        parts["whisper"],
        "--llm",
        parts["llm"],
        "--rescore",
        "--nbest",
        "2",
        "--hypothesis",
        "--nbest-prompt",
        "2",
        "--stages",
        "1",
        "--max-steps",
        "1",
        "--eval-steps",
        "1",
        "--warmup-steps",
        "0",
        "--batch-seconds",
        "4",
        "--encoder-cache-dir",
        str(tmp_path / "frames"),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "rescoring:" in run.stderr and "N-best: decoding 6 utterances" in run.stderr
    config = json.loads((out / "sbasr-speechllm.json").read_text())
    assert config["nbest"] == 2 and 0.0 <= config["rescore_weight"] <= 1.0
    assert config["nbest_prompt"] == 2 and config["hypothesis"]
    assert "N-best: all 2 from" in run.stderr  # the dev lists decoded for training, reused
    hyp = tmp_path / "hyp"
    args = ["transcribe", str(noise_corpus / "dev.jsonl"), "--engine", "speechllm", "-m", str(out)]
    done = run_cli(*args, "-f", "keyed", "-o", str(hyp), "--max-new-tokens", "4")
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(list(hyp.glob("*.keyed"))) == 2
    assert np.isfinite(config["rescore_weight"])
    # without rescoring: correction over the N-best list, prompted with it
    plain = run_cli(*args, "-f", "keyed", "-o", str(tmp_path / "h2"), "--no-rescore")
    assert plain.returncode == 0, plain.stderr[-3000:]


def test_the_correction_prompt_carries_the_nbest_list(parts):
    from sbasr.asr.rescore import prompt_texts

    model = build(parts, hypothesis=True, nbest_prompt=2)
    lists = [[("hello there", -1.0), ("hello their", -2.0), ("yellow", -3.0)]]
    (text,) = prompt_texts(model.spec, lists)
    prompt = model.tokenizer.decode(model.prompt_ids("en", text))
    assert "1. hello there" in prompt and "2. hello their" in prompt and "yellow" not in prompt
    assert prompt_texts(build(parts, hypothesis=True).spec, lists) == ["hello there"]
