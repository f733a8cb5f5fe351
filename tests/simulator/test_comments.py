"""Survey comments: composed from topic phrases in French or English, their topics following what the
customer went through, with the planted topics in truth_comments.csv and truth.json's ``comments``;
the comment tagger (analytics/topics.py) finds them again.

Run with -s to see the tagger's macro-F1 on the generated comments."""

from __future__ import annotations

import datetime as dt
import unicodedata
from pathlib import Path

import numpy as np
import polars as pl

from analytics import topics as T
from simulator import COMMENTS_FILE, GeneratorConfig, generate
from simulator import vocabulary as V
from simulator.comments import EXPERIENCE, compose

from ..conftest import Drops
from ..landing import parse_utc, read_entity
from .test_truth import delivered_orders

FRENCH_LETTERS = "àâçèéêëîïôùûœ"


def _truth_rows(root: Path) -> pl.DataFrame:
    df = pl.read_csv(root / COMMENTS_FILE, infer_schema=False)
    return df.with_columns(pl.col("topics", "topic_polarity").fill_null(""))


def _landing_comments(root: Path) -> pl.DataFrame:
    """One row per delivered response with a comment (resent copies once; a copy whose key was emptied: left out)."""
    resp = read_entity(root, "survey", "responses")
    return resp.filter(pl.col("comment").is_not_null() & pl.col("response_id").is_not_null()).unique(
        "response_id", keep="first").sort("response_id")


def _fold(s: str) -> str:
    s = s.lower().replace("\u2019", "'")
    return "".join(ch for ch in unicodedata.normalize("NFKD", s) if not unicodedata.combining(ch))


def test_the_vocabulary_has_varied_phrases_per_topic_polarity_and_language() -> None:
    assert set(V.COMMENT_CLAUSES) == {"fr", "en"} and V.COMMENT_TOPICS == T.TOPICS
    assert V.COMMENT_POLARITIES == T.POLARITIES
    for lang, by_topic in V.COMMENT_CLAUSES.items():
        assert set(by_topic) == set(T.TOPICS)
        for topic, tables in by_topic.items():
            assert len(tables) == 3
            for polarity, phrases in zip(T.POLARITIES, tables, strict=True):
                assert len(phrases) >= 8 and len(set(phrases)) == len(phrases), (lang, topic, polarity)
        assert all(len(t) >= 8 for t in V.GENERIC_COMMENTS[lang])
    french = [p for tables in V.COMMENT_CLAUSES["fr"].values() for t in tables for p in t]
    english = [p for tables in V.COMMENT_CLAUSES["en"].values() for t in tables for p in t]
    assert sum(any(ch in p for ch in FRENCH_LETTERS) for p in french) > len(french) / 3  # French with accents
    assert not any(ch in p for p in english for ch in FRENCH_LETTERS)
    # negations that do not flip naively, both ways
    assert "pas livré à temps" in V.COMMENT_CLAUSES["fr"]["delivery"][0]
    assert "not delivered on time" in V.COMMENT_CLAUSES["en"]["delivery"][0]
    assert "aucun problème avec la livraison" in V.COMMENT_CLAUSES["fr"]["delivery"][2]
    assert "no problem with the delivery" in V.COMMENT_CLAUSES["en"]["delivery"][2]


def test_compose_follows_the_experience_and_labels_mixed_comments_neutral() -> None:
    n = 4000
    rng = np.random.default_rng(3)
    none = {t: np.zeros(n, bool) for t in EXPERIENCE}
    late = none | {"delivery": np.ones(n, bool)}
    args = (np.ones(n, bool), rng.random(n) < 0.5, np.zeros(n, int))
    with_late = compose(np.random.default_rng(1), *args, late, none)
    without = compose(np.random.default_rng(1), *args, none, none)
    share = [np.mean([("delivery", "negative") in c.topic_polarity for c in cs]) for cs in (with_late, without)]
    assert share[0] > 0.6 > 0.1 > share[1], share
    for c in with_late + without:
        assert c is not None and c.text and c.polarity in T.POLARITIES
        assert list(c.topics) == sorted(set(c.topics)) and set(c.topics) <= set(T.TOPICS)
        polarities = {p for _, p in c.topic_polarity}
        if {"positive", "negative"} <= polarities:
            assert c.polarity == "neutral", c  # "X but Y": mixed
    # the same stream gives the same comments; no comment where none was written
    assert compose(np.random.default_rng(1), *args, late, none) == with_late
    assert compose(np.random.default_rng(1), np.zeros(n, bool), *args[1:], late, none) == [None] * n


