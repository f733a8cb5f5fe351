"""Hand-made bad (and awkward but valid) drops: each case checks the exact outcome of ``load_drop``.

Refused drops name the file and the problem and write nothing to the zones; bad records go to
quarantine with their line, column and reason while the rest loads; awkward-but-valid files
(BOM, CRLF, quoted newlines, empty deltas, DST edges, schema drift) load exactly.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from ingestion import contract as C
from ingestion.load import QUARANTINE_SCHEMA, DropLoad, Zones, load_drop, read_audit, read_partition_counts
from ingestion.manifest import DropRefused
from ingestion.validate import _local

DAY = dt.date(2026, 10, 11)
UTC = dt.UTC


# ---- building drops ----------------------------------------------------------------------------
def _records_in(e: C.Entity, data: bytes) -> int:
    """The true number of data records of a file (best effort for undecodable bytes)."""
    if e.format == "jsonl":
        return sum(1 for line in data.decode("utf-8", "replace").split("\n") if line.strip())
    text = data.decode("utf-8-sig" if e.encoding == "utf-8" else e.encoding, "replace")
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))  # a field may be megabytes long
    try:
        rows = [r for r in csv.reader(io.StringIO(text, newline=""), delimiter=e.separator) if r and r != [""]]
    except csv.Error:  # not CSV (an unterminated quote): count the non-blank lines
        rows = [line for line in text.splitlines() if line.strip()]
    return max(len(rows) - 1, 0)


def _empty_file(e: C.Entity) -> bytes:
    return b"" if e.format == "jsonl" else (e.separator.join(e.column_names) + "\n").encode(e.encoding)


def make_drop(landing: Path, system: str, day: dt.date, files: dict[str, bytes], *,
              manifest_overrides: dict[str, dict] | None = None, rows: dict[str, int] | None = None,
              extra_files: dict[str, bytes] | None = None, manifest: bool = True) -> Path:
    """Write ``<landing>/<system>/<day>/`` with the given entity files (the others as valid empty
    deltas) and a correct ``_manifest.json``; ``manifest_overrides`` replaces fields of one entity's
    entry, ``rows`` its row count; ``extra_files`` are written next to them, unlisted."""
    folder = landing / system / day.isoformat()
    folder.mkdir(parents=True)
    entries = []
    for e in C.entities_of(system):
        data = files.get(e.name, _empty_file(e))
        (folder / e.filename).write_bytes(data)
        entry = {"entity": e.name, "path": e.filename, "rows": (rows or {}).get(e.name, _records_in(e, data)),
                 "sha256": hashlib.sha256(data).hexdigest()}
        entries.append(entry | (manifest_overrides or {}).get(e.name, {}))
    for name, data in (extra_files or {}).items():
        (folder / name).write_bytes(data)
    if manifest:
        doc = {"contract_version": C.CONTRACT_VERSION, "system": system, "business_date": day.isoformat(),
               "extracted_at": "2026-10-11T01:12:00Z", "files": entries}
        (folder / C.MANIFEST_NAME).write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return folder


def csv_file(system: str, entity: str, records: list[dict[str, str]], *, drop: tuple[str, ...] = (),
             extra: tuple[str, ...] = (), header: bool = True, newline: str = "\n",
             encoding: str | None = None, bom: bool = False) -> bytes:
    """A contract CSV (separator of the system) of text records; ``drop`` leaves columns out."""
    e = C.ENTITIES[(system, entity)]
    columns = [c for c in e.column_names if c not in drop] + list(extra)
    buf = io.StringIO(newline="")
    w = csv.writer(buf, delimiter=e.separator, quotechar='"', lineterminator=newline)
    if header:
        w.writerow(columns)
    for r in records:
        w.writerow([r.get(c, "") for c in columns])
    return (("\ufeff" if bom else "") + buf.getvalue()).encode(encoding or e.encoding)


def jsonl_file(records: list[dict | str]) -> bytes:
    """JSON Lines; a ``str`` record is written verbatim (for malformed lines)."""
    return "".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n"
                   for r in records).encode("utf-8")


def customer(customer_id: str = "C1", **kw: str) -> dict[str, str]:
    return {"customer_id": customer_id, "email": f"{customer_id.lower()}@example.com", "phone": "",
            "first_name": "Anne", "last_name": "Dupont", "country": "FR", "city": "Paris", "segment": "consumer",
            "persona": "", "acquisition_channel": "referral", "marketing_consent": "true",
            "created_at": "2026-01-05T10:00:00Z", "updated_at": "2026-10-10T09:30:00Z", "is_deleted": "false"} | kw


def order(order_id: str = "O1", **kw: str) -> dict[str, str]:
    return {"order_id": order_id, "erp_account_id": "A1", "crm_customer_id": "C1", "email": "",
            "order_ts": "10/10/2026 14:05:00", "sales_channel": "web", "currency": "EUR", "total_amount": "12,50",
            "promised_delivery_date": "15/10/2026", "status": "placed", "updated_ts": "10/10/2026 14:05:00"} | kw


def invoice(invoice_id: str = "I1", **kw: object) -> dict:
    return {"invoice_id": invoice_id, "billing_account_id": "B1", "customer_ref": "C1", "order_id": "O1",
            "subscription_id": None, "issued_at": "2026-10-10T12:00:00Z", "due_at": "2026-11-09T12:00:00Z",
            "amount_due_minor": 1250, "currency": "EUR", "status": "open", "updated_at": "2026-10-10T12:00:00Z"} | kw


def response(response_id: str = "r-1", *, survey_type: str = "csat", value: object = 4,
             scale: tuple[int, int] = (1, 5)) -> dict:
    return {"response_id": response_id, "survey_id": f"post_delivery_{survey_type}", "survey_type": survey_type,
            "customer_ref": "C1", "touchpoint": "delivery", "related_id": "O1", "sent_at": "2026-10-09T09:00:00Z",
            "responded_at": "2026-10-10T18:42:10Z", "language": "fr",
            "answers": [{"question_id": survey_type, "value": value, "scale_min": scale[0], "scale_max": scale[1]},
                        {"question_id": "comment", "text": "Livraison en retard, personne ne répond."}]}


# ---- loading and checking ----------------------------------------------------------------------
@pytest.fixture
def zones(tmp_path: Path) -> Zones:
    return Zones(landing=tmp_path / "landing", raw=tmp_path / "raw", quarantine=tmp_path / "quarantine")


def refused(zones: Zones, system: str, day: dt.date = DAY) -> DropRefused:
    """Load a drop that must be refused: nothing lands, the audit says 'refused'."""
    with pytest.raises(DropRefused) as info:
        load_drop(zones, system, day)
    for e in C.entities_of(system):
        assert not zones.data_file(system, e.name, day).exists()
        assert not zones.quarantine_file(system, e.name, day).exists()
    # files of entities validated before the refused one were written to temporary names: removed
    assert not [p for zone in (zones.raw, zones.quarantine) for p in zone.rglob("*.tmp")]
    audit = read_audit(zones)
    assert audit["status"].to_list() == ["refused"] * len(C.entities_of(system))
    assert audit["error"].unique().to_list() == [str(info.value)]
    return info.value


def loaded(zones: Zones, system: str, day: dt.date = DAY) -> DropLoad:
    """Load a drop that must load, and check loaded + quarantined = manifest rows for every file."""
    result = load_drop(zones, system, day)
    assert result.status == "loaded"
    for e in result.entities:
        assert e.reconciles, e
    return result


def raw(zones: Zones, system: str, entity: str, day: dt.date = DAY) -> pl.DataFrame:
    return pl.read_parquet(zones.data_file(system, entity, day))


def quarantine(zones: Zones, system: str, entity: str, day: dt.date = DAY) -> pl.DataFrame:
    """The partition's quarantined records; none when it has no quarantine file (nothing was quarantined)."""
    path = zones.quarantine_file(system, entity, day)
    return pl.read_parquet(path) if path.exists() else pl.DataFrame(schema=QUARANTINE_SCHEMA)


