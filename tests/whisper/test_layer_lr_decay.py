"""`--layer-lr-decay`: each Whisper layer trains at the peak rate times decay^(its distance
from its stack's top layer), in full and LoRA fine-tuning alike; at 1 the optimizer is the
Trainer's own.

The optimizer is built on tiny random Whispers of three encoder and three decoder layers,
without training, so that the rates can be read off its param groups; one short CLI run
shows that a real run trains with it.
"""

from __future__ import annotations

import json
import re

import pytest
from conftest import run_cli

DECAY = 0.5
LR = 1e-3
WEIGHT_DECAY = 0.01
LAYERS = 3
LORA = ("q_proj", "v_proj")


def _model(lora: bool = False):
    """A random Whisper with LAYERS layers in each stack, LoRA-wrapped if asked."""
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    config = WhisperConfig(
        vocab_size=100,
        num_mel_bins=8,
        d_model=16,
        encoder_layers=LAYERS,
        decoder_layers=LAYERS,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_source_positions=8,
        max_target_positions=8,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
    )
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config)
    if lora:
        from peft import LoraConfig, get_peft_model

        from sbasr.core.quiet import quiet_peft

        with quiet_peft():  # as sbasr itself wraps it
            model = get_peft_model(model, LoraConfig(r=2, lora_alpha=4, target_modules=list(LORA)))
    return model


def _trainer(tmp_path, model, decay: float | None, **args):
    """A WhisperTrainer for `model` (decay None: the plain Seq2SeqTrainer) with its optimizer."""
    from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments

    from sbasr.training.whisper import _trainer_class

    targs = Seq2SeqTrainingArguments(
        output_dir=str(tmp_path / "out"),
        learning_rate=LR,
        weight_decay=WEIGHT_DECAY,
        report_to=[],
        use_cpu=True,
        **args,
    )
    if decay is None:
        trainer = Seq2SeqTrainer(model=model, args=targs)
    else:
        trainer = _trainer_class()(model=model, args=targs, layer_lr_decay=decay)
    trainer.create_optimizer()
    return trainer


def _expected_depth(name: str) -> int:
    """The depth the option defines, spelt out independently of the code under test."""
    if m := re.search(r"(encoder|decoder)\.layers\.(\d+)\.", name):
        return LAYERS - 1 - int(m[2])
    if re.search(r"(encoder|decoder)\.(conv1|conv2|embed_positions|embed_tokens)\.", name):
        return LAYERS
    return 0  # the final layer norms, above the top layer


def _group_of(trainer) -> dict[int, dict]:
    return {id(p): g for g in trainer.optimizer.param_groups for p in g["params"]}


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_each_layer_trains_at_decay_to_its_depth_from_its_stacks_top(tmp_path, lora):
    model = _model(lora)
    trainer = _trainer(tmp_path, model, DECAY)
    group_of = _group_of(trainer)
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert len(group_of) == len(trainable)  # every trainable parameter, once, and nothing else
    decayed = set(trainer.get_decay_parameter_names(model))
    seen = set()
    for name, param in trainable.items():
        group = group_of[id(param)]
        depth = _expected_depth(name)
        assert group["lr"] == pytest.approx(LR * DECAY**depth), name
        assert group["weight_decay"] == (WEIGHT_DECAY if name in decayed else 0.0), name
        if "bias" in name or "layer_norm" in name:
            assert group["weight_decay"] == 0.0, name
        seen.add((re.search(r"(encoder|decoder)\.", name)[1], depth))
    if lora:
        assert all("lora_" in n for n in trainable)
        assert {d for _, d in seen} == set(range(LAYERS))
    else:
        assert {d for _, d in seen} == set(range(LAYERS + 1))  # top ... stem
        assert group_of[id(model.model.encoder.conv1.weight)]["lr"] == pytest.approx(
            LR * DECAY**LAYERS
        )
        assert group_of[id(model.model.decoder.embed_tokens.weight)]["lr"] == pytest.approx(
            LR * DECAY**LAYERS
        )
    assert {stack for stack, _ in seen} == {"encoder", "decoder"}


