"""A Speech-LLM built on a Whisper model, fine-tuned or not: its encoder from that
model, and its first pass (the hypotheses it corrects or rescores) from the same model's
CTranslate2 export, unless `--hypothesis-model` names another."""

from __future__ import annotations

from dataclasses import replace

from ..whisper.run_dir import whisper_source
from .config import SpeechLLMConfig


def stacked_config(config: SpeechLLMConfig, echo=print) -> SpeechLLMConfig:
    """`config` with its encoder resolved from the Whisper model it names.

    Args:
        config: a fresh model's configuration; `encoder` is what the user gave as --model
            (an embedded name, a Whisper directory, a `sbasr finetune --arch whisper`
            run, full or LoRA, or a hub id).
        echo: where to say what was found.

    Returns:
        The configuration with `encoder` loadable by transformers (a LoRA run merged into
        its base), `encoder_origin` the model named, and `hypothesis_model` the run's
        export where none was given.

    Raises:
        SbasrError: the model is none of those (`whisper_source`).
    """
    source = whisper_source(config.encoder)
    first_pass = config.hypothesis_model
    if first_pass is None and source.first_pass != source.encoder:
        first_pass = source.first_pass
    if source.kind == "lora":
        echo(f"encoder: the LoRA run {source.source}, merged into its base ({source.encoder})")
    if first_pass and first_pass != config.hypothesis_model:
        echo(f"first pass: {first_pass}")
    return replace(
        config, encoder=source.encoder, encoder_origin=source.source, hypothesis_model=first_pass
    )