def counts(result: DropLoad, entity: str) -> tuple[int, int, int]:
    e = result.entity(entity)
    return e.loaded, e.quarantined, e.manifest_rows


# ---- refused: bad files ------------------------------------------------------------------------
def test_crm_csv_in_cp1252_is_refused_naming_utf8_and_the_line(zones: Zones) -> None:
    data = csv_file("crm", "customers", [customer("C1"), customer("C2", city="Orléans")], encoding="cp1252")
    make_drop(zones.landing, "crm", DAY, {"customers": data})
    exc = refused(zones, "crm")
    assert Path(exc.path).name == "customers.csv"
    assert "utf-8" in exc.problem.lower()
    assert "at line 3" in exc.problem
    assert str(exc).startswith(str(zones.landing / "crm" / DAY.isoformat() / "customers.csv"))


def test_erp_csv_in_utf8_is_refused_naming_both_encodings(zones: Zones) -> None:
    data = csv_file("erp", "orders", [order(email="rené@example.com")], encoding="utf-8")
    make_drop(zones.landing, "erp", DAY, {"orders": data})
    exc = refused(zones, "erp")
    assert Path(exc.path).name == "orders.csv"
    assert "UTF-8" in exc.problem and "cp1252" in exc.problem


def test_truncated_file_is_refused_with_a_sha256_mismatch(zones: Zones) -> None:
    data = csv_file("crm", "customers", [customer("C1"), customer("C2")])
    folder = make_drop(zones.landing, "crm", DAY, {"customers": data})
    cut = data[: data.rindex(b"C2") + 20]  # in the middle of the last record
    (folder / "customers.csv").write_bytes(cut)
    exc = refused(zones, "crm")
    assert Path(exc.path).name == "customers.csv"
    assert exc.problem.startswith("sha256 mismatch")
    assert hashlib.sha256(cut).hexdigest() in exc.problem