def test_a_frozen_encoder_leaves_the_decoder_counted_from_its_own_top(tmp_path):
    model = _model()
    model.model.encoder.requires_grad_(False)
    trainer = _trainer(tmp_path, model, DECAY)
    group_of = _group_of(trainer)
    assert not any(id(p) in group_of for p in model.model.encoder.parameters())
    top = model.model.decoder.layers[LAYERS - 1].fc1.weight
    bottom = model.model.decoder.layers[0].fc1.weight
    assert group_of[id(top)]["lr"] == pytest.approx(LR)
    assert group_of[id(bottom)]["lr"] == pytest.approx(LR * DECAY ** (LAYERS - 1))


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_decay_one_is_the_trainers_own_optimizer(tmp_path, lora):
    ours = _trainer(tmp_path, _model(lora), 1.0).optimizer
    theirs = _trainer(tmp_path, _model(lora), None).optimizer
    assert type(ours) is type(theirs)
    assert len(ours.param_groups) == len(theirs.param_groups) == 2
    for a, b in zip(ours.param_groups, theirs.param_groups, strict=True):
        assert {k: v for k, v in a.items() if k != "params"} == {
            k: v for k, v in b.items() if k != "params"
        }
        assert [p.shape for p in a["params"]] == [p.shape for p in b["params"]]
        assert a["lr"] == LR


@pytest.mark.parametrize("scheduler", ["linear", "cosine", "inverse_sqrt"])
def test_the_scheduler_keeps_the_ratios_between_layers(tmp_path, scheduler):
    model = _model()
    trainer = _trainer(tmp_path, model, DECAY, lr_scheduler_type=scheduler, warmup_steps=2)
    schedule = trainer.create_scheduler(num_training_steps=10)
    # LambdaLR scales each group from its own initial rate: the one the group was made with
    peaks = [g["initial_lr"] for g in trainer.optimizer.param_groups]
    assert sorted(set(peaks)) == pytest.approx([LR * DECAY**d for d in range(LAYERS, -1, -1)])
    for _ in range(5):
        trainer.optimizer.step()  # no gradients: nothing moves, only the schedule advances
        schedule.step()
        now = schedule.get_last_lr()
        assert now == [g["lr"] for g in trainer.optimizer.param_groups]
        assert 0 < now[0] <= peaks[0]
        for rate, peak in zip(now, peaks, strict=True):
            assert rate / peak == pytest.approx(now[0] / peaks[0])
    assert now[0] < peaks[0]  # past warmup and decaying: the schedule did act


@pytest.mark.parametrize("value", ["1.5", "0", "-0.5"])
def test_a_decay_outside_zero_to_one_is_a_one_line_error(tmp_path, value):
    train = tmp_path / "train.jsonl"
    train.write_text("")
    run = run_cli(
        "finetune",
        "--arch",
        "whisper",
        "--train",
        str(train),
        "-o",
        str(tmp_path / "out"),
        "--layer-lr-decay",
        value,
    )
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert "--layer-lr-decay" in lines[0] and value in lines[0]
    assert not (tmp_path / "out").exists()


def test_a_full_run_with_decay_trains_the_lower_layers_less(corpus, tiny_model, tmp_path):
    from safetensors.torch import load_file

    out = tmp_path / "run"
    result = run_cli(
        "finetune",
        "--arch",
        "whisper",
        "--model",
        str(tiny_model),
        "--method",
        "full",
        "--layer-lr-decay",
        "0.8",
        "--learning-rate",
        "1e-3",
        "--train",
        str(corpus / "train.jsonl"),
        "--dev",
        str(corpus / "dev.jsonl"),
        "-o",
        str(out),
        "--max-steps",
        "2",
        "--eval-steps",
        "2",
        "--batch-size",
        "2",
        "--warmup-steps",
        "0",
        "--quantization",
        "float32",
        "--no-export",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((out / "sbasr-finetune.json").read_text())["layer_lr_decay"] == 0.8
    before, after = (
        load_file(tiny_model / "model.safetensors"),
        load_file(out / "model.safetensors"),
    )

    def moved(name: str) -> float:
        """The largest change of one weight: Adam moves an element by at most about the rate
        each step, and the elements of steady gradient by that much."""
        return (after[name] - before[name]).abs().max().item()

    # one layer a stack: layer 0 is the top (rate 1e-3), the conv stem one below (0.8e-3);
    # without the decay the ratio is 1.00
    top, stem = moved("model.encoder.layers.0.fc1.weight"), moved("model.encoder.conv1.weight")
    assert top > 0
    assert stem / top == pytest.approx(0.8, abs=0.05), (stem, top)
