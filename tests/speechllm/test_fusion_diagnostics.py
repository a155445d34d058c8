"""Fusion diagnostics: the attention entropy and gate mean that cross-attention layers keep
when asked, and the callback that logs them (and warns on uniform attention) in training."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from conftest import build, waves
from torch import nn
from transformers import TrainerControl, TrainerState, TrainingArguments
from transformers.integrations import TensorBoardCallback
from transformers.trainer_callback import CallbackHandler, DefaultFlowCallback

from sbasr.speechllm.diagnostics import FusionDiagnostics
from sbasr.speechllm.fusion import Fusion

CROSS = ["uni-cross", "bi-cross", "gated-bi-cross", "gated-bi-cross-concat"]


def batch(w_dim: int = 16, m_dim: int = 8, seed: int = 0):
    """Two utterances, the second padded after 3 of 6 frames (its padding made loud)."""
    g = torch.Generator().manual_seed(seed)
    w, m = torch.randn(2, 6, w_dim, generator=g), torch.randn(2, 6, m_dim, generator=g)
    mask = torch.tensor([[True] * 6, [True] * 3 + [False] * 3])
    w[1, 3:], m[1, 3:] = 100.0, -100.0
    return w, m, mask


def reference_entropy(layer, x, y, mask) -> float:
    """Each utterance alone through torch's own attention weights."""
    values = []
    for b in range(x.shape[0]):
        n = int(mask[b].sum())
        with torch.no_grad():
            _, p = layer.attn(
                x[b : b + 1, :n], y[b : b + 1, :n], y[b : b + 1, :n], average_attn_weights=False
            )
        values.append(-(torch.special.xlogy(p, p)).sum(-1).flatten() / math.log(n))
    return float(torch.cat(values).mean())


def flatten(layer) -> None:
    """Zero query projection: every frame attends to all the other stream's frames alike."""
    attn = layer.attn
    with torch.no_grad():
        if attn._qkv_same_embed_dim:
            attn.in_proj_weight[: attn.embed_dim] = 0
        else:
            attn.q_proj_weight.zero_()
        attn.in_proj_bias[: attn.embed_dim] = 0


@pytest.mark.parametrize("kind", CROSS)
@pytest.mark.parametrize("dims", [(16, 8), (16, 16)])  # separate and packed projections
def test_entropy_matches_torch_and_outputs_do_not_change(kind, dims):
    torch.manual_seed(0)
    fusion = Fusion(kind, *dims, heads=2).eval()
    w, m, mask = batch(*dims)
    assert not fusion.diagnose and fusion.w_to_m.entropy is None
    with torch.no_grad():
        off = fusion(w, m, mask)
        fusion.diagnose = True
        on = fusion(w, m, mask)
    assert fusion.diagnose and torch.equal(on, off)
    for name, layer in fusion.layers().items():
        x, y = (w, m) if name == "w_to_m" else (m, w)
        assert 0.0 <= layer.entropy <= 1.0
        assert layer.entropy == pytest.approx(reference_entropy(layer, x, y, mask), abs=1e-5)
        if kind.startswith("gated"):
            assert 0.0 < layer.gate_mean < 1.0
            with torch.no_grad():
                gates = torch.sigmoid(layer.gate(layer.attn(x, y, y, key_padding_mask=~mask)[0]))
            assert layer.gate_mean == pytest.approx(float(gates[mask].mean()), abs=1e-6)
        else:
            assert layer.gate_mean is None
    assert set(fusion.layers()) == ({"w_to_m"} if kind == "uni-cross" else {"w_to_m", "m_to_w"})


def test_uniform_and_peaked_attention():
    torch.manual_seed(0)
    fusion = Fusion("gated-bi-cross", 16, 8, heads=2).eval()
    fusion.diagnose = True
    w, m, mask = batch()
    flatten(fusion.w_to_m)
    with torch.no_grad():
        fusion.m_to_w.attn.q_proj_weight.mul_(50.0)  # sharp: near one-hot attention
        fusion(w, m, mask)
    assert fusion.w_to_m.entropy == pytest.approx(1.0, abs=1e-6)
    assert fusion.m_to_w.entropy < 0.5


def test_speechllm_fusion_in_a_padded_batch(parts):
    model = build(parts, encoder2=parts["hubert-layer"], fusion="gated-bi-cross")
    audio = waves(1.3, 0.7)
    with torch.no_grad():
        off, _ = model.encode(audio)
        model.fusion.diagnose = True
        on, _ = model.encode(audio)
    assert torch.equal(on, off)
    for layer in model.fusion.layers().values():
        assert 0.0 <= layer.entropy <= 1.0 and 0.0 < layer.gate_mean < 1.0


def state_at(step: int) -> TrainerState:
    state = TrainerState()
    state.global_step = step
    return state