def test_manifest_row_count_one_too_many_is_refused(zones: Zones) -> None:
    make_drop(zones.landing, "erp", DAY, {"orders": csv_file("erp", "orders", [order()])}, rows={"orders": 2})
    exc = refused(zones, "erp")
    assert Path(exc.path).name == "orders.csv"
    assert exc.problem == "manifest says 2 records, the file holds 1"


def test_checksum_of_other_bytes_is_refused(zones: Zones) -> None:
    other = hashlib.sha256(b"something else").hexdigest()
    make_drop(zones.landing, "billing", DAY, {"invoices": jsonl_file([invoice()])},
              manifest_overrides={"invoices": {"sha256": other}})
    exc = refused(zones, "billing")
    assert Path(exc.path).name == "invoices.jsonl"
    assert exc.problem.startswith(f"sha256 mismatch: manifest says {other}")


def test_drop_without_manifest_is_refused(zones: Zones) -> None:
    folder = make_drop(zones.landing, "crm", DAY, {"customers": csv_file("crm", "customers", [customer()])},
                       manifest=False)
    exc = refused(zones, "crm")
    assert exc.path == str(folder)
    assert "no _manifest.json" in exc.problem


def test_file_not_in_manifest_is_refused(zones: Zones) -> None:
    make_drop(zones.landing, "crm", DAY, {}, extra_files={"notes.txt": b"call Bob\n"})
    exc = refused(zones, "crm")
    assert Path(exc.path).name == "notes.txt"
    assert "not listed" in exc.problem


def test_manifest_path_escaping_the_drop_folder_is_refused(zones: Zones) -> None:
    data = csv_file("erp", "orders", [order()])
    folder = make_drop(zones.landing, "erp", DAY, {"orders": data},
                       manifest_overrides={"orders": {"path": "../orders.csv"}})
    (folder.parent / "orders.csv").write_bytes(data)  # the escaping path does point at a real, matching file
    exc = refused(zones, "erp")
    assert exc.path == f"{folder / C.MANIFEST_NAME} files[0]"
    assert "'../orders.csv'" in exc.problem and "directly inside the drop folder" in exc.problem


def test_missing_required_column_is_refused(zones: Zones) -> None:
    make_drop(zones.landing, "erp", DAY, {"orders": csv_file("erp", "orders", [order()], drop=("status",))})
    exc = refused(zones, "erp")
    assert Path(exc.path).name == "orders.csv"
    assert "missing required column" in exc.problem
    assert exc.problem.endswith("status")


