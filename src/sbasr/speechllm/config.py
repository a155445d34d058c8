"""What a Speech-LLM is made of, saved beside its weights so that it rebuilds from the
sources; and the names of the files of a trained model.

Torch-free: the training options (`sbasr.training.speechllm_options`) take their defaults from
here, and the CLI reads those at parse time.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..core.constants import DEFAULT_WHISPER_MODEL, SPEECHLLM_CONFIG
from ..core.errors import SbasrError

WEIGHTS_NAME = "model.safetensors"
ADAPTER_DIR = "llm_adapter"
DEFAULT_LLM = "smollm2"
PROMPT = "Transcribe the following audio in {language}:\n"
# The hypothesis-conditioned variant's prompt: Whisper's transcript, then the speech.
HYPOTHESIS_PROMPT = (
    "Transcribe the following audio in {language}. "
    "A first recogniser heard: {hypothesis}\nThe audio:"
)
LLM_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class SpeechLLMConfig:
    """What the model is made of; saved with it, so that it rebuilds from the sources."""

    encoder: str = DEFAULT_WHISPER_MODEL  # Whisper: embedded name, directory or hub id
    encoder2: str | None = None  # HuBERT-style (or a second Whisper), in parallel
    fusion: str = "concat"  # with encoder2 only
    fusion_heads: int = 8
    projector: str = "conv"
    downsample: int = 4
    llm: str = DEFAULT_LLM
    prompt: str = PROMPT
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.1
    lora_targets: tuple[str, ...] = LLM_LORA_TARGETS
    llm_lora: bool = False  # set from stage 2 on
    train_encoder: str = "frozen"
    encoder_lora_targets: tuple[str, ...] = ("q_proj", "v_proj")
    stages_done: list[int] = field(default_factory=list)
    # The hypothesis-conditioned variant (not the paper's system): the prompt also carries
    # the Whisper model's own transcript (`hypothesis_model`, default: the encoder's). On,
    # as in `sbasr finetune`'s default recipe; the paper's plain model sets it off.
    hypothesis: bool = True
    hypothesis_prompt: str = HYPOTHESIS_PROMPT
    hypothesis_model: str | None = None
    ctc_weight: float = 0.0  # the auxiliary CTC alignment loss (speechllm/ctc.py); 0: off
    # The prompt wrapped in the instruct LLM's chat template (user turn, then the
    # assistant's), the format the LLM was tuned on; off: plain text, as in the paper.
    chat_template: bool = False
    dev_wer: float | None = None  # the best dev CER/WER training reached (--select-by wer)
    # Where the encoder and the first pass came from (the model the user named, e.g. a
    # `sbasr finetune --arch whisper` run), and the copies of them kept in the model's own
    # directory (part -> folder name; speechllm/sources.py).
    encoder_origin: str | None = None
    bundled: dict[str, str] = field(default_factory=dict)
    # N-best rescoring (sbasr.asr.rescore): hypotheses per utterance, and the weight of
    # Whisper's log-probability against the LLM's, chosen on the dev set; None: off.
    nbest: int = 5
    # Correction over the N-best list (HyPoradise style): the hypothesis-conditioned prompt
    # carries Whisper's first K transcripts, numbered; 0 or 1: its 1-best alone.
    nbest_prompt: int = 0
    rescore_weight: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SpeechLLMConfig:
        """The configuration a model was saved with; keys it does not know are ignored."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for name in ("lora_targets", "encoder_lora_targets"):  # JSON has lists
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)


def read_config(directory: str | Path) -> SpeechLLMConfig:
    """The configuration saved in a model directory.

    Args:
        directory: The model directory.

    Returns:
        The configuration; keys it does not know are ignored.

    Raises:
        SbasrError: A missing, unreadable, truncated or otherwise invalid file, named (never
            a JSON traceback).
    """
    path = Path(directory) / SPEECHLLM_CONFIG
    if not path.is_file():
        raise SbasrError(
            f"{directory}: not a Speech-LLM model directory (no {SPEECHLLM_CONFIG}); train one "
            "with: sbasr finetune --arch speechllm --train DATA --output-dir DIR"
        )
    damaged = "the file is damaged or incomplete: copy it again from the training run"
    try:
        data = json.loads(path.read_text("utf-8"))
    except OSError as e:
        raise SbasrError(f"{path}: cannot read it: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise SbasrError(f"{path}: not text; {damaged}") from None
    except json.JSONDecodeError as e:
        raise SbasrError(
            f"{path}: not valid JSON ({e.msg}, line {e.lineno} column {e.colno}); {damaged}"
        ) from None
    if not isinstance(data, dict):
        raise SbasrError(f"{path}: not a Speech-LLM configuration (no JSON object); {damaged}")
    try:
        return SpeechLLMConfig.from_dict(data)
    except (TypeError, ValueError) as e:
        raise SbasrError(f"{path}: not a Speech-LLM configuration ({e}); {damaged}") from None
