"""What training the Speech-LLM is set with: the shared training settings, the parts of
the model (`SpeechLLMConfig`, whose defaults these fields take) and the stages.

Torch-free, like every options class: `sbasr finetune`'s flags come from these fields.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from ..core.choices import FUSIONS, PROJECTORS, TRAIN_ENCODER
from ..core.options import option
from ..speechllm.config import SpeechLLMConfig
from .options import TrainOptions

_MODEL = SpeechLLMConfig()  # the model's defaults, so that each is written once


@dataclass(frozen=True)
class Recipe:
    """A training schedule: what `--recipe` sets wherever no flag says otherwise."""

    hypothesis: bool
    select_by: str
    average_best: int
    patience: int
    learning_rate: tuple[float, float]  # stage 1, stage 2
    epochs: tuple[float, float]
    warmup_steps: int
    batch_seconds: float
    eval_steps: int


RECIPES = {
    # For about an hour of speech: the hypothesis-conditioned variant, short batches (many
    # steps an epoch), a higher stage-1 rate, checkpoints chosen by dev WER, early stopping.
    "small-data": Recipe(
        hypothesis=True,
        select_by="wer",
        average_best=1,
        patience=3,
        learning_rate=(5e-4, 2e-4),
        epochs=(1.0, 3.0),
        warmup_steps=20,
        batch_seconds=30.0,
        eval_steps=50,
    ),
    # The paper's (Mei et al.): lr 1e-4 with inverse-sqrt decay, 6 epochs, ~120 s of audio
    # per batch, the 3 best checkpoints by dev loss averaged. Its 4,000 warm-up steps suit
    # thousands of hours, 100 here; its speed perturbation is --speed-perturb 0.9,1.0,1.1.
    "paper": Recipe(
        hypothesis=False,
        select_by="loss",
        average_best=3,
        patience=0,
        learning_rate=(1e-4, 1e-4),
        epochs=(6.0, 6.0),
        warmup_steps=100,
        batch_seconds=120.0,
        eval_steps=200,
    ),
}
_PER_RECIPE = "speechllm: default per --recipe"


@dataclass(kw_only=True)
class SpeechLLMOptions(TrainOptions):
    """The Speech-LLM's training. Fields left None take `recipe`'s value (the learning rate
    and epochs per stage), so a flag the user gives always wins over the recipe."""

    recipe: str = option(
        "small-data",
        "small-data: a schedule for about an hour of speech "
        "(hypothesis-conditioned, dev WER, early stopping); paper: the paper's pure recipe.",
        choices=tuple(RECIPES),
    )
    learning_rate: float | None = option(None, f"Peak learning rate ({_PER_RECIPE} and stage).")
    warmup_steps: int | None = option(None, f"Steps of linear warm-up ({_PER_RECIPE}).", min=0)
    epochs: float | None = option(None, f"Passes over the data ({_PER_RECIPE} and stage).")
    eval_steps: int | None = option(None, f"Score the dev set every N ({_PER_RECIPE}).", min=1)
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
    batch_seconds: float | None = option(
        None, "audio seconds per device batch (default per --recipe).", min=1.0
    )
    average_best: int | None = option(
        None, "average the N best checkpoints, by --select-by (default per --recipe).", min=1
    )
    select_by: str | None = option(
        None,
        "what picks the best checkpoint: the dev set decoded and scored (wer), or the dev "
        "loss (the paper's choice); default per --recipe.",
        choices=("wer", "loss"),
    )
    patience: int | None = option(
        None,
        "stop after N evaluations without a better dev score; 0: never (default per --recipe).",
        min=0,
    )
    hypothesis: bool | None = option(
        None,
        "prompt the LLM with the Whisper model's own transcript too, to read the speech and "
        "correct it (generative error correction; a variant, not the paper's system); "
        "default per --recipe.",
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
    rescore: bool = option(
        False,
        "N-best rescoring: at the end of training, choose on the dev set the weight of "
        "Whisper's score against the LLM's for choosing among Whisper's N-best transcripts "
        "and the LLM's own; saved with the model and used by sbasr transcribe.",
    )
    nbest: int = option(_MODEL.nbest, "Whisper's hypotheses per utterance, for rescoring.", min=1)
    nbest_prompt: int = option(
        _MODEL.nbest_prompt,
        "with --hypothesis: prompt with Whisper's first K transcripts of its N-best list "
        "(correction over the list, HyPoradise style) instead of its 1-best; 0: the 1-best.",
        min=0,
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

    def __post_init__(self) -> None:
        if self.recipe not in RECIPES:  # a CLI choice already; Python callers too
            raise ValueError(f"recipe {self.recipe!r}: use one of {', '.join(RECIPES)}")
        recipe = RECIPES[self.recipe]
        for name in (
            "hypothesis",
            "select_by",
            "average_best",
            "patience",
            "warmup_steps",
            "batch_seconds",
            "eval_steps",
        ):
            if getattr(self, name) is None:
                setattr(self, name, getattr(recipe, name))

    def for_stage(self, stage: int) -> SpeechLLMOptions:
        """These options with the recipe's learning rate and epochs for `stage` (1 or 2)
        where no flag gave them."""
        recipe = RECIPES[self.recipe]
        return replace(
            self,
            learning_rate=self.learning_rate or recipe.learning_rate[stage - 1],
            epochs=self.epochs or recipe.epochs[stage - 1],
        )

    def model_config(self) -> SpeechLLMConfig:
        """The configuration of a fresh model: every field the two classes share, by name;
        the first encoder is `model` (the flag both architectures call --model)."""
        shared = {f.name for f in fields(SpeechLLMConfig)} & {f.name for f in fields(self)}
        return SpeechLLMConfig(**{n: getattr(self, n) for n in shared}, encoder=self.model)