def test_a_file_refused_after_others_were_validated_leaves_nothing(zones: Zones) -> None:
    make_drop(zones.landing, "crm", DAY, {"customers": csv_file("crm", "customers", [customer("C1")]),
                                          "campaign_touches": b"touch_id\nT1\n"})
    exc = refused(zones, "crm")
    assert Path(exc.path).name == "campaign_touches.csv" and "missing required column" in exc.problem


def test_csv_without_header_row_is_refused(zones: Zones) -> None:
    data = csv_file("crm", "customers", [customer("C1"), customer("C2")], header=False)
    make_drop(zones.landing, "crm", DAY, {"customers": data}, rows={"customers": 2})
    exc = refused(zones, "crm")
    assert Path(exc.path).name == "customers.csv"
    assert exc.problem.startswith("no header row: line 1 is 'C1,")


# ---- loaded: valid files in awkward shapes -----------------------------------------------------
def test_extra_column_loads_and_is_kept_in_extra(zones: Zones) -> None:
    data = csv_file("crm", "customers", [customer("C1", loyalty_tier="gold"), customer("C2")],
                    extra=("loyalty_tier",))
    make_drop(zones.landing, "crm", DAY, {"customers": data})
    result = loaded(zones, "crm")
    assert counts(result, "customers") == (2, 0, 2)
    assert result.entity("customers").new_columns == ["loyalty_tier"]
    df = raw(zones, "crm", "customers")
    assert "loyalty_tier" not in df.columns
    assert [json.loads(x) for x in df["_extra"]] == [{"loyalty_tier": "gold"}, {"loyalty_tier": None}]


def test_header_only_csv_and_empty_jsonl_load_zero_rows(zones: Zones) -> None:
    make_drop(zones.landing, "crm", DAY, {})
    make_drop(zones.landing, "billing", DAY, {})
    for system in ("crm", "billing"):
        result = loaded(zones, system)
        for e in C.entities_of(system):
            assert counts(result, e.name) == (0, 0, 0)
            df = raw(zones, system, e.name)
            assert df.height == 0
            # nothing quarantined and no earlier version to replace: no quarantine file (read back as 0 rows)
            assert not zones.quarantine_file(system, e.name, DAY).exists()
            assert read_partition_counts(zones, system, e.name, DAY) == (0, 0)
            assert set(e.column_names) <= set(df.columns)
    assert raw(zones, "crm", "customers").schema["created_at"] == pl.Datetime("us", "UTC")
    assert raw(zones, "billing", "invoices").schema["issued_at"] == pl.Datetime("us", "UTC")


def test_a_quarantine_file_is_written_once_a_record_is_quarantined_and_replaced_by_an_empty_one(
        zones: Zones) -> None:
    """A clean file writes no quarantine file; one with a bad record writes it; a corrected re-extract of
    that date without the bad record replaces it with an empty file (no stale row survives), and a clean
    entity of that re-extract still writes none."""
    bad = csv_file("crm", "customers", [customer("C1"), customer("C2", segment="vip")])
    folder = make_drop(zones.landing, "crm", DAY, {"customers": bad})
    assert counts(loaded(zones, "crm"), "customers") == (1, 1, 2)
    assert quarantine(zones, "crm", "customers")["line"].to_list() == [3]
    others = [e.name for e in C.entities_of("crm") if e.name != "customers"]
    assert not [n for n in others if zones.quarantine_file("crm", n, DAY).exists()]
    # the corrected re-extract: the same date, the record fixed
    shutil.rmtree(folder)
    make_drop(zones.landing, "crm", DAY, {"customers": csv_file("crm", "customers", [customer("C1"),
                                                                                      customer("C2")])})
    assert counts(loaded(zones, "crm"), "customers") == (2, 0, 2)
    replaced = quarantine(zones, "crm", "customers")
    assert replaced.height == 0 and replaced.schema == pl.Schema(QUARANTINE_SCHEMA)
    assert read_partition_counts(zones, "crm", "customers", DAY) == (2, 0)
    assert not [n for n in others if zones.quarantine_file("crm", n, DAY).exists()]
    assert not [p for zone in (zones.raw, zones.quarantine) for p in zone.rglob("*.tmp")]


