"""The Speech-LLM: encoders, fusion, projectors, masks, stages, save/load, decoding, and
`finetune --arch speechllm` / `transcribe --engine speechllm` end to end.

Everything runs on tiny randomly initialised parts: a two-layer Whisper (tiny.en's
tokenizer and features), a small HubertConfig model and a one-layer Llama that uses the
Whisper tokenizer, so that it all takes seconds on a CPU.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from conftest import SR, build, run_cli, waves
from transformers import StoppingCriteriaList

from sbasr.core.text import collapse_repetitions
from sbasr.speechllm.checkpoint import average_trained, read_trained
from sbasr.speechllm.decode import RepetitionStop, RowBudget, token_budget
from sbasr.speechllm.encoders import WhisperSpeechEncoder, align_frames, load_encoder
from sbasr.speechllm.fusion import FUSIONS, Fusion
from sbasr.speechllm.model import SpeechLLM, SpeechLLMConfig
from sbasr.speechllm.projectors import PROJECTORS
from sbasr.training.sampler import SecondsBatchSampler


@pytest.mark.parametrize("fusion", FUSIONS)
@pytest.mark.parametrize("projector", PROJECTORS)
def test_each_utterance_is_encoded_as_if_alone(parts, fusion, projector):
    model = build(parts, encoder2=parts["hubert-group"], fusion=fusion, projector=projector)
    audio = waves(1.3, 3.1, 0.7)
    with torch.no_grad():
        batch, lengths = model.encode(audio)
        assert batch.shape[2] == model.llm.config.hidden_size
        # Whisper's 50 frames per second and HuBERT's, one frame apart: the shorter wins
        frames = [min((len(a) // 160 + 1) // 2, (len(a) - 400) // 320 + 1) for a in audio]
        if projector == "qformer":
            expected = [-(-f // 16) * 4 for f in frames]
        else:
            expected = [f // 4 for f in frames]
        assert lengths.tolist() == expected
        for i, a in enumerate(audio):
            alone, n = model.encode([a])
            assert int(n[0]) == expected[i]
            torch.testing.assert_close(alone[0, : n[0]], batch[i, : n[0]], atol=1e-4, rtol=1e-4)


def test_fusion_widths_and_masking():
    w, m = torch.randn(2, 6, 16), torch.randn(2, 6, 8)
    mask = torch.tensor([[True] * 6, [True] * 3 + [False] * 3])
    widths = {
        "concat": 24,
        "uni-cross": 16,
        "bi-cross": 24,
        "gated-bi-cross": 24,
        "gated-bi-cross-concat": 48,
    }
    for kind in FUSIONS:
        fusion = Fusion(kind, 16, 8, heads=2).eval()
        assert (fusion.w_to_m is not None and fusion.w_to_m.gate is not None) == (
            kind.startswith("gated")
        )
        out = fusion(w, m, mask)
        assert out.shape == (2, 6, widths[kind])
        assert out[1, 3:].abs().max() == 0
        noisy_w, noisy_m = w.clone(), m.clone()
        noisy_w[1, 3:], noisy_m[1, 3:] = 100.0, -100.0  # padding must not leak in
        torch.testing.assert_close(fusion(noisy_w, noisy_m, mask)[1, :3], out[1, :3])
    with pytest.raises(ValueError, match="unknown fusion"):
        Fusion("sum", 16, 8)


def test_true_length_encoder_equals_whisper_on_a_full_window(parts):
    from transformers import WhisperModel

    enc = load_encoder(parts["whisper"])
    assert isinstance(enc, WhisperSpeechEncoder)
    buffers = [name for name, _ in enc.named_buffers()]
    (audio,) = waves(30.0)
    with torch.no_grad():
        ours, n = enc([audio])
        feats = enc.feature_extractor(audio, sampling_rate=SR, return_tensors="pt").input_features
        theirs = WhisperModel.from_pretrained(parts["whisper"]).encoder(feats).last_hidden_state
    assert int(n[0]) == 1500
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)
    assert [name for name, _ in enc.named_buffers()] == buffers  # a forward pass adds none
    mel, _ = enc.features([audio])
    enc.to(torch.bfloat16)  # as the engine runs it on a GPU: the log-mel stays float32
    torch.testing.assert_close(enc.features([audio])[0], mel, atol=0, rtol=0)


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_hubert_style_encoder_is_batch_independent(parts, norm):
    enc = load_encoder(parts[f"hubert-{norm}"]).eval()
    assert enc.batchable == (norm == "layer")
    audio = waves(0.9, 2.2)
    with torch.no_grad():
        batch, lengths = enc(audio)
        for i, a in enumerate(audio):
            alone, n = enc([a])
            assert int(n[0]) == int(lengths[i]) == (len(a) - 400) // 320 + 1
            torch.testing.assert_close(alone[0, : n[0]], batch[i, : n[0]], atol=1e-4, rtol=1e-4)
            assert batch[i, n[0] :].abs().sum() == 0


def test_frame_counts_are_reconciled_per_utterance():
    x, y = torch.zeros(2, 10, 4), torch.arange(2 * 12 * 3.0).reshape(2, 12, 3)
    out, lengths = align_frames(x, torch.tensor([10, 9]), y, torch.tensor([11, 4]))
    assert lengths.tolist() == [10, 9]
    torch.testing.assert_close(out[0, :10], y[0, :10])  # one frame apart: trimmed
    assert out[1, 0, 0] == y[1, 0, 0] and out[1, 8, 0] == y[1, 3, 0]  # 4 -> 9: interpolated


def test_what_each_stage_trains(parts):
    torch.manual_seed(1)
    config = SpeechLLMConfig(
        encoder=parts["whisper"],
        llm=parts["llm"],
        fusion_heads=2,
        encoder2=parts["hubert-group"],
        fusion="uni-cross",
    )
    model = SpeechLLM.build(config)
    model.set_stage(1)
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trained and all(n.startswith(("fusion.", "projector.")) for n in trained)
    assert not any("lora_" in n for n, _ in model.named_parameters())
    model.set_stage(2)
    trained2 = {n for n, p in model.named_parameters() if p.requires_grad}
    lora = trained2 - trained
    assert trained <= trained2 and lora and all(n.startswith("llm.") and "lora_" in n for n in lora)
    for target in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"):
        assert any(f"{target}.lora_A" in n for n in lora)
    # stage 2 changed the model's configuration, not the one it was built from
    assert model.spec.llm_lora and not config.llm_lora

    enc_lora = build(parts, train_encoder="lora")
    enc_lora.set_stage(1)
    names = [n for n, p in enc_lora.named_parameters() if p.requires_grad and n.startswith("enc")]
    assert names and all("lora_" in n for n in names)
    full = build(parts, train_encoder="full")
    full.set_stage(1)
    assert all(p.requires_grad for p in full.encoder.parameters())
    assert not any(p.requires_grad for p in full.llm.parameters())


def test_loss_is_on_the_transcript_and_end_token_only(parts):
    model = build(parts)
    prompt, target = model.prompt_ids("fr"), model.target_ids("bonjour tout le monde")
    assert model.tokenizer.decode(prompt[1:]) == ("Transcribe the following audio in French:\n")
    assert target[-1] == model.tokenizer.eos_token_id
    audio = waves(1.0, 2.0)
    _, mask, labels = model._sequences(audio, [prompt, prompt], [target, target[:2]], False)
    speech = model.encode(audio)[1].tolist()
    for row, n, tgt in zip(range(2), speech, [target, target[:2]]):
        kept = labels[row][labels[row] != -100].tolist()
        assert kept == tgt
        assert int(mask[row].sum()) == len(prompt) + n + len(tgt)
        assert (labels[row, : len(prompt) + n] == -100).all()


def test_save_and_load_give_the_same_model(parts, tmp_path):
    model = build(
        parts, encoder2=parts["hubert-layer"], fusion="gated-bi-cross-concat", projector="linear"
    )
    model.set_stage(2)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn_like(p))
    model.eval()
    model.save(tmp_path / "m")
    assert {p.name for p in (tmp_path / "m").iterdir()} == {
        "sbasr-speechllm.json",
        "model.safetensors",
        "llm_adapter",
    }
    config = json.loads((tmp_path / "m" / "sbasr-speechllm.json").read_text())
    assert config["encoder"] == parts["whisper"] and config["llm"] == parts["llm"]
    again = SpeechLLM.load(tmp_path / "m")
    audio = waves(1.1, 1.7)
    assert again.transcribe(audio, ["en", "de"], 8) == model.transcribe(audio, ["en", "de"], 8)
    state, _ = read_trained(tmp_path / "m")
    mean, mean_adapter = average_trained([tmp_path / "m", tmp_path / "m"])
    assert all(torch.equal(mean[k], state[k]) for k in state) and mean_adapter is not None
    config["projector"] = "conv"  # weights that do not fit: an error, not a silent mix
    (tmp_path / "m" / "sbasr-speechllm.json").write_text(json.dumps(config))
    from sbasr.core.errors import SbasrError

    with pytest.raises(SbasrError, match="do not fit"):
        SpeechLLM.load(tmp_path / "m")


def test_batched_greedy_and_beam_decoding(parts):
    model = build(parts, encoder2=parts["hubert-group"], fusion="bi-cross")
    model.set_stage(2)
    model.eval()
    audio = waves(0.6, 2.4, 1.2, seed=3)
    langs = ["en", "es", "ru"]
    batched = model.transcribe(audio, langs, max_new_tokens=6)
    alone = [model.transcribe([a], [lang], max_new_tokens=6)[0] for a, lang in zip(audio, langs)]
    assert batched == alone
    shorter = model.transcribe(audio, langs, max_new_tokens=2)  # greedy: a prefix
    assert all(
        long.startswith(short) and len(short) < len(long) for short, long in zip(shorter, batched)
    )
    searched = []
    generate = model.llm.generate

    def spy(*args, **kwargs):
        searched.append(kwargs["num_beams"])
        return generate(*args, **kwargs)

    model.llm.generate = spy
    beams = model.transcribe(audio, langs, max_new_tokens=6, beam_size=3)
    beams_alone = [
        model.transcribe([a], [lang], max_new_tokens=6, beam_size=3)[0]
        for a, lang in zip(audio, langs)
    ]
    assert searched == [3] * 4  # a beam search indeed, batched and alone
    assert beams == beams_alone  # each utterance's beams are its own, as in greedy search


def test_each_row_stops_at_its_own_token_budget(parts):
    model = build(parts)
    model.set_stage(2)
    model.eval()
    audio = waves(0.5, 3.0, 1.1, seed=5)  # budgets of 16, 61 and 23 new tokens
    budgets = [token_budget(len(a) / SR) for a in audio]
    steps: list[int] = []  # the batch's rows at each decoding step
    causal = model.llm.get_base_model()  # LoRA's layers are in it
    causal.register_forward_pre_hook(
        lambda module, args, kwargs: steps.append(len(kwargs["attention_mask"])),
        with_kwargs=True,
    )
    batched = model.transcribe(audio, ["en"] * 3)
    assert steps[0] == 3 and steps[-1] == 1  # ended rows leave the batch
    assert batched == [model.transcribe([a], ["en"])[0] for a in audio]

    # transformers' generate, which steps every row until the last ends, writes the same
    tok = model.tokenizer
    embeds, mask, _ = model._sequences(audio, [model.prompt_ids("en")] * 3, None, left_pad=True)
    with torch.inference_mode():
        out = model.llm.generate(
            inputs_embeds=embeds,
            attention_mask=mask,
            max_new_tokens=max(budgets),
            do_sample=False,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
            stopping_criteria=StoppingCriteriaList([RepetitionStop(), RowBudget(budgets)]),
        )
    assert out.shape[1] > budgets[0]  # the long clip wrote past the short's budget,
    assert (out[0] != tok.eos_token_id).sum() <= budgets[0]  # the short clip did not
    texts = tok.batch_decode(out, skip_special_tokens=True)
    assert batched == [collapse_repetitions(t, max_n=32, min_repeats=4) for t in texts]


def test_a_loop_stopped_by_the_guard_is_written_once(parts):
    model = build(parts)
    model.eval()
    loop = model.tokenizer(" press one to hear it again." * 4, add_special_tokens=False)

    def looping(*args, **kwargs):  # what the repetition guard stops at: four copies
        return [loop["input_ids"]]

    model._greedy = looping
    assert model.transcribe(waves(0.5), ["en"]) == ["press one to hear it again."]


def test_budgets_apply_to_every_beam_of_an_utterance():
    stop = RowBudget([2, 5])
    three_beams = torch.zeros(6, 3, dtype=torch.long)  # 2 utterances x 3 beams, 3 tokens
    assert stop(three_beams, None).tolist() == [True] * 3 + [False] * 3


def test_batches_are_bounded_by_seconds():
    durations = [1.0 + (i * 7 % 13) for i in range(60)]
    sampler = SecondsBatchSampler(durations, seconds=20, max_items=5, seed=0)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(60))
    assert all(sum(durations[i] for i in b) <= 20 or len(b) == 1 for b in batches)
    assert all(len(b) <= 5 for b in batches) and len(sampler) == len(batches)
    assert list(sampler) == batches  # the same epoch: the same batches (resumable)
    sampler.set_epoch(1)
    assert list(sampler) != batches


def test_a_long_prompt_does_not_pad_a_batch_of_short_clips():
    # 200 one-second clips of ~30 LLM positions and 20 clips of 12 s (~200 positions);
    # clip 7's Whisper hypothesis looped, so its prompt makes it 280 positions long
    durations = [1.0] * 200 + [12.0] * 20
    positions = [30 + i % 5 for i in range(200)] + [200] * 20
    positions[7] = 280
    by_seconds = list(SecondsBatchSampler(durations, 30, 64, seed=0))
    (worst,) = [b for b in by_seconds if 7 in b]
    assert len(worst) == 30  # seconds alone: 29 short clips padded to 280 positions
    sampler = SecondsBatchSampler(durations, 30, 64, seed=0, positions=positions)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(220))
    padded = [len(b) * max(positions[i] for i in b) for b in batches]
    assert max(padded) <= sampler.max_positions < 30 * 280
    (home,) = [b for b in batches if 7 in b]
    assert len(home) <= 3 and all(positions[i] >= 200 for i in home)  # with the long clips
    assert all(sum(durations[i] for i in b) <= 30 for b in batches)
    assert list(sampler) == batches  # the same order again: resumable


def _event_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("events.out.tfevents.*"))


def _logged_steps(directory: Path) -> list[int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = _event_files(directory)
    acc = EventAccumulator(str(events))
    acc.Reload()
    return [e.step for e in acc.Scalars("train/loss")]


def test_each_stage_and_run_logs_apart_and_ends_on_its_best_checkpoint(
    parts, noise_corpus, tmp_path, capsys
):
    from transformers import TrainerCallback

    from sbasr.training.speechllm import finetune_speechllm
    from sbasr.training.speechllm_options import SpeechLLMOptions

    class WorstAtTheEnd(TrainerCallback):
        """The last evaluation reported as the worst, so that an earlier checkpoint is the
        best (an untrained tiny LLM's dev loss hardly moves)."""

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            if state.global_step == args.max_steps:
                metrics["eval_loss"] = metrics["eval_wer"] = 1e9

    def run(out: Path, stages: tuple[int, ...], steps: int, callbacks=(), **more) -> Path:
        opts = SpeechLLMOptions(
            train=str(noise_corpus / "train.jsonl"),
            dev=str(noise_corpus / "dev.jsonl"),
            output_dir=str(out),
            model=parts["whisper"],
            llm=parts["llm"],
            stages=stages,
            max_steps=steps,
            eval_steps=1,
            logging_steps=1,
            warmup_steps=1,
            batch_seconds=2,
            hypothesis=False,
            **more,
        )
        return finetune_speechllm(opts, echo=print, callbacks=callbacks)

    first = run(tmp_path / "a", (1, 2), 3, [WorstAtTheEnd()])
    second = run(tmp_path / "b", (1,), 1)
    assert "TENSORBOARD_LOGGING_DIR" not in os.environ
    # one event file in each stage's own logs/, holding that stage's steps only
    assert _logged_steps(first / "stage1" / "logs") == [1, 2, 3]
    assert _logged_steps(first / "stage2" / "logs") == [1, 2, 3]
    assert _logged_steps(second / "stage1" / "logs") == [1]
    for stage in ("stage1", "stage2"):
        state = json.loads((first / stage / "trainer_state.json").read_text())
        best = Path(state["best_model_checkpoint"])
        assert best.parent == first / stage and best.name != "checkpoint-3"
        kept, chosen, last = (
            read_trained(d)[0] for d in (first / stage, best, first / stage / "checkpoint-3")
        )
        assert all(torch.equal(kept[k], chosen[k]) for k in kept)
        assert not all(torch.equal(kept[k], last[k]) for k in kept)
    # both stages done: --resume loads them (stage 2 with its LLM adapter) and trains nothing
    final = read_trained(first)
    assert run(first, (1, 2), 3, resume=True) == first
    assert "stage 2: already done" in capsys.readouterr().out
    again = read_trained(first)
    assert all(torch.equal(final[0][k], again[0][k]) for k in final[0])
    assert all(torch.equal(final[1][k], again[1][k]) for k in final[1])


def _finetune(parts, corpus, out: Path, *extra: str):
    return run_cli(
        "finetune",
        "--arch",
        "speechllm",
        "--train",
        str(corpus / "train.jsonl"),
        "--dev",
        str(corpus / "dev.jsonl"),
        "-o",
        str(out),
        "-m",
        parts["whisper"],
        "--llm",
        parts["llm"],
        "--warmup-steps",
        "1",
        "--batch-seconds",
        "4",
        "--logging-steps",
        "1",
        "--no-hypothesis",  # the paper's pure Speech-LLM, not the default recipe's variant
        *extra,
    )


def test_finetune_both_stages_then_transcribe(parts, corpus, tmp_path):
    out = tmp_path / "sl"
    done = _finetune(
        parts,
        corpus,
        out,
        "--stages",
        "1,2",
        "--max-steps",
        "3",
        "--eval-steps",
        "1",
        "--average-best",
        "2",
        "--encoder2",
        parts["hubert-group"],
        "--fusion",
        "gated-bi-cross",
        "--projector",
        "qformer",
    )
    assert done.returncode == 0, done.stderr
    assert "stage 1: training" in done.stderr and "stage 2: training" in done.stderr
    assert "averaging" in done.stderr
    for name in ("sbasr-speechllm.json", "model.safetensors", "llm_adapter", "training.png"):
        assert (out / name).exists(), name
    config = json.loads((out / "sbasr-speechllm.json").read_text())
    assert config["stages_done"] == [1, 2] and config["fusion"] == "gated-bi-cross"
    assert not list(out.glob("stage*/checkpoint-*/*.bin"))  # no frozen weights in checkpoints
    ckpt = next(out.glob("stage2/checkpoint-*"))
    assert sum(f.stat().st_size for f in ckpt.rglob("*.safetensors")) < 20e6

    hyp = tmp_path / "hyp"
    run = run_cli(
        "transcribe",
        str(corpus / "u0.wav"),
        str(corpus / "u1.wav"),
        "--engine",
        "speechllm",
        "-m",
        str(out),
        "--language",
        "en",
        "-f",
        "keyed",
        "-o",
        str(hyp),
        "--max-new-tokens",
        "5",
        "--batch-size",
        "2",
    )
    assert run.returncode == 0, run.stderr
    lines = [line for f in sorted(hyp.iterdir()) for line in f.read_text().splitlines()]
    assert [line.split()[0].split("-")[0] for line in lines] == ["u0", "u1"]

    detected = run_cli(
        "transcribe",
        str(corpus / "u2.wav"),
        "--engine",
        "speechllm",
        "-m",
        str(out),
        "--max-new-tokens",
        "3",
    )  # language from Whisper's LID
    assert detected.returncode == 0, detected.stderr


def test_stage_one_resumes_to_the_same_weights(parts, corpus, tmp_path):
    common = (
        "--stage",
        "1",
        "--max-steps",
        "4",
        "--save-steps",
        "2",
        "--eval-steps",
        "2",
        "--batch-seconds",
        "2",
    )
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert _finetune(parts, corpus, whole, *common).returncode == 0
    assert _finetune(parts, corpus, cut, *common).returncode == 0
    # as if killed after the checkpoint at step 2
    shutil.rmtree(cut / "stage1" / "checkpoint-4")
    for name in ("sbasr-speechllm.json", "model.safetensors"):
        (cut / "stage1" / name).unlink()
    again = _finetune(parts, corpus, cut, *common)
    assert again.returncode != 0 and "--resume" in again.stderr
    resumed = _finetune(parts, corpus, cut, *common, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stderr
    a, _ = read_trained(whole)
    b, _ = read_trained(cut)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_torchrun_trains_with_two_processes(parts, corpus, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "ddp"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "-m",
            "sbasr",
            "finetune",
            "--arch",
            "speechllm",
            "--train",
            str(corpus / "train.jsonl"),
            "-o",
            str(out),
            "-m",
            parts["whisper"],
            "--llm",
            parts["llm"],
            "--max-steps",
            "2",
            "--warmup-steps",
            "1",
            "--batch-seconds",
            "2",
            "--no-hypothesis",
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads((out / "stage2" / "sbasr-finetune.json").read_text())["world_size"] == 2
    assert (out / "sbasr-speechllm.json").is_file()


def test_engine_errors_are_clear(tmp_path):
    run = run_cli("transcribe", str(tmp_path / "x.wav"), "--engine", "speechllm")
    assert run.returncode == 2
    (tmp_path / "x.wav").write_bytes(b"")
    run = run_cli("transcribe", str(tmp_path / "x.wav"), "--engine", "speechllm")
    assert run.returncode == 2 and "sbasr finetune --arch speechllm" in run.stderr
    run = run_cli(
        "transcribe", str(tmp_path / "x.wav"), "--engine", "speechllm", "-m", str(tmp_path)
    )
    assert run.returncode == 2 and "not a Speech-LLM model directory" in run.stderr


@pytest.mark.parametrize("projector", PROJECTORS)
def test_speech_embeddings_start_at_the_scale_of_token_embeddings(parts, projector):
    model = build(parts, projector=projector)
    tokens = model.llm.get_input_embeddings().weight.detach().std().item()
    with torch.no_grad():
        speech, lengths = model.encode(waves(2.0, 3.0))
    real = torch.cat([speech[i, :n] for i, n in enumerate(lengths)])
    assert 0.3 < float(real.std()) / tokens < 3.0


def test_a_poor_dev_score_warns_with_advice_for_that_kind_of_model():
    import warnings

    from sbasr.asr.engines.speechllm import _warn_if_poor

    with pytest.warns(UserWarning, match=r"m: this Speech-LLM reached only 80\.0%.*--hypothesis"):
        _warn_if_poor("m", 0.8)
    # a hypothesis-conditioned model already reads Whisper's text: no advice to turn it on
    with pytest.warns(UserWarning, match=r"hypothesis-conditioned .*corrections") as caught:
        _warn_if_poor("m", 0.8, hypothesis=True)
    assert "--hypothesis" not in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _warn_if_poor("m", 0.3, hypothesis=True)
        _warn_if_poor("m", None)
