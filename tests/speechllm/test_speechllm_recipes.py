"""The Speech-LLM's small-data machinery: frozen encoders computed once (the cache), the
hypothesis-conditioned variant, and the decoding guards. Tiny random parts, seconds each."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import SENTENCES, SR, build, run_cli, waves

from sbasr.asr.hypotheses import HypothesisCache, cached_hypotheses, whisper_hypotheses
from sbasr.core.errors import SbasrError
from sbasr.speechllm.cache import EncoderCache, audio_key
from sbasr.speechllm.decode import RepetitionStop, token_budget
from sbasr.training.data import Example
from sbasr.training.speechllm_data import SpeechLLMDataset, collate, fill_cache
from sbasr.training.speechllm_options import SpeechLLMOptions


def test_cached_frames_give_the_same_loss_as_audio(parts):
    model = build(parts, encoder2=parts["hubert-layer"], fusion="gated-bi-cross")
    model.set_stage(2)
    model.eval()
    audio = waves(0.7, 1.9, 1.2)
    prompts = [model.prompt_ids("en")] * 3
    labels = torch.tensor([model.target_ids("hello there")] * 3)
    with torch.no_grad():
        frames = model.encoder_outputs(audio)
        from_audio = model(prompts, labels, audio=audio)["loss"]
        from_frames = model(prompts, labels, frames=frames)["loss"]
    assert [len(f) for f in frames] == [2, 2, 2]  # one tensor per encoder
    assert torch.allclose(from_audio, from_frames, atol=1e-5)


def test_exact_widths_on_cpu_equal_two_second_widths(parts):
    model = build(parts)
    audio = waves(0.6, 1.3)
    with torch.no_grad():
        exact = model.encoder_outputs(audio)
        model.encoder.width_step = 200
        padded = model.encoder_outputs(audio)
    for a, b in zip(exact, padded):
        assert a[0].shape == b[0].shape
        assert torch.allclose(a[0], b[0], atol=1e-5)


def test_cache_keys_follow_content_speed_and_encoder(parts, tmp_path):
    (a, b) = waves(1.0, 1.0, seed=4)
    assert audio_key(a, 1.0) == audio_key(a.copy(), 1.0)
    assert audio_key(a, 1.0) != audio_key(a, 1.1) != audio_key(b, 1.1)
    model = build(parts)
    identity = model.encoder_identity()
    assert identity == build(parts).encoder_identity()  # same sources, same weights
    with torch.no_grad():
        model.encoder.encoder.layers[0].fc1.weight.add_(1e-3)
    assert model.encoder_identity() != identity  # other weights: nothing reused

    cache = EncoderCache(identity, tmp_path)
    frames = [torch.randn(7, 4)]
    cache.put("k", frames)
    again = EncoderCache(identity, tmp_path)  # a new run reads it from disk
    assert "k" in again and torch.equal(again.get("k")[0], frames[0])
    assert EncoderCache("other", tmp_path).get("k") is None

    # an utterance's frames are a view into its batch's output: the cache keeps a copy
    # of its own, or the whole batch would stay in memory unaccounted for
    batch = torch.randn(8, 100, 4)
    cache.put("v", [batch[2, :30]])
    kept = cache.get("v")[0]
    assert kept.untyped_storage().nbytes() == 30 * 4 * kept.element_size()
    assert torch.equal(kept, batch[2, :30])


def _noise_examples(root, n=4) -> list[Example]:
    out = []
    for i in range(n):
        path = root / f"n{i}.wav"
        sf.write(path, waves(0.8 + 0.3 * i, seed=i)[0], SR)
        out.append(Example(f"n{i}", str(path), SENTENCES[i], "en", 0.0, 0.8 + 0.3 * i))
    return out


def test_each_utterance_is_encoded_once_and_batches_match(parts, tmp_path, monkeypatch):
    model = build(parts)
    model.set_stage(1)
    examples = _noise_examples(tmp_path)
    opts = SpeechLLMOptions(train="x", output_dir=str(tmp_path), speed_perturb=(0.9, 1.1), seed=3)
    cache = EncoderCache(model.encoder_identity(), tmp_path / "cache")
    cached = SpeechLLMDataset(examples, model, opts, cache=cache)
    calls = []
    original = model.encoder_outputs
    monkeypatch.setattr(model, "encoder_outputs", lambda a: calls.append(len(a)) or original(a))
    fill_cache(model, cached, echo=lambda m: None)
    assert sum(calls) == len(examples)
    fill_cache(model, cached, echo=lambda m: None)  # all there: nothing encoded again
    for _ in range(2):  # two epochs read from the cache
        batch = collate([cached[i] for i in range(len(examples))])
    assert sum(calls) == len(examples)
    # the same items through audio (no cache) give the same loss: same speed factors
    plain = collate([SpeechLLMDataset(examples, model, opts)[i] for i in range(len(examples))])
    model.eval()
    with torch.no_grad():
        a = model(**plain)["loss"]
        b = model(**batch)["loss"]
    assert torch.allclose(a, b, atol=1e-4)


def test_repetition_stop_and_token_budget():
    stop = RepetitionStop()
    ids = torch.tensor([[5, 1, 2, 1, 2, 1, 2, 1, 2], [5, 6, 7, 8, 9, 1, 2, 3, 4]])
    assert stop(ids, None).tolist() == [True, False]
    sentence = list(range(100, 125))  # a 25-token sentence, looped
    loops = torch.tensor([[7] + sentence * 4, list(range(26)) + sentence * 3])
    assert stop(loops, None).tolist() == [True, False]  # four times stops, three goes on
    assert token_budget(0.2) == 16 and token_budget(10.0) == 201


class _FakeWhisper:
    """Stands in for the Whisper engine: 'heard' is each clip's length in tenths."""

    def decode(self, audio, spans, options):
        from sbasr.asr.engines.base import Decoded

        assert not options.timestamps and options.beam_size == options.batch_size == 1
        assert options.temperatures() == (0.0,)  # no sampling: the same text every run
        for i, s in enumerate(spans):
            assert len(s.samples(audio)) == len(audio)  # every sample of the clip
            yield Decoded(i, s.start, s.end, f"len {round(len(audio) / SR * 10)}")