def test_utf8_bom_is_not_part_of_the_first_column_name(zones: Zones) -> None:
    data = csv_file("crm", "customers", [customer("C1", city="Orléans")], bom=True)
    assert data.startswith(b"\xef\xbb\xbfcustomer_id,")
    make_drop(zones.landing, "crm", DAY, {"customers": data})
    result = loaded(zones, "crm")
    assert counts(result, "customers") == (1, 0, 1)
    df = raw(zones, "crm", "customers")
    assert df.columns[0] == "customer_id"
    assert df.select("customer_id", "city", "is_deleted").rows() == [("C1", "Orléans", False)]
    assert df["_extra"].to_list() == [None]


def test_crlf_line_endings_load_without_carriage_returns(zones: Zones) -> None:
    data = csv_file("crm", "customers", [customer("C1"), customer("C2"), customer("C3")], newline="\r\n")
    assert data.count(b"\r\n") == 4
    make_drop(zones.landing, "crm", DAY, {"customers": data})
    result = loaded(zones, "crm")
    assert counts(result, "customers") == (3, 0, 3)
    df = raw(zones, "crm", "customers")
    text = df.select(pl.col(pl.Utf8).exclude("_source_file"))
    assert not any("\r" in v for col in text.iter_columns() for v in col.drop_nulls())
    assert df["_source_line"].to_list() == [2, 3, 4]
    assert df["is_deleted"].to_list() == [False, False, False]


def test_quoted_newline_is_kept_and_shifts_later_line_numbers(zones: Zones) -> None:
    data = csv_file("crm", "customers", [customer("C1", city="Saint-Denis\nBâtiment B"), customer("C2"),
                                         customer("C3", last_name="Le\nGoff"), customer("C4")])
    make_drop(zones.landing, "crm", DAY, {"customers": data})
    result = loaded(zones, "crm")
    assert counts(result, "customers") == (4, 0, 4)
    df = raw(zones, "crm", "customers")
    assert df["customer_id"].to_list() == ["C1", "C2", "C3", "C4"]
    assert df["city"][0] == "Saint-Denis\nBâtiment B"
    assert df["last_name"][2] == "Le\nGoff"
    assert df["_source_line"].to_list() == [2, 4, 5, 7]


# ---- quarantined: bad records ------------------------------------------------------------------
def only_quarantined(zones: Zones, system: str, entity: str) -> dict:
    q = quarantine(zones, system, entity)
    assert q.height == 1
    row = q.row(0, named=True)
    assert row["file"] == f"{system}/{DAY.isoformat()}/{C.ENTITIES[(system, entity)].filename}"
    return row


def test_each_record_of_a_file_is_quarantined_with_its_own_first_problem(zones: Zones) -> None:
    """Records failing different checks in one file (validation plans the reasons for the checks that
    failed in the file): each gets the column and reason of its first problem, in contract order."""
    data = csv_file("crm", "customers", [
        customer("C1"), customer("C2", created_at="2026-02-30T10:00:00Z"), customer("C3", segment="vip"),
        customer("C4", country="", segment="vip"), customer("C5", marketing_consent="yes"), customer("C6")])
    make_drop(zones.landing, "crm", DAY, {"customers": data})
    assert counts(loaded(zones, "crm"), "customers") == (2, 4, 6)
    q = quarantine(zones, "crm", "customers").sort("line")
    assert q["line"].to_list() == [3, 4, 5, 6]
    assert q["column"].to_list() == ["created_at", "segment", "country", "marketing_consent"]
    reasons = q["reason"].to_list()
    assert "not an ISO-8601 UTC timestamp" in reasons[0] and "'2026-02-30T10:00:00Z'" in reasons[0]
    assert "unknown value" in reasons[1] and "'vip'" in reasons[1]
    assert reasons[2] == "column 'country': missing required value"
    assert "not a boolean" in reasons[3] and "'yes'" in reasons[3]
    assert [json.loads(r)["customer_id"] for r in q["record"]] == ["C2", "C3", "C4", "C5"]


