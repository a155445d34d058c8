"""N-best rescoring: the candidates for an utterance (Whisper's N-best list, and the
Speech-LLM's own transcript where it writes one) scored by both models, the best
combined score winning.

Whisper's score of a text on its list is the beam search's own (`WhisperEngine.nbest`),
with no second pass; a text not on it (the Speech-LLM's own) is scored by `log_probs`.
The Speech-LLM's is its log-likelihood of the text given the speech and its prompt:
each clip encoded once, each clip's prompt and speech run through the LLM once, and all
of a batch's candidates scored from those prefixes' KV cache in one more pass
(`sbasr.speechllm.scoring.score`), never a decode per candidate. The combined score is
`w * whisper + (1 - w) * llm`, with `w` chosen on the dev set at the end of training
(`choose_weight`) and saved with the model. Rescoring only chooses among transcripts,
so it cannot write a word neither model proposed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

import numpy as np

from .nbest import NBest, nbest_prompt_text

WEIGHTS = tuple(round(0.05 * k, 2) for k in range(21))  # the dev set's grid


@dataclass
class Candidates:
    """One utterance's candidates and each model's log-probability of them."""

    texts: list[str]
    whisper: list[float | None]
    llm: list[float] = field(default_factory=list)

    def combined(self, weight: float) -> list[float]:
        """`weight * whisper + (1 - weight) * llm` per candidate; a candidate Whisper
        could not score (over 30 s) counts as Whisper's worst."""
        known = [s for s in self.whisper if s is not None]
        floor = min(known) if known else 0.0
        whisper = np.array([floor if s is None else s for s in self.whisper], np.float64)
        llm = np.array(self.llm if self.llm else [0.0] * len(self.texts), np.float64)
        return (weight * whisper + (1.0 - weight) * llm).tolist()

    def best(self, weight: float) -> int:
        """The index of the candidate with the highest combined score (the first of equals,
        Whisper's order)."""
        return int(np.argmax(self.combined(weight))) if self.texts else 0


def candidates(nbest: NBest, own: str | None = None) -> Candidates:
    """An utterance's candidates: its N-best list, and `own` (the Speech-LLM's transcript)
    after it where it is not already on the list (same text after stripping)."""
    texts = [t.strip() for t, _ in nbest]
    scores = [s for _, s in nbest]
    if own is not None and own.strip() not in texts and own.strip():
        texts.append(own.strip())
        scores.append(None)  # Whisper's score of it comes from `log_probs`
    return Candidates(texts, scores)


def whisper_scores(
    sets: list[Candidates], clips: Sequence[np.ndarray], whisper, language: str | None
) -> None:
    """Whisper's log-probability of each candidate it has none for (the Speech-LLM's
    own transcript), in one batched call; `whisper` is a WhisperEngine."""
    rows = [(i, j) for i, c in enumerate(sets) for j, s in enumerate(c.whisper) if s is None]
    if not rows:
        return
    texts = [sets[i].texts[j] for i, j in rows]
    scores = whisper.log_probs([clips[i] for i, _ in rows], texts, language)
    for (i, j), score in zip(rows, scores):
        sets[i].whisper[j] = score


def llm_scores(
    model,
    sets: list[Candidates],
    clips: Sequence[np.ndarray],
    languages: Sequence[str],
    prompts: Sequence[str | None] | None = None,
) -> None:
    """The Speech-LLM's log-likelihood of every candidate of every utterance, given its
    speech and prompt (`prompts`: a hypothesis-conditioned model's first-pass text), in
    one call for all candidates (`SpeechLLM.score`: each prefix once, then every
    candidate from its KV cache)."""
    rows = [(i, t) for i, c in enumerate(sets) for t in c.texts]
    if not rows:
        return
    hyps = [prompts[i] for i, _ in rows] if prompts is not None else None
    scores = model.score(
        [clips[i] for i, _ in rows], [languages[i] for i, _ in rows], [t for _, t in rows], hyps
    )
    k = 0
    for c in sets:
        c.llm = scores[k : k + len(c.texts)]
        k += len(c.texts)


def choose_weight(errors: list[list[int]], sets: list[Candidates]) -> tuple[float, dict]:
    """The weight of Whisper's score that makes the fewest errors on the dev set.

    Args:
        errors: per utterance, the errors of each of its candidates against its reference.
        sets: the utterances' scored candidates, in the same order.

    Returns:
        The weight (of `WEIGHTS`; among equals the highest, the nearest to Whisper alone,
        which changes least), and the errors at each weight.
    """
    totals = {w: sum(e[c.best(w)] for e, c in zip(errors, sets)) for w in WEIGHTS}
    best = min(totals.values())
    return max(w for w, t in totals.items() if t == best), totals


def rescore_clips(
    model,
    whisper,
    clips: list[np.ndarray],
    language: str,
    n: int,
    weight: float,
    own: bool = True,
    batch_size: int = 8,
    scope: Callable[[], AbstractContextManager] = nullcontext,
    max_new_tokens: int = 600,
) -> list[str]:
    """Each clip's transcript by rescoring, in batches of `batch_size` clips of similar
    length.

    Args:
        model: the SpeechLLM (its LoRA merged, in eval mode).
        whisper: the WhisperEngine of its first pass.
        clips: 16 kHz audio, one array per utterance.
        language: the language code of every clip.
        n: Whisper's hypotheses per clip.
        weight: the weight of Whisper's score (`choose_weight`).
        own: the Speech-LLM's own transcript is a candidate too (a decode per batch).
        batch_size: clips per batch.
        scope: the context each model call runs in (the engine's thread settings).
        max_new_tokens: the longest own transcript.

    Returns:
        The chosen text of each clip, in the order given.
    """
    order = sorted(range(len(clips)), key=lambda i: len(clips[i]))
    out = [""] * len(clips)
    for part in _chunks(order, batch_size):
        audio = [clips[i] for i in part]
        langs = [language] * len(part)
        with scope():
            lists = whisper.nbest(audio, language, n)
        if any(hyps is None for hyps in lists):  # over 30 s: Whisper's own decoding
            from .hypotheses import whisper_hypotheses

            for k, hyps in enumerate(lists):
                if hyps is None:
                    with scope():
                        lists[k] = [(whisper_hypotheses(whisper, [audio[k]], [language])[0], None)]
        prompts = prompt_texts(model.spec, lists)
        written: list[str | None] = [None] * len(part)
        if own:
            with scope():
                written = model.transcribe(audio, langs, max_new_tokens, hypotheses=prompts)
        sets = [candidates(hyps, w) for hyps, w in zip(lists, written)]
        with scope():
            whisper_scores(sets, audio, whisper, language)
            llm_scores(model, sets, audio, langs, prompts)
        for i, c in zip(part, sets):
            out[i] = c.texts[c.best(weight)] if c.texts else ""
    return out


def prompt_texts(spec, lists: list[NBest]) -> list[str] | None:
    """What a hypothesis-conditioned model is prompted with for each N-best list: its
    first K transcripts (`nbest_prompt`), or its 1-best; None for the paper's prompt."""
    if not spec.hypothesis:
        return None
    if spec.nbest_prompt > 1:
        return [nbest_prompt_text(hyps, spec.nbest_prompt) for hyps in lists]
    return [hyps[0][0] if hyps else "" for hyps in lists]


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), max(1, size)):
        yield items[start : start + size]
