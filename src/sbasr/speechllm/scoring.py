"""The Speech-LLM's log-probability of given texts, each conditioned on its utterance and
prompt: what rescoring and the correction check compare transcripts by.

`score` runs each distinct prefix (prompt, speech, and the tokens before the transcript)
through the LLM once, and scores every text of that prefix from its KV cache, repeated
over the texts: an N-best list of short transcripts costs about one prefix pass, not N.
`forced_score` is the plain teacher-forced pass (every row prompt + speech + text, packed
as in training), the reference `score` agrees with.
"""

from __future__ import annotations

import inspect

import numpy as np
import torch
from torch import nn

from ..io.audio import distinct_clips


@torch.inference_mode()
def score(
    model: nn.Module,
    audio: list[np.ndarray],
    languages: list[str],
    texts: list[str],
    hypotheses: list[str] | None = None,
) -> list[float]:
    """The LLM's log-probability of each text and its end token, given its utterance and
    prompt, with each distinct (clip, prompt) prefix computed once.

    Args:
        model: the SpeechLLM.
        audio: 16 kHz audio, one array per text (the same array for texts of one clip).
        languages: the language code of each text's prompt.
        texts: the texts to score.
        hypotheses: a hypothesis-conditioned model's prompt text per row, or None.

    Returns:
        One log-probability (natural log, summed over the tokens) per text.
    """
    if not texts:
        return []
    prompts, targets = _token_rows(model, languages, texts, hypotheses)
    unique, clip_of = distinct_clips(audio)  # several texts of one clip: encoded once
    prefix_of: dict[tuple[int, tuple[int, ...]], int] = {}
    for i, prompt in enumerate(prompts):
        prefix_of.setdefault((clip_of[i], tuple(prompt)), len(prefix_of))
    prefixes = list(prefix_of)
    row_prefix = [prefix_of[(clip_of[i], tuple(p))] for i, p in enumerate(prompts)]

    speech, lengths = model.encode(unique)
    clips = torch.tensor([c for c, _ in prefixes], device=speech.device)
    embeds, mask, _ = model._assemble(
        speech[clips], lengths[clips], [list(p) for _, p in prefixes], None, left_pad=True
    )
    causal = model.llm.get_base_model() if hasattr(model.llm, "get_base_model") else model.llm
    body, head = getattr(causal, causal.base_model_prefix), causal.get_output_embeddings()
    cache_arg = "cache" if "cache" in inspect.signature(body.forward).parameters else None
    cache_arg = cache_arg or "past_key_values"
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding: count real tokens
    out = body(inputs_embeds=embeds, attention_mask=mask, position_ids=positions, use_cache=True)
    # the prefix's last position predicts each text's first token
    first = _log_probs(head, out.last_hidden_state[:, -1])
    where = torch.tensor(row_prefix, device=mask.device)
    picked = first[where].gather(1, torch.tensor([[t[0]] for t in targets], device=mask.device))
    totals = picked[:, 0].double()

    width = max(len(t) for t in targets) - 1  # the tokens fed: each text but its last
    if width > 0:
        cache = getattr(out, cache_arg)
        cache.batch_select_indices(where)  # each prefix's cache once per text of it
        fed = torch.zeros(len(targets), width, dtype=torch.long, device=mask.device)
        real = torch.zeros_like(fed)
        wanted = torch.zeros_like(fed)
        for i, t in enumerate(targets):
            fed[i, : len(t) - 1] = torch.tensor(t[:-1])
            wanted[i, : len(t) - 1] = torch.tensor(t[1:])
            real[i, : len(t) - 1] = 1
        steps = torch.arange(1, width + 1, device=mask.device)
        hidden = body(
            input_ids=fed,
            attention_mask=torch.cat([mask[where], real], dim=1),
            position_ids=positions[where, -1:] + steps,
            use_cache=True,
            **{cache_arg: cache},
        ).last_hidden_state
        keep = real.bool()  # the output layer only where a text token is predicted
        logp = _log_probs(head, hidden[keep]).gather(1, wanted[keep][:, None])[:, 0]
        rows = torch.arange(len(targets), device=mask.device)[:, None].expand_as(fed)[keep]
        totals = totals.index_add(0, rows, logp.double())
    return totals.tolist()


@torch.inference_mode()
def forced_score(
    model: nn.Module,
    audio: list[np.ndarray],
    languages: list[str],
    texts: list[str],
    hypotheses: list[str] | None = None,
) -> list[float]:
    """`score` by one teacher-forced pass over every row (prompt + speech + text), packed
    without padding as in training: the same numbers, with the prefix computed per row.
    Arguments and result as `score`."""
    prompts, targets = _token_rows(model, languages, texts, hypotheses)
    unique, index = distinct_clips(audio)
    speech, lengths = model.encode(unique)
    where = torch.tensor(index, device=speech.device)
    embeds, mask, labels = model._assemble(
        speech[where], lengths[where], prompts, targets, left_pad=False
    )
    picked, rows = model._label_log_probs(embeds, mask, labels)
    totals = torch.zeros(len(texts), device=picked.device).index_add_(0, rows, picked)
    return totals.tolist()


def _token_rows(
    model: nn.Module, languages: list[str], texts: list[str], hypotheses: list[str] | None
) -> tuple[list[list[int]], list[list[int]]]:
    """Each row's prompt tokens (with its hypothesis, where the model is conditioned on
    one) and its text's target tokens (the text and the end token)."""
    hyps = hypotheses or [None] * len(texts)
    prompts = [model.prompt_ids(lang, h) for lang, h in zip(languages, hyps)]
    return prompts, [model.target_ids(t) for t in texts]


def _log_probs(head: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """The LLM's next-token log-probabilities from its last hidden states."""
    return head(hidden).float().log_softmax(-1)
