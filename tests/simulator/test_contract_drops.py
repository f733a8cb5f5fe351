"""Generated drops follow the landing contract: layout, encodings, separators, formats, manifests.

Planted bad records are the only deviations allowed, and they are counted exactly against truth.json.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re

import polars as pl
import pytest

from ingestion import contract as C

from ..conftest import Drops
from ..landing import (
    DECIMAL_COMMA,
    LOCAL_DATE,
    LOCAL_TS,
    UTC_TS,
    drop_dirs,
    parse_local,
    parse_local_date,
    parse_utc,
    read_csv_file,
    read_entity,
    read_jsonl_file,
)


def _planted(truth: dict, kind: str, system: str, entity: str) -> int:
    return truth["mess"].get(kind, {}).get("by_entity", {}).get(f"{system}/{entity}", {}).get("planted", 0)


def test_layout(drops: Drops) -> None:
    root, cfg = drops.root, drops.cfg
    assert sorted(p.name for p in root.iterdir()) == sorted([*C.SYSTEMS, "truth.json", "truth_comments.csv",
                                                             "_superseded"])
    dates = [(cfg.start + dt.timedelta(days=i)).isoformat() for i in range(cfg.days)]
    for system in C.SYSTEMS:
        assert [d.name for d in drop_dirs(root, system)] == dates
        expected = {e.filename for e in C.entities_of(system)} | {C.MANIFEST_NAME}
        for d in drop_dirs(root, system):
            assert {p.name for p in d.iterdir()} == expected, d


def _count_records(path, system: str) -> int:
    if path.suffix == ".csv":
        return read_csv_file(path, system).height
    return len(read_jsonl_file(path))


def test_manifests_match_files_and_are_written_last(drops: Drops) -> None:
    for system in C.SYSTEMS:
        for d in drop_dirs(drops.root, system):
            manifest_path = d / C.MANIFEST_NAME
            m = json.loads(manifest_path.read_text(encoding="utf-8"))
            assert m["contract_version"] == C.CONTRACT_VERSION
            assert m["system"] == system and m["business_date"] == d.name
            extracted = dt.datetime.strptime(m["extracted_at"], "%Y-%m-%dT%H:%M:%SZ")
            assert extracted.date() > dt.date.fromisoformat(d.name)
            listed = {f["path"]: f for f in m["files"]}
            assert set(listed) == {e.filename for e in C.entities_of(system)}
            assert [f["entity"] for f in m["files"]] == [e.name for e in C.entities_of(system)]
            for e in C.entities_of(system):
                f = listed[e.filename]
                data = (d / f["path"]).read_bytes()
                assert hashlib.sha256(data).hexdigest() == f["sha256"], d / f["path"]
                assert _count_records(d / f["path"], system) == f["rows"], d / f["path"]
                assert (d / f["path"]).stat().st_mtime_ns <= manifest_path.stat().st_mtime_ns


def test_csv_headers_separators_and_drift(drops: Drops) -> None:
    drift_from = dt.date.fromisoformat(drops.truth["schema_drift"]["from_business_date"])
    drift_cols = drops.truth["schema_drift"]["columns"]
    for system in ("crm", "erp"):
        for d in drop_dirs(drops.root, system):
            for e in C.entities_of(system):
                first_line = (d / e.filename).read_bytes().split(b"\n", 1)[0].decode(e.encoding)
                extra = [drift_cols[f"{system}/{e.name}"]] if (
                    f"{system}/{e.name}" in drift_cols and dt.date.fromisoformat(d.name) >= drift_from) else []
                assert first_line.split(e.separator) == [*e.column_names, *extra], d / e.filename


def test_erp_is_cp1252_with_decimal_comma(drops: Drops) -> None:
    raw = b"".join((d / "order_lines.csv").read_bytes() for d in drop_dirs(drops.root, "erp"))
    assert "é".encode("cp1252") in raw  # French product categories, written in cp1252
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    lines = read_entity(drops.root, "erp", "order_lines")
    orders = read_entity(drops.root, "erp", "orders")
    for df, col in ((lines, "unit_price"), (orders, "total_amount")):
        assert df[col].str.contains(DECIMAL_COMMA).all(), col
    # the decimal comma survives a locale-aware parse into the same cents as a manual one
    cents = lines["unit_price"].str.replace(",", "").cast(pl.Int64)
    assert (cents > 0).all()


def _bad_values(df: pl.DataFrame, col: str, kind: str) -> int:
    values = df.filter(pl.col(col).is_not_null())
    pattern, parser = {"ts": (UTC_TS, parse_utc), "ts_local": (LOCAL_TS, parse_local),
                       "date": (LOCAL_DATE, parse_local_date)}[kind]
    ok = values[col].str.contains(pattern) & values.select(parser(col).is_not_null()).to_series()
    return int((~ok).sum())


@pytest.mark.parametrize("system", ["crm", "erp"])
def test_csv_values_follow_the_contract_except_planted_bad_records(drops: Drops, system: str) -> None:
    for e in C.entities_of(system):
        df = read_entity(drops.root, system, e.name)
        first_ts = next((c.name for c in e.columns if c.type in ("ts", "ts_local", "date") and not c.nullable), None)
        first_enum = next((c.name for c in e.columns if c.enum), None)
        for col in e.columns:
            if col.type in ("ts", "ts_local", "date"):
                expected = _planted(drops.truth, "bad_date", system, e.name) if col.name == first_ts else 0
                assert _bad_values(df, col.name, col.type) == expected, (e.name, col.name)
            if col.enum:
                unknown = df.filter(pl.col(col.name).is_not_null() & ~pl.col(col.name).is_in(col.enum)).height
                expected = _planted(drops.truth, "bad_enum", system, e.name) if col.name == first_enum else 0
                assert unknown == expected, (e.name, col.name)
            if col.type == "bool":
                assert df[col.name].is_in(["true", "false"]).all()
            if col.type == "int":
                assert df[col.name].str.contains(r"^-?\d+$").all()
            if not col.nullable and col.name != e.key[0]:
                # required columns are never empty (the planted null-key defect empties only the first key column)
                assert df[col.name].null_count() == 0, (e.name, col.name)
        assert df[e.key[0]].null_count() == _planted(drops.truth, "bad_null_key", system, e.name), e.name


def test_billing_json_lines(drops: Drops) -> None:
    drift_col = drops.truth["schema_drift"]["columns"]["billing/invoices"]
    for e in C.entities_of("billing"):
        rows = [r for d in drop_dirs(drops.root, "billing") for r in read_jsonl_file(d / e.filename)]
        assert rows, e.name
        bad_ts = unknown = null_key = 0
        first_ts = next(c.name for c in e.columns if c.type == "ts" and not c.nullable)
        first_enum = next((c.name for c in e.columns if c.enum), None)
        for r in rows:
            assert set(r) - {drift_col} == set(e.column_names)
            for col in e.columns:
                v = r[col.name]
                if col.type == "int":
                    assert isinstance(v, int) and not isinstance(v, bool), (e.name, col.name, v)
                if col.type == "ts" and v is not None and not (re.match(UTC_TS, v) and _valid_utc(v)):
                    assert col.name == first_ts
                    bad_ts += 1
                if col.enum and v not in col.enum:
                    assert col.name == first_enum
                    unknown += 1
            if "currency" in r:
                assert r["currency"] in ("EUR", "GBP", "CHF")
            null_key += r[e.key[0]] is None
        assert bad_ts == _planted(drops.truth, "bad_date", "billing", e.name)
        assert unknown == _planted(drops.truth, "bad_enum", "billing", e.name)
        assert null_key == _planted(drops.truth, "bad_null_key", "billing", e.name)


def _valid_utc(v: str) -> bool:
    try:
        dt.datetime.strptime(v, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return False
    return True


def test_survey_answers_are_nested_and_in_scale(drops: Drops) -> None:
    rows = [r for d in drop_dirs(drops.root, "survey") for r in read_jsonl_file(d / "responses.jsonl")]
    out_of_scale = 0
    comments = 0
    for r in rows:
        answers = r["answers"]
        assert isinstance(answers, list) and 1 <= len(answers) <= 2
        score = answers[0]
        qtype = score["question_id"]
        assert (score["scale_min"], score["scale_max"]) == C.SCALES[qtype]
        assert isinstance(score["value"], int)
        out_of_scale += not (score["scale_min"] <= score["value"] <= score["scale_max"])
        if len(answers) == 2:
            assert answers[1]["question_id"] == "comment" and isinstance(answers[1]["text"], str)
            comments += 1
        if r["survey_type"] in C.SURVEY_TYPES:
            assert r["survey_type"] == qtype
    assert out_of_scale == drops.truth["mess"]["bad_score"]["planted"]
    assert comments > 0


def test_empty_deltas_are_header_only_csv_and_empty_jsonl(tmp_path) -> None:
    from simulator import GeneratorConfig, generate

    generate(GeneratorConfig(customers=30, days=4, start=dt.date(2026, 1, 5), seed=3), tmp_path)
    empty_csv = empty_jsonl = 0
    for system in C.SYSTEMS:
        for d in drop_dirs(tmp_path, system):
            m = json.loads((d / C.MANIFEST_NAME).read_text())
            for f in m["files"]:
                if f["rows"] == 0:
                    data = (d / f["path"]).read_bytes()
                    e = C.ENTITIES[(system, f["entity"])]
                    if f["path"].endswith(".csv"):
                        assert data.decode(e.encoding) == e.separator.join(e.column_names) + "\n"
                        empty_csv += 1
                    else:
                        assert data == b""
                        empty_jsonl += 1
    assert empty_csv > 0 and empty_jsonl > 0