def test_callback_averages_logs_and_warns_once(parts, recwarn):
    model = build(parts, encoder2=parts["hubert-layer"], fusion="bi-cross")
    flatten(model.fusion.m_to_w)
    args, control = TrainingArguments(output_dir="unused", report_to="none"), TrainerControl()
    callback = FusionDiagnostics()
    callback.on_train_begin(args, state_at(0), control, model=model)
    audio = waves(1.3, 0.7)
    seen = {name: [] for name in model.fusion.layers()}
    with torch.no_grad():
        for seconds in (audio, audio[:1]):
            model.train()
            model.encode(seconds)
            for name, layer in model.fusion.layers().items():
                seen[name].append(layer.entropy)
        model.eval()
        model.fusion.w_to_m.entropy = None
        model.encode(audio)  # not a training pass: neither measured nor counted
        assert model.fusion.w_to_m.entropy is None
    state = state_at(2)
    state.log_history.append({"loss": 1.0, "step": 2})
    logs = {"loss": 1.0}
    callback.on_log(args, state, control, logs=logs)
    for name, values in seen.items():
        key = f"fusion/{name}/attention_entropy"
        assert logs[key] == pytest.approx(sum(values) / 2)
        assert state.log_history[-1][key] == logs[key]
    assert f"fusion/{name}/gate_mean" not in logs  # ungated
    assert logs["fusion/m_to_w/attention_entropy"] == pytest.approx(1.0, abs=1e-5)
    messages = [str(w.message) for w in recwarn.list]
    assert len(messages) == 1 and "m_to_w" in messages[0] and "uniform" in messages[0]

    logs = {"eval_loss": 1.0}  # nothing trained since: nothing added
    callback.on_log(args, state, control, logs=logs)
    assert logs == {"eval_loss": 1.0}
    with torch.no_grad():
        model.train()
        model.encode(audio)
    logs = {}
    callback.on_log(args, state_at(3), control, logs=logs)
    assert "fusion/m_to_w/attention_entropy" in logs and len(recwarn.list) == 1  # once
    callback.on_train_end(args, state, control)
    assert not model.fusion.diagnose


def test_callback_without_fusion_is_a_no_op(parts):
    model = build(parts)
    args, control = TrainingArguments(output_dir="unused", report_to="none"), TrainerControl()
    callback = FusionDiagnostics()
    callback.on_train_begin(args, state_at(0), control, model=model)
    with torch.no_grad():
        model.train()
        model.encode(waves(0.7))
    logs = {"loss": 1.0}
    callback.on_log(args, state_at(1), control, logs=logs)
    callback.on_train_end(args, state_at(1), control)
    assert logs == {"loss": 1.0}


class Writer:
    """What TensorBoardCallback writes, kept."""

    def __init__(self) -> None:
        self.scalars: dict[str, list[tuple[int, float]]] = {}

    def add_scalar(self, tag, value, step) -> None:
        self.scalars.setdefault(tag, []).append((step, value))

    def add_text(self, *a) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class FusedRegressor(nn.Module):
    """A fusion alone under a loss, for the Trainer."""

    def __init__(self) -> None:
        super().__init__()
        self.fusion = Fusion("gated-bi-cross", 16, 8, heads=2)

    def forward(self, w, m, mask, **kw):
        out = self.fusion(w, m, mask)
        return {"loss": out.pow(2).mean()}


def test_values_reach_tensorboard_through_the_trainer(tmp_path):
    """The real Trainer and CallbackHandler: this callback before the TensorBoard one."""
    from transformers import Trainer

    w, m, mask = batch()
    data = [{"w": w[i], "m": m[i], "mask": mask[i]} for i in range(2)] * 4
    writer = Writer()
    args = TrainingArguments(
        output_dir=str(tmp_path),
        report_to="none",
        max_steps=4,
        logging_steps=2,
        per_device_train_batch_size=2,
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=FusedRegressor(),
        args=args,
        train_dataset=data,
        callbacks=[FusionDiagnostics(), TensorBoardCallback(tb_writer=writer)],
    )
    assert isinstance(trainer.callback_handler, CallbackHandler)
    assert any(isinstance(cb, DefaultFlowCallback) for cb in trainer.callback_handler.callbacks)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a random fusion may well look uniform
        trainer.train()
    for name in ("w_to_m", "m_to_w"):
        for metric in ("attention_entropy", "gate_mean"):
            values = writer.scalars[f"train/fusion/{name}/{metric}"]
            assert [step for step, _ in values] == [2, 4]
            assert all(0.0 <= v <= 1.0 for _, v in values)
    history = [h for h in trainer.state.log_history if "fusion/w_to_m/gate_mean" in h]
    assert [h["step"] for h in history] == [2, 4]
    assert not trainer.model.fusion.diagnose
