"""Decoding with a Speech-LLM: batched greedy search (or transformers' beam search) with
the KV cache, each row bounded by its own token budget and stopped when it loops."""

from __future__ import annotations

import inspect

import numpy as np
import torch
from torch import nn

from ..core.constants import SAMPLE_RATE, SPEECHLLM_MAX_NEW_TOKENS
from ..core.text import collapse_repetitions


@torch.inference_mode()
def transcribe(
    model: nn.Module,
    audio: list[np.ndarray],
    languages: list[str],
    max_new_tokens: int = SPEECHLLM_MAX_NEW_TOKENS,
    beam_size: int = 1,
    hypotheses: list[str] | None = None,
) -> list[str]:
    """Greedy (or beam) transcripts of a batch of utterances, with the KV cache.

    Each row writes at most `max_new_tokens`, and no more than its own utterance can hold
    (`token_budget`); a row stops early when it loops (`RepetitionStop`), and the loop is cut
    to one copy. Both are per row, so that a batch runs no longer than its slowest row alone
    would, and a row's text does not depend on its batch.

    Args:
        model: The Speech-LLM.
        audio: The utterances, 16 kHz mono.
        languages: Each utterance's language code.
        max_new_tokens: The most tokens any row writes.
        beam_size: 1 for greedy search, else a beam search of that width.
        hypotheses: For a hypothesis-conditioned model, Whisper's text of each utterance.

    Returns:
        One transcript per utterance, in order.
    """
    from transformers import StoppingCriteriaList

    hyps = hypotheses or [None] * len(audio)
    prompts = [model.prompt_ids(lang, h) for lang, h in zip(languages, hyps)]
    embeds, mask, _ = model._sequences(audio, prompts, None, left_pad=True)
    tok = model.tokenizer
    budgets = [min(max_new_tokens, token_budget(len(a) / SAMPLE_RATE)) for a in audio]
    stop = RepetitionStop()
    if beam_size == 1:
        out = model._greedy(embeds, mask, budgets, stop)
    else:
        out = model.llm.generate(
            inputs_embeds=embeds,
            attention_mask=mask,
            max_new_tokens=max(budgets),
            num_beams=beam_size,
            do_sample=False,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
            use_cache=True,
            stopping_criteria=StoppingCriteriaList([stop, RowBudget(budgets)]),
        )
    texts = tok.batch_decode(out, skip_special_tokens=True)
    return [collapse_repetitions(t, max_n=stop.longest, min_repeats=stop.repeats) for t in texts]


def greedy(
    model: nn.Module,
    embeds: torch.Tensor,
    mask: torch.Tensor,
    budgets: list[int],
    stop: RepetitionStop,
) -> list[list[int]]:
    """Greedy decoding that drops each row from the batch as soon as it ends (its end
    token, its budget or a loop), the KV cache's row with it.

    transformers' `generate` steps every row until the last one ends: on a CPU a
    batch whose one clip rambles to its budget cost eight rows a step all along.
    Argmax of the same logits as `generate` (no logits processors, as it has none
    for a greedy search here); the tests check the texts are the same."""
    eos = model.tokenizer.eos_token_id
    causal = model.llm.get_base_model() if hasattr(model.llm, "get_base_model") else model.llm
    params = inspect.signature(causal.forward).parameters
    # the cache and the logits-to-keep arguments by the names this transformers uses
    cache_arg = "cache" if "cache" in params else "past_key_values"
    keep = {k: 1 for k in ("logits_to_keep", "num_logits_to_keep") if k in params}
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding: count real tokens
    out = causal(
        inputs_embeds=embeds,
        attention_mask=mask,
        position_ids=positions,
        use_cache=True,
        **keep,
    )
    following = positions[:, -1:] + 1
    written: list[list[int]] = [[] for _ in budgets]
    rows = list(range(len(budgets)))  # the utterance of each row still in the batch
    while rows:
        tokens = out.logits[:, -1].argmax(-1).tolist()
        going = []
        for k, (row, token) in enumerate(zip(rows, tokens)):
            if token == eos:
                continue
            written[row].append(token)
            if len(written[row]) < budgets[row] and not stop.loops(written[row]):
                going.append(k)
        if not going:
            break
        cache = getattr(out, cache_arg)
        if len(going) < len(rows):
            index = torch.tensor(going, device=mask.device)
            cache.batch_select_indices(index)
            mask, following = mask[index], following[index]
            rows, tokens = [rows[k] for k in going], [tokens[k] for k in going]
        mask = torch.cat([mask, mask.new_ones(len(rows), 1)], dim=1)
        out = causal(
            input_ids=torch.tensor(tokens, device=mask.device)[:, None],
            attention_mask=mask,
            position_ids=following,
            use_cache=True,
            **{cache_arg: cache},
        )
        following = following + 1
    return written


def token_budget(seconds: float) -> int:
    """The most tokens `seconds` of speech can need: fast speech is about 4 words a
    second, and a byte-level tokenizer may spend 5 tokens on a word of a script it saw
    little of (Russian, Thai), so 20 a second and a floor of 16 for short clips. An
    undertrained model that rambles stops there instead of at the global cap."""
    return max(16, int(20 * seconds) + 1)


class RepetitionStop:
    """Stops a row whose last n tokens (n <= 32: a phrase or a whole sentence) were just
    written 4 times in a row: the decoder's loop, which would otherwise run to the token
    limit. What it wrote is kept, and `collapse_repetitions` then keeps one copy."""

    def __init__(self, repeats: int = 4, longest: int = 32) -> None:
        self.repeats, self.longest = repeats, longest

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        rows = input_ids.tolist()
        return torch.tensor(
            [self.loops(row) for row in rows], dtype=torch.bool, device=input_ids.device
        )

    def loops(self, row: list[int]) -> bool:
        for n in range(1, self.longest + 1):
            if len(row) < n * self.repeats:
                break
            tail = row[-n:]
            if all(row[-(k + 1) * n : len(row) - k * n] == tail for k in range(1, self.repeats)):
                return True
        return False


class RowBudget:
    """Stops each row at its own number of new tokens (rows of a beam search share their
    utterance's), so that a short clip batched with a long one writes no more than it
    would alone."""

    def __init__(self, budgets: list[int]) -> None:
        self.budgets = budgets

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        # Generating from embeddings, input_ids holds the new tokens only; beam search
        # passes its rows utterance by utterance, a fixed number each.
        rows, written = input_ids.shape
        budgets = torch.tensor(self.budgets, device=input_ids.device)
        return budgets.repeat_interleave(rows // len(self.budgets)) <= written