def test_impossible_date_is_quarantined(zones: Zones) -> None:
    data = csv_file("crm", "customers", [customer("C1"), customer("C2", created_at="2026-02-30T10:00:00Z")])
    make_drop(zones.landing, "crm", DAY, {"customers": data})
    assert counts(loaded(zones, "crm"), "customers") == (1, 1, 2)
    q = only_quarantined(zones, "crm", "customers")
    assert (q["line"], q["column"]) == (3, "created_at")
    assert "not an ISO-8601 UTC timestamp" in q["reason"] and "2026-02-30T10:00:00Z" in q["reason"]
    assert json.loads(q["record"])["customer_id"] == "C2"
    assert raw(zones, "crm", "customers")["customer_id"].to_list() == ["C1"]


def test_dst_gap_local_time_is_moved_forward_and_loaded(zones: Zones) -> None:
    data = csv_file("erp", "orders", [order(order_ts="29/03/2026 02:30:00", updated_ts="29/03/2026 02:30:00")])
    make_drop(zones.landing, "erp", DAY, {"orders": data})
    assert counts(loaded(zones, "erp"), "orders") == (1, 0, 1)
    df = raw(zones, "erp", "orders")
    assert df.schema["order_ts"] == pl.Datetime("us", "UTC")
    assert df["order_ts"].to_list() == [dt.datetime(2026, 3, 29, 1, 30, tzinfo=UTC)]
    assert df["updated_ts"].to_list() == [dt.datetime(2026, 3, 29, 1, 30, tzinfo=UTC)]


def test_dst_gap_rows_among_others_read_as_the_exact_parse_reads_every_row(zones: Zones) -> None:
    """Validation parses local timestamps without the DST-gap rule and re-parses only the rows left null
    (ingestion/validate.py): gap times, bad values and good ones mixed in one file land as ``_local``
    applied to every row would land them, each in its row."""
    stamps = [("10/03/2026 08:00:00", "29/03/2026 02:30:00"), ("29/03/2026 02:00:00", "11/03/2026 09:15:00"),
              ("12/03/2026 10:00:00", "12/03/2026 10:00:00"), ("31/03/2026 25:00:00", "13/03/2026 11:00:00"),
              ("29/03/2026 02:59:59", "29/03/2026 03:00:00"), ("14/03/2026 12:00:00", "29/03/2026 01:59:59")]
    data = csv_file("erp", "orders", [order(f"O{i}", order_ts=a, updated_ts=b) for i, (a, b) in enumerate(stamps)])
    make_drop(zones.landing, "erp", DAY, {"orders": data})
    assert counts(loaded(zones, "erp"), "orders") == (5, 1, 6)
    good = [(f"O{i}", a, b) for i, (a, b) in enumerate(stamps) if i != 3]
    exact = pl.DataFrame({"a": [a for _i, a, _b in good], "b": [b for _i, _a, b in good]}).select(
        _local(pl.col("a")), _local(pl.col("b")))
    df = raw(zones, "erp", "orders")
    assert df["order_id"].to_list() == [i for i, _a, _b in good]
    assert df["order_ts"].to_list() == exact["a"].to_list() and df["updated_ts"].to_list() == exact["b"].to_list()
    assert df["order_ts"][1] == dt.datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 02:00, in the gap: 03:00 CEST
    assert df["updated_ts"][0] == dt.datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert only_quarantined(zones, "erp", "orders")["column"] == "order_ts"


def test_dst_overlap_local_time_takes_the_first_occurrence(zones: Zones) -> None:
    data = csv_file("erp", "orders", [order(order_ts="25/10/2026 02:30:00", updated_ts="25/10/2026 03:30:00")])
    make_drop(zones.landing, "erp", DAY, {"orders": data})
    assert counts(loaded(zones, "erp"), "orders") == (1, 0, 1)
    df = raw(zones, "erp", "orders")
    assert df["order_ts"].to_list() == [dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC)]
    assert df["updated_ts"].to_list() == [dt.datetime(2026, 10, 25, 2, 30, tzinfo=UTC)]  # CET after the switch