def test_comments_are_in_their_language(drops: Drops) -> None:
    com = _landing_comments(drops.root)
    assert com.height > 100
    clauses = {lang: {_fold(c) for tables in by_topic.values() for t in tables for c in t}
               | {_fold(c) for t in V.GENERIC_COMMENTS[lang] for c in t}
               for lang, by_topic in V.COMMENT_CLAUSES.items()}
    detected = 0
    for text, lang in com.select("comment", "language").iter_rows():
        folded = _fold(text)
        assert any(c in folded for c in clauses[lang]), (lang, text)  # composed from its language's phrases
        guess = T.detect_language(text)
        assert guess in (lang, None), (lang, text)  # never taken for the other language
        detected += guess == lang
        if lang == "en":
            assert not any(ch in text for ch in FRENCH_LETTERS), text
    assert detected >= 0.85 * com.height
    french = com.filter(pl.col("language") == "fr")["comment"]
    assert french.str.contains(f"[{FRENCH_LETTERS}]").mean() > 0.5


def test_the_tagger_finds_the_planted_topics(march_drops: Drops) -> None:
    com = _landing_comments(march_drops.root).join(_truth_rows(march_drops.root), on="response_id",
                                                   suffix="_truth")
    pairs: dict[str, list] = {"fr": [], "en": []}
    for text, lang, topics, polarity in com.select("comment", "language", "topics", "polarity").iter_rows():
        got = T.tag(text, lang)
        pairs[lang].append(({t for t in topics.split(";") if t}, polarity, set(got.topics), got.polarity))
    print("\ngenerated comments: language     n  topic macro-F1  polarity macro-F1")
    for lang, p in pairs.items():
        r = T.score_labels(p)
        print(f"                    {lang:<8} {r['n']:>5}  {r['topic_macro_f1']:>14.3f}  "
              f"{r['polarity_macro_f1']:>17.3f}")
        assert r["n"] >= 200, lang
        assert r["topic_macro_f1"] >= 0.9, (lang, r["topic_macro_f1"], {t: c["f1"] for t, c in r["topics"].items()})


def _check_truth_against_landing(root: Path, truth: dict) -> pl.DataFrame:
    rows = _truth_rows(root)
    assert rows.columns == ["response_id", "language", "topics", "polarity", "topic_polarity"]
    assert rows["response_id"].n_unique() == rows.height
    for topics, polarity, pairs in rows.select("topics", "polarity", "topic_polarity").iter_rows():
        assert polarity in T.POLARITIES
        named = [p.split(":") for p in pairs.split(";") if p]
        assert [t for t, _ in named] == sorted(t for t in topics.split(";") if t)
        assert len(named) == len({t for t, _ in named})
        assert all(t in T.TOPICS and p in T.POLARITIES for t, p in named)
    # every commented response in the drops is in the truth file, in the same language
    com = _landing_comments(root)
    joined = com.join(rows, on="response_id", how="left", suffix="_truth")
    assert joined["language_truth"].null_count() == 0
    assert (joined["language"] == joined["language_truth"]).all()
    # and the truth file holds nothing else: at most the responses whose every copy lost its key
    missing = set(rows["response_id"]) - set(com["response_id"])
    assert len(missing) <= truth["mess"]["bad_null_key"]["by_entity"].get("survey/responses", {}).get("planted", 0)
    # truth.json counts what the file holds
    c = truth["comments"]
    assert c["file"] == COMMENTS_FILE and c["commented_responses"] == rows.height
    assert truth["mess"]["french_comment"]["eligible"] == rows.height
    assert truth["mess"]["french_comment"]["planted"] == rows.filter(pl.col("language") == "fr").height
    for lang, part in rows.partition_by("language", as_dict=True).items():
        by = c["by_language"][lang[0]]
        assert by["comments"] == part.height
        assert by["no_topic"] == part.filter(pl.col("topics") == "").height
        assert by["polarity"] == {p: part.filter(pl.col("polarity") == p).height for p in T.POLARITIES}
        pairs = part["topic_polarity"].str.split(";").explode()
        for topic in T.TOPICS:
            assert by["topics"][topic] == {p: int((pairs == f"{topic}:{p}").sum()) for p in T.POLARITIES}
    assert sum(b["comments"] for b in c["by_language"].values()) == rows.height
    return rows


