"""The Speech-LLM's prompt: the instruction with the language's English name (and, for a
hypothesis-conditioned model, Whisper's transcript), plain or in the LLM's chat template."""

from __future__ import annotations

from ..core.errors import SbasrError
from ..io.languages import name as language_name
from .config import SpeechLLMConfig

_SPEECH_MARK = "\x00speech\x00"  # where the speech goes in a rendered chat template


def prompt_ids(
    spec: SpeechLLMConfig, tokenizer, language: str | None, hypothesis: str | None = None
) -> list[int]:
    """The token ids before the speech: [bos] + the prompt, or the chat template's part.

    Args:
        spec: The model's configuration (its prompts and whether it uses a chat template).
        tokenizer: The LLM's tokenizer.
        language: The utterance's language code.
        hypothesis: Whisper's transcript, for a hypothesis-conditioned model.

    Returns:
        The prompt's token ids.

    Raises:
        SbasrError: no language, or a chat template asked of a tokenizer without one.
    """
    if not language:
        raise SbasrError("the Speech-LLM is prompted with the language; none was given")
    if spec.hypothesis:
        text = spec.hypothesis_prompt.format(
            language=language_name(language), hypothesis=(hypothesis or "").strip()
        )
    else:
        text = spec.prompt.format(language=language_name(language))
    if spec.chat_template:
        return _chat_parts(spec, tokenizer, text)[0]
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    return bos + tokenizer.encode(text, add_special_tokens=False)


def speech_suffix(spec: SpeechLLMConfig, tokenizer) -> list[int]:
    """Tokens between the speech and the transcript: the end of the chat template's user
    turn and the start of the assistant's; none for a plain prompt."""
    if not spec.chat_template:
        return []
    return _chat_parts(spec, tokenizer, "")[1]


def _chat_parts(spec: SpeechLLMConfig, tokenizer, text: str) -> tuple[list[int], list[int]]:
    """The chat template around `text` + speech, split at the speech: (before, after)."""
    if not getattr(tokenizer, "chat_template", None):
        raise SbasrError(f"{spec.llm}: the LLM's tokenizer has no chat template")
    turn = [{"role": "user", "content": text + _SPEECH_MARK}]
    rendered = tokenizer.apply_chat_template(turn, add_generation_prompt=True, tokenize=False)
    before, after = rendered.split(_SPEECH_MARK)
    return (
        tokenizer.encode(before, add_special_tokens=False),
        tokenizer.encode(after, add_special_tokens=False),
    )