def test_hypotheses_are_decoded_once_per_utterance_and_cached(tmp_path):
    clips = waves(0.5, 1.2, 0.8)
    texts = whisper_hypotheses(_FakeWhisper(), clips, ["en", "fr", "en"])
    assert texts == ["len 5", "len 12", "len 8"]
    made = []

    def engine():
        made.append(1)
        return _FakeWhisper()

    items = [(lambda c=c: c, "en") for c in clips]
    first = cached_hypotheses("m", items, engine, echo=lambda m: None, directory=tmp_path)
    again = cached_hypotheses("m", items, engine, echo=lambda m: None, directory=tmp_path)
    assert first == again == ["len 5", "len 12", "len 8"] and len(made) == 1
    assert len(HypothesisCache("m", tmp_path).entries) == 3


def test_hypothesis_conditioned_prompt_carries_the_transcript(parts):
    model = build(parts, hypothesis=True)
    text = model.tokenizer.decode(model.prompt_ids("fr", "bonjour a tous"))
    assert "French" in text and "bonjour a tous" in text
    assert model.prompt_ids("fr", "x") != model.prompt_ids("fr", "y")
    plain = build(parts)
    assert plain.prompt_ids("fr", "x") == plain.prompt_ids("fr", "y")  # the paper's prompt


