"""What training the Speech-LLM is set with: the shared training settings, the parts of
the model (`SpeechLLMConfig`, whose defaults these fields take) and the stages.

Torch-free, like every options class: `sbasr finetune`'s flags come from these fields.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from ..choices import FUSIONS, PROJECTORS, TRAIN_ENCODER
from ..options import option
from ..training.options import TrainOptions
from .config import SpeechLLMConfig

_MODEL = SpeechLLMConfig()  # the model's defaults, so that each is written once


@dataclass(kw_only=True)
class SpeechLLMOptions(TrainOptions):
    batch_size: int = option(64, "Utterances per device batch (speechllm: at most).", min=1)
    lr_scheduler: str = option("inverse_sqrt", "A transformers scheduler type, e.g. inverse_sqrt.")
    encoder2: str | None = option(
        _MODEL.encoder2,
        "a second encoder in parallel (HuBERT-style or Whisper; directory or hub id, "
        "e.g. utter-project/mHuBERT-147).",
    )
    fusion: str = option(_MODEL.fusion, "how the two encoders are fused.", choices=FUSIONS)
    projector: str = option(
        _MODEL.projector, "encoder frames to LLM embeddings.", choices=PROJECTORS
    )
    llm: str = option(_MODEL.llm, "smollm2 (offline), a directory, .gguf or hub id.")
    prompt: str = option(_MODEL.prompt, "the prompt, with {language} in it.")
    lora_r: int = option(_MODEL.lora_r, "LoRA rank.", min=1)
    lora_alpha: int = option(_MODEL.lora_alpha, "LoRA alpha.", min=1)
    lora_dropout: float = option(_MODEL.lora_dropout, "LoRA dropout.", min=0.0)
    lora_targets: tuple[str, ...] = option(_MODEL.lora_targets, "Modules LoRA adapts.")
    train_encoder: str = option(
        _MODEL.train_encoder,
        "the encoders frozen, with LoRA, or in full.",
        choices=TRAIN_ENCODER,
    )
    stages: tuple[int, ...] = option((1, 2), "1, 2 or 1,2.", flags=("--stages", "--stage"))
    init: str | None = option(None, "the stage-1 model stage 2 starts from.", path=True)
    # the paper's per-GPU budget
    batch_seconds: float = option(120.0, "audio seconds per device batch.", min=1.0)
    average_best: int = option(1, "average the N best checkpoints (by --select-by).", min=1)
    select_by: str = option(
        "wer",
        "what picks the best checkpoint: the dev set decoded and scored (wer), or the dev "
        "loss (the paper's choice).",
        choices=("wer", "loss"),
    )
    patience: int = option(
        0, "stop after N evaluations without a better dev score; 0: never.", min=0
    )
    hypothesis: bool = option(
        _MODEL.hypothesis,
        "prompt the LLM with the Whisper model's own transcript too, to read the speech and "
        "correct it (generative error correction; a variant, not the paper's system).",
    )
    hypothesis_model: str | None = option(
        _MODEL.hypothesis_model, "the Whisper model that writes the hypotheses (default: --model)."
    )
    ctc_weight: float = option(
        _MODEL.ctc_weight,
        "weight of an auxiliary CTC loss that pulls each projected speech position toward "
        "the LLM's own embedding of what is said there (0: off).",
        min=0.0,
    )
    chat_template: bool = option(
        _MODEL.chat_template,
        "wrap the prompt in the instruct LLM's chat template (a user turn holding the "
        "prompt and the speech; the transcript is the assistant's turn).",
    )
    encoder_cache: str = option(
        "auto",
        "auto: frozen encoders' outputs computed once per utterance and reused every "
        "epoch and stage; off: the encoders run every step.",
        choices=("auto", "off"),
    )
    encoder_cache_dir: str | None = option(
        None,
        "where cached encoder outputs are kept (default: the user cache directory).",
        path=True,
    )

    def model_config(self) -> SpeechLLMConfig:
        """The configuration of a fresh model: every field the two classes share, by name;
        the first encoder is `model` (the flag both architectures call --model)."""
        shared = {f.name for f in fields(SpeechLLMConfig)} & {f.name for f in fields(self)}
        return SpeechLLMConfig(**{n: getattr(self, n) for n in shared}, encoder=self.model)
