"""What a hypothesis-conditioned Speech-LLM's corrections of Whisper's text are kept.

Such a model reads the speech and Whisper's transcript of it (its hypothesis) and writes
its own. Two guards decide between the two texts: a correction that lost its place in a
long hypothesis gives way to it (`lost_its_place`), and a correction stands only where
Whisper and the LLM together score it above the hypothesis (`check_corrections`). The
scoring itself is the caller's (the Speech-LLM engine runs both models); this module
holds the decisions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..scoring.normalize import normalize

# (rows' clip indices, candidate texts, the hypothesis each row's prompt carries) ->
# (Whisper's log-probability of each candidate, None where it cannot judge the clip;
# the LLM's log-probability of each candidate).
PairScorer = Callable[
    [list[int], list[str], list[str]], tuple[Sequence[float | None], Sequence[float]]
]


def lost_its_place(correction: str, hypothesis: str) -> bool:
    """Whether a correction lost its place in a Whisper hypothesis of four words or more.

    It has when it kept less than half of the hypothesis's characters (skipped sentences)
    or ran to more than 1.5 times its words (a loop the repetition stop does not see;
    words, not characters, since counted numbers are short). Short hypotheses are left
    alone: there a rewrite ("11" -> "eleven") is what the model learnt.

    Args:
        correction: The Speech-LLM's text.
        hypothesis: Whisper's text it was prompted with.

    Returns:
        True when the correction is to be replaced by the hypothesis.
    """
    words = len(hypothesis.split())
    if words < 4:
        return False
    return len(correction.strip()) < 0.5 * len(hypothesis.strip()) or (
        len(correction.split()) > 1.5 * words
    )


def keep_in_place(texts: Sequence[str], hypotheses: dict[int, str]) -> list[str]:
    """`texts` with each correction that lost its place replaced by its hypothesis.

    Args:
        texts: The Speech-LLM's text of each clip, by clip index.
        hypotheses: Whisper's text of each clip, by clip index.

    Returns:
        One text per clip.
    """
    return [hypotheses[i] if lost_its_place(t, hypotheses[i]) else t for i, t in enumerate(texts)]


def changed_words(texts: Sequence[str], hypotheses: dict[int, str]) -> list[int]:
    """The clips whose correction changes the words of the hypothesis.

    A change of case or punctuation only (the same words under the MLC-SLM rule) is not a
    correction of what was heard.

    Args:
        texts: The Speech-LLM's text of each clip, by clip index.
        hypotheses: Whisper's text of each clip, by clip index.

    Returns:
        The indices of the clips to check, in order.
    """
    changed = [i for i, text in enumerate(texts) if text != hypotheses[i]]
    no_language = [None] * len(changed)  # the MLC-SLM rule is the same for all
    corrected = normalize([texts[i] for i in changed], no_language, "mlcslm")
    original = normalize([hypotheses[i] for i in changed], no_language, "mlcslm")
    return [i for i, a, b in zip(changed, corrected, original) if a != b]


def check_corrections(
    texts: Sequence[str],
    hypotheses: dict[int, str],
    score: PairScorer,
    prompts: dict[int, str] | None = None,
) -> list[str]:
    """Each correction kept only where both models together prefer it to the hypothesis.

    The two models' log-probabilities are added (a product of experts, equal weights): a
    change survives only where the LLM prefers it by more than Whisper objects to it.
    Where Whisper cannot judge a clip (longer than its window) the correction stands.

    Args:
        texts: The Speech-LLM's text of each clip, by clip index.
        hypotheses: Whisper's text of each clip, by clip index.
        score: Scores candidate texts; called once, with each checked clip's correction
            and hypothesis side by side (rows 2k and 2k + 1), so that a clip's two rows
            can share a batch and one encoder pass.
        prompts: The hypothesis text each clip's prompt carried (an N-best list);
            None: the hypothesis itself.

    Returns:
        One text per clip: the correction or the hypothesis.
    """
    changed = changed_words(texts, hypotheses)
    if not changed:
        return list(texts)
    rows = [i for i in changed for _ in range(2)]
    candidates = [text for i in changed for text in (texts[i], hypotheses[i])]
    prompted = [(prompts or hypotheses)[i] for i in rows]
    heard, read = score(rows, candidates, prompted)
    out = list(texts)
    for k, i in enumerate(changed):
        fix, kept = 2 * k, 2 * k + 1  # the correction's row and the hypothesis's
        if heard[fix] is None or heard[kept] is None:
            continue
        if heard[fix] + read[fix] <= heard[kept] + read[kept]:  # type: ignore[operator]
            out[i] = hypotheses[i]
    return out