@pytest.mark.parametrize("flag", ["--hypothesis", "--encoder-cache=off"])
def test_finetune_variants_train_and_transcribe(parts, noise_corpus, tmp_path, flag):
    # the uncached run also checkpoints activations: the Trainer's 5.x hook, no warnings
    extra = ["--gradient-checkpointing", "--no-hypothesis"] if flag == "--encoder-cache=off" else []
    out = tmp_path / "m"
    env_cache = ["--encoder-cache-dir", str(tmp_path / "frames")]
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
        "--max-steps",
        "2",
        "--eval-steps",
        "1",
        "--warmup-steps",
        "0",
        "--batch-seconds",
        "4",
        flag,
        *extra,
        *env_cache,
    )
    assert run.returncode == 0, run.stderr
    if extra:
        assert "Warning" not in run.stderr, run.stderr
    config = json.loads((out / "sbasr-speechllm.json").read_text())
    assert config["hypothesis"] == (flag == "--hypothesis")
    cached = list((tmp_path / "frames").rglob("*.safetensors"))
    assert bool(cached) == (flag != "--encoder-cache=off")
    if flag == "--hypothesis":
        assert "hypotheses: decoding" in run.stderr
    hyp = run_cli(
        "transcribe",
        str(noise_corpus / "dev.jsonl"),
        "--engine",
        "speechllm",
        "-m",
        str(out),
        "-f",
        "keyed",
        "-o",
        str(tmp_path / "hyp"),
        "--max-new-tokens",
        "4",
    )
    assert hyp.returncode == 0, hyp.stderr
    assert len(list((tmp_path / "hyp").glob("*.keyed"))) == 2
    assert np.isfinite(
        json.loads((out / "stage2" / "trainer_state.json").read_text())["log_history"][-1][
            "train_loss"
        ]
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU case")
def test_bf16_training_is_accepted_on_a_cpu(tmp_path):
    from sbasr.training.arguments import training_arguments

    opts = SpeechLLMOptions(train="x", output_dir=str(tmp_path), precision="bf16")
    args = training_arguments(opts, "loss", has_dev=False)
    assert args.bf16 and args.use_cpu


def test_ctc_alignment_loss_trains_the_projector_and_blank(parts, tmp_path):
    model = build(parts, ctc_weight=0.5)
    model.set_stage(1)
    model.train()
    audio = waves(1.5, 0.9)
    prompts = [model.prompt_ids("en")] * 2
    targets = [model.target_ids("hello there"), model.target_ids("press one")]
    width = max(map(len, targets))
    labels = torch.tensor([t + [-100] * (width - len(t)) for t in targets])
    total = model(prompts, labels, audio=audio)["loss"]
    speech, lengths = model.encode(audio)
    table = model.llm.get_input_embeddings().weight.detach()
    ctc = model.ctc(speech, lengths, [t[:-1] for t in targets], table)
    assert torch.isfinite(ctc) and float(ctc.detach()) > 0
    total.backward()
    assert model.ctc.blank.grad.abs().sum() > 0 and model.ctc.log_scale.grad is not None
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.projector.parameters())
    # more text than positions: no infinity, nothing learnt from that row
    long = model.ctc(speech[:1], lengths[:1], [list(range(5, 500))], table)
    assert torch.isfinite(long)
    # the blank and scale are saved and loaded with the model; without CTC they do not exist
    model.save(tmp_path / "m")
    from sbasr.speechllm.checkpoint import read_trained

    assert {"ctc.blank", "ctc.log_scale"} <= set(read_trained(tmp_path / "m")[0])
    assert build(parts).ctc is None


def test_score_is_the_training_loss_summed_and_padding_free(parts):
    model = build(parts, hypothesis=True)
    audio = waves(0.7, 1.6)
    texts, hyps = ["hello there", "press one for sales"], ["hallo there", "press one"]
    scores = model.score(audio, ["en", "en"], texts, hypotheses=hyps)
    for i in range(2):
        labels = torch.tensor([model.target_ids(texts[i])])
        with torch.no_grad():
            loss = model([model.prompt_ids("en", hyps[i])], labels, audio=[audio[i]])["loss"]
        alone = model.score([audio[i]], ["en"], [texts[i]], hypotheses=[hyps[i]])[0]
        assert alone == pytest.approx(-loss.item() * labels.shape[1], rel=1e-4)
        assert scores[i] == pytest.approx(alone, rel=1e-4)  # batch-mates change nothing


def test_score_encodes_a_clip_given_twice_once(parts):
    model = build(parts, hypothesis=True)
    a, b = waves(0.7, 1.6)
    texts = ["hello there", "hallo there", "press one", "press won"]
    hyps = ["hallo there", "hallo there", "press one", "press one"]
    langs = ["en"] * 4
    copies = model.score([a, a.copy(), b, b.copy()], langs, texts, hypotheses=hyps)
    seen, run = [], model._run_encoders
    model._run_encoders = lambda audio: seen.append(len(audio)) or run(audio)
    shared = model.score([a, a, b, b], langs, texts, hypotheses=hyps)
    assert seen == [2] and shared == pytest.approx(copies, rel=1e-5)


def test_merged_lora_decodes_and_scores_as_the_adapter_does(parts, tmp_path):
    model = build(parts)
    model.set_stage(2)
    torch.manual_seed(3)
    with torch.no_grad():  # peft starts B at zero, where merging would change nothing
        for name, p in model.llm.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.5)
    model.eval()
    audio = waves(0.7, 1.6, seed=4)
    texts = ["hello there", "press one for sales"]
    before = model.transcribe(audio, ["en", "en"], max_new_tokens=8)
    scores = model.score(audio, ["en", "en"], texts)
    assert model.merge_lora() is model and model.merged
    assert not any("lora_" in n for n, _ in model.llm.named_parameters())
    assert model.transcribe(audio, ["en", "en"], max_new_tokens=8) == before
    assert model.score(audio, ["en", "en"], texts) == pytest.approx(scores, rel=1e-4)
    with pytest.raises(SbasrError, match="merged"):
        model.save(tmp_path / "m")


def test_the_engine_decodes_with_the_lora_merged(parts, tmp_path):
    from sbasr.asr.engines.speechllm import SpeechLLMEngine

    model = build(parts)
    model.set_stage(2)
    model.save(tmp_path / "m")
    assert SpeechLLMEngine(str(tmp_path / "m")).model.merged
