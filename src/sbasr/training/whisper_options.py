"""What fine-tuning Whisper is set with: the shared training settings and Whisper's own.

Torch-free, like every options class: `sbasr finetune`'s flags come from these fields.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.choices import METHODS, QUANTIZATIONS
from ..core.constants import DEFAULT_QUANTIZATION
from ..core.options import option
from .options import TrainOptions


@dataclass(kw_only=True)
class WhisperOptions(TrainOptions):
    method: str = option("lora", "lora or all weights.", choices=METHODS)
    freeze_encoder: bool = option(False, "train the decoder only.")
    spec_augment: bool = option(False, "SpecAugment masking.")
    layer_lr_decay: float = option(
        1.0,
        "Layer-wise learning-rate decay, above 0 and at most 1 (1 is off): each encoder and "
        "decoder layer trains at the peak rate times decay^(its distance from its stack's top "
        "layer), the embeddings and conv stem one step below layer 0, so the lower, more "
        "general layers change less, as in BERT and Whisper fine-tuning practice.",
    )
    # the paper's LoRA: r 32, alpha 64, dropout 0.05 on q and v
    lora_r: int = option(32, "LoRA rank.", min=1)
    lora_alpha: int = option(64, "LoRA alpha.", min=1)
    lora_dropout: float = option(0.05, "LoRA dropout.", min=0.0)
    lora_targets: tuple[str, ...] = option(("q_proj", "v_proj"), "Modules LoRA adapts.")
    export: bool = option(True, "export to CTranslate2 at the end.")
    quantization: str = option(DEFAULT_QUANTIZATION, "of the export.", choices=QUANTIZATIONS)
    eval_batch_size: int = option(8, "Utterances per batch when decoding the dev set.", cli=False)