def test_decimal_point_in_erp_amount_is_quarantined(zones: Zones) -> None:
    data = csv_file("erp", "orders", [order("O1", total_amount="12.50"), order("O2")])
    make_drop(zones.landing, "erp", DAY, {"orders": data})
    assert counts(loaded(zones, "erp"), "orders") == (1, 1, 2)
    q = only_quarantined(zones, "erp", "orders")
    assert (q["line"], q["column"]) == (2, "total_amount")
    assert "decimal point" in q["reason"] and "'12.50'" in q["reason"]
    df = raw(zones, "erp", "orders")
    assert df["order_id"].to_list() == ["O2"]
    assert df.schema["total_amount"] == pl.Decimal(18, 2)
    assert str(df["total_amount"][0]) == "12.50"


def test_score_outside_its_scale_is_quarantined(zones: Zones) -> None:
    data = jsonl_file([response("r-1", survey_type="nps", value=9, scale=(0, 10)),
                       response("r-2", survey_type="nps", value=11, scale=(0, 10))])
    make_drop(zones.landing, "survey", DAY, {"responses": data})
    assert counts(loaded(zones, "survey"), "responses") == (1, 1, 2)
    q = only_quarantined(zones, "survey", "responses")
    assert (q["line"], q["column"]) == (2, "answers")
    assert "outside" in q["reason"] and "11" in q["reason"]
    df = raw(zones, "survey", "responses")
    assert df.select("response_id", "score_question_id", "score", "scale_min", "scale_max").rows() == [
        ("r-1", "nps", 9, 0, 10)]
    assert df["comment"].to_list() == ["Livraison en retard, personne ne répond."]


def test_unknown_enum_value_is_quarantined(zones: Zones) -> None:
    data = csv_file("erp", "orders", [order("O1"), order("O2", status="fax"), order("O3")])
    make_drop(zones.landing, "erp", DAY, {"orders": data})
    assert counts(loaded(zones, "erp"), "orders") == (2, 1, 3)
    q = only_quarantined(zones, "erp", "orders")
    assert (q["line"], q["column"]) == (3, "status")
    assert "unknown value" in q["reason"] and "'fax'" in q["reason"]


def test_null_key_is_quarantined(zones: Zones) -> None:
    data = csv_file("crm", "customers", [customer("C1"), customer("")])
    make_drop(zones.landing, "crm", DAY, {"customers": data})
    assert counts(loaded(zones, "crm"), "customers") == (1, 1, 2)
    q = only_quarantined(zones, "crm", "customers")
    assert (q["line"], q["column"]) == (3, "customer_id")
    assert q["reason"] == "column 'customer_id': missing required value"


def test_malformed_json_line_is_quarantined_and_the_rest_loads(zones: Zones) -> None:
    data = jsonl_file([invoice("I1"), '{"invoice_id": "I2",', invoice("I3")])
    make_drop(zones.landing, "billing", DAY, {"invoices": data})
    assert counts(loaded(zones, "billing"), "invoices") == (2, 1, 3)
    q = only_quarantined(zones, "billing", "invoices")
    assert q["line"] == 2
    assert q["reason"].startswith("malformed JSON")
    df = raw(zones, "billing", "invoices")
    assert df.select("invoice_id", "_source_line").rows() == [("I1", 1), ("I3", 3)]


def test_json_values_of_the_wrong_type_are_quarantined(zones: Zones) -> None:
    make_drop(zones.landing, "survey", DAY, {"responses": jsonl_file([response("r-1"), response("r-2", value="7")])})
    make_drop(zones.landing, "billing", DAY, {"invoices": jsonl_file([invoice("I1", amount_due_minor="1200"),
                                                                      invoice("I2")])})
    assert counts(loaded(zones, "survey"), "responses") == (1, 1, 2)
    q = only_quarantined(zones, "survey", "responses")
    assert (q["line"], q["column"]) == (2, "answers")
    assert "must be an integer" in q["reason"] and "'7'" in q["reason"]

    assert counts(loaded(zones, "billing"), "invoices") == (1, 1, 2)
    q = only_quarantined(zones, "billing", "invoices")
    assert (q["line"], q["column"]) == (1, "amount_due_minor")
    assert "expected an integer" in q["reason"] and "'1200'" in q["reason"]
    assert raw(zones, "billing", "invoices")["amount_due_minor"].to_list() == [1250]
