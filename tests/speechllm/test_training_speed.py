"""What makes a Speech-LLM training step cheaper on a CPU changes nothing it computes: the
cheaper LoRA dropout keeps torch's distribution, and eager attention the same loss."""

from __future__ import annotations

import pytest
import torch
from conftest import build, waves

from sbasr.speechllm.dropout import CpuDropout
from sbasr.training.speechllm_data import collate
from sbasr.training.speechllm_trainer import training_attention


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


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_packed_rows_give_the_llms_own_loss_and_gradients_on_padded_rows(parts, attention):
    """The loss runs the LLM on the batch's real positions only (packed); the LLM's own
    loss on the padded batch, and its gradients, are the reference."""
    model = build(parts)
    model.set_stage(2)
    model.eval()  # no dropout: both ways must see the same network
    llm = model.llm.get_base_model()
    llm.set_attn_implementation(attention)
    texts = ("one two", "three four five six seven", "eight")
    items = [
        {"audio": a, "prompt_ids": model.prompt_ids(lang), "labels": model.target_ids(text)}
        for a, lang, text in zip(waves(1.0, 0.4, 1.7), ("en", "fr", "en"), texts)
    ]
    batch = collate(items)
    targets = [row[row != -100].tolist() for row in batch["labels"]]
    speech, lengths = model.encode(batch["audio"])
    embeds, mask, labels = model._assemble(speech, lengths, batch["prompt_ids"], targets, False)
    assert (mask == 0).any()  # rows of unequal lengths: there is padding to leave out

    embeds = embeds.detach().requires_grad_()
    theirs = llm(inputs_embeds=embeds, attention_mask=mask, labels=labels).loss
    theirs.backward()
    expected = embeds.grad.clone()
    embeds.grad = None
    ours = model._text_loss(embeds, mask, labels)
    ours.backward()
    assert torch.allclose(ours, theirs, atol=1e-5)
    assert torch.allclose(embeds.grad, expected, atol=1e-6)
    assert llm.config._attn_implementation == attention  # as it was, afterwards

    # each row's own total is what it scores alone
    picked, rows = model._label_log_probs(embeds.detach(), mask, labels)
    totals = torch.zeros(3).index_add_(0, rows, picked.detach())
    for i in range(3):
        n = int(mask[i].sum())
        one = (embeds[i : i + 1, :n].detach(), mask[i : i + 1, :n], labels[i : i + 1, :n])
        alone = model._label_log_probs(*one)[0]
        assert torch.allclose(totals[i], alone.sum(), atol=1e-5)


def test_a_frozen_output_layer_is_cast_once_under_autocast_and_again_when_it_changes(parts):
    model = build(parts)
    model.set_stage(2)
    head = model.llm.get_base_model().get_output_embeddings()
    assert not head.weight.requires_grad
    hidden = torch.randn(5, head.weight.shape[1])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected = head(hidden)  # autocast's own cast, each call
        first = model._output_layer(head, hidden)
        kept = model._head_cast[1]
        again = model._output_layer(head, hidden)
        assert model._head_cast[1] is kept  # not cast a second time
        assert torch.equal(first, expected) and torch.equal(again, expected)
        with torch.no_grad():
            head.weight.mul_(2)  # changed in place: cast anew
        changed = model._output_layer(head, hidden)
        assert model._head_cast[1] is not kept
        assert torch.equal(changed, head(hidden))
    assert torch.equal(model._output_layer(head, hidden), head(hidden))  # no autocast
    assert model._head_cast is None  # nothing kept outside autocast
