"""What makes a Speech-LLM training step cheaper on a CPU changes nothing it computes: the
cheaper LoRA dropout keeps torch's distribution, and eager attention the same loss."""

from __future__ import annotations

import pytest
import torch
from conftest import build, waves

from sbasr.speechllm.dropout import CpuDropout
from sbasr.speechllm.train import collate, training_attention


def test_cpu_dropout_keeps_the_distribution_and_the_mean():
    drop = CpuDropout(0.1).train()
    x = torch.ones(1_000_000)
    torch.manual_seed(0)
    y = drop(x)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.9) < 0.002  # torch: Bernoulli(0.9) per element
    assert torch.allclose(y[kept], torch.full_like(y[kept], drop.scale))
    assert abs(drop.scale - 1 / 0.9) < 1e-4 and abs(y.mean().item() - 1.0) < 0.003
    # the 4 elements cut from one 64-bit draw are independent of each other
    lanes = kept.view(-1, 4).float()
    both = (lanes[:, 0] * lanes[:, 3]).mean().item()
    assert abs(both - 0.81) < 0.003
    # seeded by torch's generator; a fresh mask each call; nothing dropped in eval
    torch.manual_seed(0)
    assert torch.equal(drop(x), y)
    assert not torch.equal(drop(x), y)
    assert torch.equal(drop.eval()(x), x)
    # bf16 inputs stay bf16, and the gradient flows through the kept elements only
    x = torch.randn(64, 576, dtype=torch.bfloat16, requires_grad=True)
    out = drop.train()(x)
    out.sum().backward()
    assert out.dtype == torch.bfloat16
    assert torch.equal(x.grad != 0, out != 0)
    with pytest.raises(ValueError):
        CpuDropout(1.0)


def test_every_lora_dropout_is_the_cheaper_one(parts):
    model = build(parts, train_encoder="lora")
    model.set_stage(2)
    drops = [m for n, m in model.named_modules() if ".lora_dropout." in n]
    lora_layers = [m for m in model.modules() if hasattr(m, "lora_A")]
    assert len(drops) == len(lora_layers) > 7
    assert all(type(d) is CpuDropout and d.p == 0.1 for d in drops)
    assert any(n.startswith("encoder.") for n, m in model.named_modules() if m in drops)


def test_eager_attention_while_training_on_a_cpu_gives_the_same_loss(parts):
    model = build(parts)
    model.set_stage(2)
    llm = model.llm.get_base_model()
    items = [
        {"audio": a, "prompt_ids": model.prompt_ids(lang), "labels": model.target_ids(text)}
        for a, lang, text in zip(waves(1.0, 1.7), ("en", "fr"), ("one two", "three four five"))
    ]
    batch = collate(items)  # rows of unequal lengths: padding is masked either way
    with torch.no_grad():
        fused = model(**batch)["loss"]
        assert llm.config._attn_implementation == "sdpa"
        with training_attention(model, torch.device("cpu")):
            assert llm.config._attn_implementation == "eager"
            eager = model(**batch)["loss"]
        assert llm.config._attn_implementation == "sdpa"  # as it was, afterwards
        with training_attention(model, torch.device("cuda")):  # never built: only asked
            assert llm.config._attn_implementation == "sdpa"
    assert torch.allclose(fused, eager, atol=1e-5)
