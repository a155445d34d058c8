"""What fine-tuning Whisper is set with: the shared training settings and Whisper's own.

Torch-free, like every options class: `sbasr finetune`'s flags come from these fields.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..choices import METHODS, QUANTIZATIONS
from ..options import option
from ..training.options import TrainOptions


@dataclass(kw_only=True)
class WhisperOptions(TrainOptions):
    method: str = option("lora", "lora or all weights.", choices=METHODS)
    freeze_encoder: bool = option(False, "train the decoder only.")
    spec_augment: bool = option(False, "SpecAugment masking.")
    # the paper's LoRA: r 32, alpha 64, dropout 0.05 on q and v
    lora_r: int = option(32, "LoRA rank.", min=1)
    lora_alpha: int = option(64, "LoRA alpha.", min=1)
    lora_dropout: float = option(0.05, "LoRA dropout.", min=0.0)
    lora_targets: tuple[str, ...] = option(("q_proj", "v_proj"), "Modules LoRA adapts.")
    export: bool = option(True, "export to CTranslate2 at the end.")
    quantization: str = option("int8", "of the export.", choices=QUANTIZATIONS)
    eval_batch_size: int = option(8, "Utterances per batch when decoding the dev set.", cli=False)
