"""The instruct LLM's chat template around the prompt (`--chat-template`): the speech sits
inside the user turn, the transcript is the assistant's, and only the transcript is learnt."""

from __future__ import annotations

import pytest
import torch
from conftest import build, waves

from sbasr.core.errors import SbasrError


def test_speech_sits_in_the_user_turn_and_only_the_transcript_is_learnt(parts):
    model = build(parts, chat_template=True)
    tok = model.tokenizer  # the tiny LLM carries conftest's CHAT_TEMPLATE
    prompt = model.prompt_ids("en")
    suffix = model.speech_suffix()
    assert tok.decode(prompt).startswith(
        "<|startoftranscript|>user: Transcribe the following audio"
    )
    assert tok.decode(suffix) == "<|endoftext|> assistant:"

    (audio,) = waves(1.0)
    target = model.target_ids("hello there")
    speech, lengths = model.encode([audio])
    embeds, _, labels = model._assemble(speech, lengths, [prompt], [target], False)
    n = int(lengths[0])
    assert embeds.shape[1] == len(prompt) + n + len(suffix) + len(target)
    masked = len(prompt) + n + len(suffix)
    assert labels[0, :masked].eq(-100).all() and labels[0, masked:].tolist() == target
    # the suffix's embeddings follow the speech
    table = model.llm.get_input_embeddings()
    after = embeds[0, len(prompt) + n : masked]
    assert torch.equal(after, table(torch.tensor(suffix)).to(after.dtype))
    assert len(model.transcribe([audio], ["en"], max_new_tokens=3)) == 1


def test_plain_prompt_has_no_suffix_and_a_missing_template_is_named(parts):
    assert build(parts).speech_suffix() == []
    model = build(parts, chat_template=True)
    model.tokenizer.chat_template = None
    with pytest.raises(SbasrError, match="has no chat template"):
        model.prompt_ids("en")
