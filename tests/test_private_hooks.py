"""The library internals `sbasr.core.private_hooks` relies on are still there, and do what
it takes them to do: a transformers or peft version that changes one fails here, by
name, rather than somewhere in a training run."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest
import torch

from sbasr.core import private_hooks


def _tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=32,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
    )
    return LlamaForCausalLM(config)


def test_the_trainer_loads_a_resumed_checkpoint_through_load_from_checkpoint():
    from transformers import Trainer

    params = list(inspect.signature(Trainer._load_from_checkpoint).parameters)
    assert params[:3] == ["self", "resume_from_checkpoint", "model"]
    loop = inspect.getsource(Trainer.train) + inspect.getsource(Trainer._inner_training_loop)
    assert "self._load_from_checkpoint(" in loop


def test_evaluation_runs_evaluation_loop_before_the_callbacks_see_its_metrics():
    from transformers import Trainer
    from transformers.trainer_utils import EvalLoopOutput

    params = inspect.signature(Trainer.evaluation_loop).parameters
    assert "metric_key_prefix" in params and "dataloader" in params
    source = inspect.getsource(Trainer.evaluate)
    assert source.index("self.evaluation_loop(") < source.index("on_evaluate(")
    assert "metrics" in EvalLoopOutput._fields


def test_the_mixin_overrides_exactly_the_trainer_methods_it_names():
    from transformers import Trainer

    for name in ("_load_from_checkpoint", "evaluation_loop"):
        assert name in vars(private_hooks.TrainedWeightsTrainer) and hasattr(Trainer, name)


def test_the_attention_implementation_is_read_as_set():
    model = _tiny_llama()
    model.set_attn_implementation("eager")
    assert private_hooks.attention_implementation(model) == "eager"
    model.set_attn_implementation("sdpa")
    assert private_hooks.attention_implementation(model) == "sdpa"
    assert model.model.config._attn_implementation == "sdpa"  # the body shares it


def test_each_attention_layer_finds_its_own_eager_function():
    from transformers.models.llama import modeling_llama

    model = _tiny_llama()
    layer = model.model.layers[0].self_attn
    assert private_hooks.eager_attention_of(layer) is modeling_llama.eager_attention_forward
    with pytest.raises(RuntimeError):
        private_hooks.eager_attention_of(torch.nn.Linear(2, 2))


def test_peft_keeps_each_lora_dropout_in_a_table_by_adapter_name():
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(
        _tiny_llama(), LoraConfig(r=2, target_modules=["q_proj", "v_proj"], lora_dropout=0.1)
    )
    found = list(private_hooks.lora_dropouts(model))
    assert len(found) == 2  # one layer, two adapted projections
    for table, name, drop in found:
        assert name == "default" and isinstance(drop, torch.nn.Dropout) and table[name] is drop


def test_exit_at_once_flushes_first_and_skips_the_teardown():
    code = (
        "import atexit, sys\n"
        "from sbasr.core.private_hooks import exit_at_once\n"
        "atexit.register(lambda: print('teardown'))\n"
        "print('out', end='')\nprint('err', end='', file=sys.stderr)\nexit_at_once(3)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (run.returncode, run.stdout, run.stderr) == (3, "out", "err")
