"""Comment topics and sentiment, derived at landing from survey.responses' free-text comment.

The comment is personal data and stays in the raw zone; what the warehouse analyses (which topics a
customer writes about, and in what tone) is derived here, once per landed record, by the lexicon
tagger of ``analytics/topics.py`` (French and English, no model, no download). Three derived columns,
underscore-named like the lineage columns since no source delivered them:

* ``_comment_topics``: the topics, sorted, ';'-separated (null without a comment or without a topic);
* ``_comment_polarity``: negative / neutral / positive (null without a comment);
* ``_comment_topic_polarity``: each topic with the polarity of the clause it sits in
  ('delivery:negative;support:positive').

Deriving at landing rather than in the warehouse means the dbt models (the follow-up queue takes the
negative comments, the drivers read the topics) see them on both engines; re-tagging with a new lexicon
is a re-landing of the drops (``cxw ingest --all``).
"""

from __future__ import annotations

import polars as pl

from analytics import topics

TOPICS_COLUMN = "_comment_topics"
POLARITY_COLUMN = "_comment_polarity"
TOPIC_POLARITY_COLUMN = "_comment_topic_polarity"


def _tags(text: str | None, language: str | None) -> tuple[str | None, str | None, str | None]:
    if text is None or not text.strip():
        return None, None, None
    t = topics.tag(text, language)
    pairs = dict(t.topic_polarity)
    return (";".join(t.topics) or None, t.polarity,
            ";".join(f"{k}:{pairs[k]}" for k in t.topics if k in pairs) or None)


Tags = tuple[str | None, str | None, str | None]
# the tags of the comments seen so far in this process, by (text, language): the tagger is pure, and the
# same comment recurs across a run's files (customers reuse phrasings; at 100k customers x 1 year: 223k
# comments, 55k distinct). Bounded (~40 MB at most): emptied when full.
_SEEN: dict[tuple[str | None, str | None], Tags] = {}
_SEEN_MAX = 100_000


def with_comment_tags(df: pl.DataFrame, text: str = "comment", language: str = "language") -> pl.DataFrame:
    """``df`` (validated survey.responses) with the three derived comment columns."""
    texts = df[text].to_list() if text in df.columns else [None] * df.height
    langs = df[language].to_list() if language in df.columns else [None] * df.height
    seen = _SEEN
    tagged = []
    for key in zip(texts, langs, strict=True):  # a comment repeated is tagged once
        tags = seen.get(key)
        if tags is None:
            if len(seen) >= _SEEN_MAX:
                seen.clear()
            tags = seen[key] = _tags(*key)
        tagged.append(tags)
    return df.with_columns(
        pl.Series(TOPICS_COLUMN, [t[0] for t in tagged], pl.Utf8),
        pl.Series(POLARITY_COLUMN, [t[1] for t in tagged], pl.Utf8),
        pl.Series(TOPIC_POLARITY_COLUMN, [t[2] for t in tagged], pl.Utf8),
    )
