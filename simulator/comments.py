"""Survey comments composed from topic clauses, their topics following the customer's experience.

A comment is one or two topic clauses (``vocabulary.COMMENT_CLAUSES``) or a topic-less one
(``GENERIC_COMMENTS``). Two clauses of the same polarity are joined by "and"/"et" (or make two
sentences), and the comment has their polarity; a contrast ("but"/"mais", "however"/"par contre")
joins a positive and a negative clause: a mixed comment, neutral overall (each topic keeps its own
polarity).

Which topics a comment carries follows what the customer went through (``EXPERIENCE``): an
experience the survey is about (the late order of a delivery CSAT, the bad case of a support
survey, the failed payment of a billing CSAT) or one still in memory when the survey was sent
makes a negative clause of its topic likely; a bad support case sometimes adds a negative staff
clause. Otherwise topic and polarity follow the answer's score band. The planted topics and
polarities come back with the text, for ``truth_comments.csv``.

Random numbers come from the generator the caller passes (its own stream), a fixed number per
response, so the rest of the generated records do not depend on the comments.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np

from . import vocabulary as V

NEG, NEU, POS = 0, 1, 2
# topic: (probability of a negative clause when the survey is about that experience, when it is in memory)
EXPERIENCE = {"delivery": (0.70, 0.45), "billing": (0.60, 0.40), "refund": (0.40, 0.40), "support": (0.65, 0.35)}
STAFF_WITH_SUPPORT_P = 0.3  # a negative support clause brings a negative staff one
BAND_SCALE = (1.0, 0.85, 0.6)  # experiences weigh less on the comment of a happy answer
# topics of comments no experience explains, by score band: (topics, weights)
BAND_TOPICS = {
    POS: (("delivery", "product", "staff", "price", "support", "billing", "refund"),
          (0.3, 0.3, 0.15, 0.15, 0.1, 0.05, 0.05)),
    NEU: (("delivery", "product", "price", "staff", "support", "billing", "refund"), (1, 1, 1, 1, 1, 0.5, 0.5)),
    NEG: (("product", "price"), (0.6, 0.4)),
}
GENERIC_P = (0.2, 0.3, 0.15)  # share of topic-less comments among those no experience explains, by band
SECOND_CLAUSE_P = 0.3  # a second clause of the same polarity ("and")
MIXED_P = 0.5  # neutral answers: share of mixed comments among those with a topic
JOIN_AND = {"fr": (" et ", ", et ", ". "), "en": (" and ", ", and ", ". ")}
JOIN_BUT = {"fr": (" mais ", ", mais ", ". Par contre, ", ". Cependant, "),
            "en": (" but ", ", but ", ". However, ")}
DRAWS = 16  # uniforms per response (a fixed number: the stream does not depend on the branch taken)


@dataclass(frozen=True)
class Comment:
    text: str
    topic_polarity: tuple[tuple[str, str], ...]  # (topic, polarity), sorted by topic
    polarity: str

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(t for t, _ in self.topic_polarity)


def _fold(s: str) -> str:
    """Accents dropped, as typed on a keyboard without them ('réglé' -> 'regle')."""
    return "".join(ch for ch in unicodedata.normalize("NFKD", s) if not unicodedata.combining(ch))


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _weighted(topics: tuple[str, ...], weights: tuple[float, ...], u: float, exclude: tuple[str, ...] = ()) -> str:
    pool = [(t, w) for t, w in zip(topics, weights, strict=True) if t not in exclude]
    total = sum(w for _, w in pool)
    acc = 0.0
    for t, w in pool:
        acc += w / total
        if u < acc:
            return t
    return pool[-1][0]


def _plan(u: np.ndarray, band: int, about: dict[str, bool], memory: dict[str, bool]) -> tuple[list, str | None]:
    """The clauses [(topic or None, polarity)] of one comment and how they are joined ('and', 'but', None)."""
    scale = BAND_SCALE[band]
    exp = [t for j, (t, (p_about, p_mem)) in enumerate(EXPERIENCE.items())
           if u[j] < (p_about if about[t] else p_mem if memory[t] else 0.0) * scale]
    if "support" in exp and u[4] < STAFF_WITH_SUPPORT_P:
        exp.append("staff")
    if len(exp) > 2:
        start = int(u[5] * len(exp))
        exp = (exp[start:] + exp[:start])[:2]
    if exp:
        clauses = [(t, NEG) for t in exp]
        if len(clauses) == 2:
            return clauses, "and"
        if band == POS and u[6] < 0.5:
            topics, weights = BAND_TOPICS[POS]
            return [(_weighted(topics, weights, u[7], tuple(exp)), POS), *clauses], "but"
        if band == NEG and u[6] < SECOND_CLAUSE_P:
            topics, weights = BAND_TOPICS[NEG]
            return [*clauses, (_weighted(topics, weights, u[7], tuple(exp)), NEG)], "and"
        return clauses, None
    if u[8] < GENERIC_P[band]:
        return [(None, band)], None
    if band == NEU:
        topics, weights = BAND_TOPICS[NEU]
        first = _weighted(topics, weights, u[9])
        if u[10] >= MIXED_P:
            return [(first, NEU)], None
        second = _weighted(topics, weights, u[11], (first,))
        pos_first = u[12] < 0.6
        return [(first, POS if pos_first else NEG), (second, NEG if pos_first else POS)], "but"
    topics, weights = BAND_TOPICS[band]
    first = _weighted(topics, weights, u[9])
    if u[10] < SECOND_CLAUSE_P:
        return [(first, band), (_weighted(topics, weights, u[11], (first,)), band)], "and"
    return [(first, band)], None


def _text(lang: str, clauses: list, join: str | None, u: np.ndarray, k: np.ndarray) -> str:
    parts = []
    for j, (topic, pol) in enumerate(clauses):
        table = V.GENERIC_COMMENTS[lang][pol] if topic is None else V.COMMENT_CLAUSES[lang][topic][pol]
        parts.append(table[int(k[j]) % len(table)])
    text = _cap(parts[0])
    if join:
        options = (JOIN_AND if join == "and" else JOIN_BUT)[lang]
        sep = options[int(k[2]) % len(options)]
        text += sep + (_cap(parts[1]) if sep.endswith(". ") else parts[1])
    polarity = NEU if join == "but" else clauses[-1][1]
    r = u[13]
    if r < 0.5:
        end = "."
    elif r < 0.75:
        end = ""
    elif r < 0.95:
        end = "!" if polarity != NEU else "."
        if polarity == NEG and r >= 0.9:
            end = "!!!"
    else:
        end = "..."
    if lang == "fr" and end.startswith("!") and u[14] < 0.5:
        end = " " + end  # the French typographic space before '!'
    text += end
    if lang == "fr":
        if u[14] < 0.25:
            text = text.replace("'", "\u2019")  # a typographic apostrophe
        if u[15] < 0.1:
            text = _fold(text)
    elif u[15] < 0.1:
        text = text[:1].lower() + text[1:]
    return text


def compose(rng: np.random.Generator, has_comment: np.ndarray, french: np.ndarray, band: np.ndarray,
            about: dict[str, np.ndarray], memory: dict[str, np.ndarray]) -> list[Comment | None]:
    """One comment per response (None without one).

    ``about[topic]``: the survey is about an experience of that topic (delivery: a late order;
    billing: a failed payment; support: a bad case); ``memory[topic]``: one is in the customer's
    memory (delivery: late delivery, billing: failed payment, refund: service-failure refund,
    support: bad case). Every key of ``EXPERIENCE`` in both.
    """
    n = int(np.size(has_comment))
    u = rng.random((n, DRAWS))
    k = rng.integers(0, 1 << 30, (n, 3))
    out: list[Comment | None] = [None] * n
    for i in np.flatnonzero(has_comment):
        b = int(band[i])
        clauses, join = _plan(u[i], b, {t: bool(about[t][i]) for t in EXPERIENCE},
                              {t: bool(memory[t][i]) for t in EXPERIENCE})
        lang = "fr" if french[i] else "en"
        text = _text(lang, clauses, join, u[i], k[i])
        tp = tuple(sorted((t, V.COMMENT_POLARITIES[p]) for t, p in clauses if t is not None))
        overall = NEU if join == "but" else clauses[-1][1]  # a mixed comment is neutral
        out[i] = Comment(text, tp, V.COMMENT_POLARITIES[overall])
    return out