def test_truth_file_and_truth_json_agree_with_the_landing_comments(drops: Drops) -> None:
    _check_truth_against_landing(drops.root, drops.truth)


def test_every_topic_and_polarity_is_planted(march_drops: Drops) -> None:
    rows = _truth_rows(march_drops.root)
    planted = set(rows["topic_polarity"].str.split(";").explode().drop_nulls()) - {""}
    assert planted == {f"{t}:{p}" for t in T.TOPICS for p in T.POLARITIES}


def test_sharded_generation_writes_every_shards_comments(tmp_path: Path) -> None:
    cfg = GeneratorConfig(customers=900, days=6, start=dt.date(2026, 10, 22), seed=5, shard_customer_days=1_800)
    truth = generate(cfg, tmp_path).truth
    assert truth["volumes"]["shards"] == 3
    lines = (tmp_path / COMMENTS_FILE).read_text(encoding="utf-8").splitlines()
    assert lines[0] == "response_id,language,topics,polarity,topic_polarity"
    assert sum(line.startswith("response_id,") for line in lines) == 1  # one header, however many shards
    rows = _check_truth_against_landing(tmp_path, truth)
    # ids run on across shards: rows from each shard's range
    nums = rows["response_id"].str.slice(2).cast(pl.Int64)
    assert nums.max() > truth["volumes"]["simulated"]["responses"] / 2


def test_late_delivery_customers_comment_more_often_on_late_delivery(march_drops: Drops) -> None:
    """The planted link, found from the files: a comment written within the memory of a late delivery
    (customer matched by CRM id or e-mail) is far more often delivery-negative than the others, as
    planted and as the tagger reads it."""
    root = march_drops.root
    crm = read_entity(root, "crm", "customers").filter(pl.col("customer_id").is_not_null()).select(
        "customer_id", _email=pl.col("email").str.strip_chars().str.to_lowercase()).unique("_email")
    late = (delivered_orders(root).filter(pl.col("delivered_on") > pl.col("promised"))
            .with_columns(_email=pl.col("email").str.strip_chars().str.to_lowercase())
            .join(crm, on="_email", how="left")
            .select(cust=pl.coalesce("crm_customer_id", "customer_id"), delivered_on="delivered_on")
            .filter(pl.col("cust").is_not_null()))
    memory = march_drops.cfg.effects.late_delivery_memory_days
    com = (_landing_comments(root).join(_truth_rows(root), on="response_id", suffix="_truth")
           .with_columns(_email=pl.col("customer_ref").str.strip_chars().str.to_lowercase())
           .join(crm, on="_email", how="left")
           .with_columns(cust=pl.when(pl.col("customer_ref").str.contains("@")).then(pl.col("customer_id"))
                         .otherwise(pl.col("customer_ref")),
                         answered=parse_utc("responded_at").dt.date()))
    after_late = com.join(late, on="cust").filter(
        (pl.col("delivered_on") <= pl.col("answered"))
        & (pl.col("delivered_on") > pl.col("answered") - pl.duration(days=memory)))["response_id"].unique()
    tagged = [T.tag(text, lang).polarity_of("delivery") == "negative"
              for text, lang in com.select("comment", "language").iter_rows()]
    com = com.with_columns(
        late=pl.col("response_id").is_in(after_late.implode()),
        planted=pl.col("topic_polarity").str.contains("delivery:negative"),
        read=pl.Series(tagged))
    stats = {row["late"]: row for row in com.group_by("late").agg(
        n=pl.len(), planted=pl.col("planted").mean(), read=pl.col("read").mean()).iter_rows(named=True)}
    assert stats[True]["n"] >= 50 and stats[False]["n"] >= 300, stats
    for measure in ("planted", "read"):
        assert stats[True][measure] > 0.2, stats
        assert stats[True][measure] > 4 * stats[False][measure], stats
