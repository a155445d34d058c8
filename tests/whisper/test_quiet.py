"""Nothing a user cannot act on: no progress bar per model loaded during an export, no
offline hub lookups warned about when an adapter is saved, no redrawn progress bars in a
log that is not a terminal; each silenced only around its own call."""

from __future__ import annotations

import warnings

from conftest import run_cli

from sbasr.whisper.models import transformers_dir


def test_export_prints_no_progress_bars_and_restores_them(tmp_path):
    from transformers.utils import logging as hf_logging

    out = run_cli("export", str(transformers_dir("tiny.en")), "-o", str(tmp_path / "ct2"))
    assert out.returncode == 0, out.stderr
    assert "Loading weights" not in out.stderr and "it/s" not in out.stderr, out.stderr
    from sbasr.whisper.export import export_ct2

    assert hf_logging.is_progress_bar_enabled()
    export_ct2(transformers_dir("tiny.en"), tmp_path / "again")
    assert hf_logging.is_progress_bar_enabled()  # the caller's setting, as it was


def test_saving_an_adapter_of_an_embedded_base_warns_of_no_hub_lookup(tiny_model, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import WhisperForConditionalGeneration

    from sbasr.core.quiet import quiet_adapter_save

    base = WhisperForConditionalGeneration.from_pretrained(tiny_model)
    model = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj"]))
    model.peft_config["default"].base_model_name_or_path = "base"  # as finetune names it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_adapter_save():
            model.save_pretrained(tmp_path / "adapter")
        warnings.warn("the caller's own", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["the caller's own"]
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()


def test_the_trainer_draws_no_progress_bar_into_a_log(tmp_path, noise_corpus):
    from sbasr.training.arguments import training_arguments
    from sbasr.training.whisper_options import WhisperOptions

    opts = WhisperOptions(train=str(noise_corpus / "train.jsonl"), output_dir=str(tmp_path))
    args = training_arguments(opts, "wer", False)
    assert args.disable_tqdm  # pytest's stderr is no terminal
