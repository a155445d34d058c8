"""The rescoring weight of a trained Speech-LLM, chosen on its dev set: Whisper's N-best
list of each dev utterance (cached) and the Speech-LLM's own transcript, scored by both
models; the weight of Whisper's score with the fewest dev errors is saved with the model
(`SpeechLLMConfig.rescore_weight`) and used by `sbasr transcribe --engine speechllm`."""

from __future__ import annotations

from ..speechllm.model import SpeechLLM
from .data import Example, load_example_audio


def choose_rescore_weight(model: SpeechLLM, dev: list[Example], n: int, echo=print) -> float:
    """Choose and set `model.spec.rescore_weight` (and `nbest`) from the dev set.

    Args:
        model: the trained Speech-LLM.
        dev: the dev examples (with text and language).
        n: Whisper's hypotheses per utterance.
        echo: where the dev errors of the first pass, of the Speech-LLM and of rescoring go.

    Returns:
        The weight chosen; 0.5 (equal weights) without a dev set.
    """
    import torch

    from ..asr.engines.whisper import WhisperEngine
    from ..asr.nbest import cached_nbest
    from ..asr.options import EngineSettings
    from ..asr.rescore import (
        candidates,
        choose_weight,
        llm_scores,
        prompt_texts,
        whisper_scores,
    )
    from ..scoring.api import score
    from ..scoring.transcripts import Transcripts

    model.spec.nbest = n
    if not dev:
        model.spec.rescore_weight = 0.5
        echo("rescoring: no dev set to choose the weight on; equal weights (0.5)")
        return 0.5
    source = model.spec.hypothesis_model or model.spec.encoder
    device = "cuda" if next(model.projector.parameters()).is_cuda else "cpu"
    engine: list[WhisperEngine] = []

    def whisper() -> WhisperEngine:
        if not engine:
            engine.append(WhisperEngine(source, EngineSettings(device=device)))
        return engine[0]

    audio = [load_example_audio(ex) for ex in dev]
    items = [(lambda a=a: a, ex.language) for a, ex in zip(audio, dev)]
    lists = cached_nbest(source, items, whisper, max(n, model.spec.nbest_prompt), echo)
    was_training = model.training
    model.eval()
    sets = []
    try:
        with torch.no_grad():
            for language in dict.fromkeys(ex.language for ex in dev):
                where = [i for i, ex in enumerate(dev) if ex.language == language]
                for start in range(0, len(where), 8):
                    part = where[start : start + 8]
                    clips = [audio[i] for i in part]
                    prompts = prompt_texts(model.spec, [lists[i] for i in part])
                    langs = [language] * len(part)
                    own = model.transcribe(clips, langs, hypotheses=prompts)
                    group = [candidates(lists[i], o) for i, o in zip(part, own)]
                    whisper_scores(group, clips, whisper(), language)
                    llm_scores(model, group, clips, langs, prompts)
                    sets += list(zip(part, group))
    finally:
        model.train(was_training)
    sets.sort(key=lambda p: p[0])
    ordered = [c for _, c in sets]
    # every candidate of every utterance scored against its reference, once
    ids = [f"{i}.{j}" for i, c in enumerate(ordered) for j in range(len(c.texts))]
    refs = Transcripts(
        "dev",
        ids,
        [dev[i].text for i, c in enumerate(ordered) for _ in c.texts],
        [dev[i].language for i, c in enumerate(ordered) for _ in c.texts],
    )
    report = score(dict(zip(ids, [t for c in ordered for t in c.texts])), refs)
    flat = report.counts[:, :3].sum(1).tolist()
    errors, firsts, k = [], [], 0
    for c in ordered:
        errors.append(flat[k : k + len(c.texts)])
        firsts.append(k)
        k += len(c.texts)
    weight, totals = choose_weight(errors, ordered)
    words = int(report.counts[firsts, 3].sum())
    echo(
        f"rescoring: {sum(e[0] for e in errors)} dev errors in {words} reference tokens with "
        f"Whisper's 1-best, {totals[weight]} rescored with weight {weight} on Whisper's score "
        f"({totals[0.0]} by the LLM's score alone)"
    )
    model.spec.rescore_weight = weight
    return weight
