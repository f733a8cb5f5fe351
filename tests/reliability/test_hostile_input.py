"""Hostile and broken input (issue 12): drops built to break the readers and the manifest parser.

The rule for every drop: never a crash without a clear message, never a silent loss. Either the
drop is refused as a whole (``DropRefused`` naming the file and the problem, nothing written to
the raw or quarantine zones, the audit says "refused"), or it loads and, for every file,
loaded + quarantined == the manifest's rows, each quarantined record with its line and reason.

The 24 hand-made cases of tests/test_ingestion_bad_input.py are kinds of this corpus too; this
module adds the hostile ones (symlinks, paths, encodings, NUL bytes, huge and deep input, lying
manifests, ...) and fuzzes the readers and the manifest parser with Hypothesis. Each kind records
one row of RELIABILITY.md ("Hostile input"). Policy: docs/reliability.md, "Hostile input".
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import os
import shutil
import tempfile
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import ingestion.load
from ingestion import contract as C
from ingestion.load import DropLoad, Zones, load_drop
from ingestion.manifest import DropRefused, read_manifest
from tests.reliability import conftest
from tests.test_ingestion_bad_input import (
    DAY,
    _records_in,
    csv_file,
    customer,
    invoice,
    jsonl_file,
    loaded,
    make_drop,
    order,
    quarantine,
    raw,
    refused,
    response,
)

CATEGORY = "hostile input"  # the section of RELIABILITY.md
record = functools.partial(conftest.record, category=CATEGORY)
pytestmark = pytest.mark.reliability

FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FUZZ_FULL = settings(FUZZ, max_examples=250)


@pytest.fixture
def zones(tmp_path: Path) -> Zones:
    return Zones(landing=tmp_path / "landing", raw=tmp_path / "raw", quarantine=tmp_path / "quarantine")


def folder_of(zones: Zones, system: str, day: dt.date = DAY) -> Path:
    return zones.landing / system / day.isoformat()


def expect_refused(zones: Zones, system: str, scenario: str, name: str, *needles: str) -> DropRefused:
    """The drop is refused naming ``name`` (a file name, or the manifest entry) and every needle."""
    exc = refused(zones, system)
    assert name in exc.path, (exc.path, name)
    for needle in needles:
        assert needle in exc.problem, (needle, exc.problem)
    assert "internal error" not in exc.problem
    record(scenario=scenario, ok=True, rows_lost=0, detail=f"refused: {Path(exc.path).name}: {exc.problem[:160]}")
    return exc


def expect_loaded(zones: Zones, system: str, entity: str, scenario: str, n_loaded: int, n_quarantined: int,
                  ) -> DropLoad:
    result = loaded(zones, system)
    e = result.entity(entity)
    assert (e.loaded, e.quarantined) == (n_loaded, n_quarantined), e
    q = quarantine(zones, system, entity)
    assert q.height == n_quarantined
    assert q["line"].null_count() == 0 and q["reason"].null_count() == 0
    record(scenario=scenario, ok=True, rows_lost=e.manifest_rows - e.loaded - e.quarantined,
           detail=f"loaded {e.loaded}, quarantined {e.quarantined}"
                  + (f" ({q['reason'][0][:100]})" if n_quarantined else ""))
    return result


def set_manifest(zones: Zones, system: str, edit) -> None:  # noqa: ANN001 - edit(dict) -> object
    path = folder_of(zones, system) / C.MANIFEST_NAME
    doc = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(edit(doc)), encoding="utf-8")


def two_customers(**kw: str) -> bytes:
    return csv_file("crm", "customers", [customer("C1"), customer("C2", **kw)])


# ---- paths and links in the manifest and in landing ----------------------------------------------
def test_absolute_path_in_the_manifest_is_refused(zones: Zones) -> None:
    data = csv_file("erp", "orders", [order()])
    folder = make_drop(zones.landing, "erp", DAY, {"orders": data},
                       manifest_overrides={"orders": {"path": str(zones.landing.parent / "orders.csv")}})
    (zones.landing.parent / "orders.csv").write_bytes(data)  # it exists and matches: still refused
    expect_refused(zones, "erp", "absolute path in the manifest", f"{folder / C.MANIFEST_NAME} files[0]",
                   "must name a file directly inside the drop folder", "absolute")


@pytest.mark.parametrize("path", ["..", "./customers.csv", "sub\\customers.csv", "customers.csv/", ""])
def test_path_that_is_not_a_plain_file_name_is_refused(zones: Zones, path: str) -> None:
    make_drop(zones.landing, "crm", DAY, {}, manifest_overrides={"customers": {"path": path}})
    kind = {"..": "'..'", "./customers.csv": "'./x'", "sub\\customers.csv": "backslash", "customers.csv/": "'x/'",
            "": "empty"}[path]
    expect_refused(zones, "crm", f"manifest path {kind}", "files[0]", "directly inside the drop folder")


def test_symlinked_file_pointing_outside_the_drop_is_refused(zones: Zones) -> None:
    data = two_customers()
    folder = make_drop(zones.landing, "crm", DAY, {"customers": data})
    outside = zones.landing.parent / "elsewhere.csv"
    outside.write_bytes(data)  # same bytes: the sha256 would match if the link were followed
    (folder / "customers.csv").unlink()
    (folder / "customers.csv").symlink_to(outside)
    expect_refused(zones, "crm", "symlinked file pointing outside landing", "customers.csv", "symbolic link",
                   "never followed", str(outside))


def test_symlinked_file_pointing_inside_the_drop_is_refused(zones: Zones) -> None:
    folder = make_drop(zones.landing, "crm", DAY, {})
    (folder / "campaign_touches.csv").unlink()
    (folder / "campaign_touches.csv").symlink_to("customers.csv")
    expect_refused(zones, "crm", "symlinked file pointing at a sibling", "campaign_touches.csv", "symbolic link")


def test_drop_folder_that_is_a_symlink_is_refused(zones: Zones, tmp_path: Path) -> None:
    elsewhere = make_drop(tmp_path / "outside", "crm", DAY, {"customers": two_customers()})
    (zones.landing / "crm").mkdir(parents=True)
    folder_of(zones, "crm").symlink_to(elsewhere, target_is_directory=True)
    expect_refused(zones, "crm", "drop folder is a symlink out of landing", DAY.isoformat(),
                   "drop folder is a symbolic link", "never followed")


def test_system_folder_that_is_a_symlink_is_refused(zones: Zones, tmp_path: Path) -> None:
    make_drop(tmp_path / "outside", "crm", DAY, {"customers": two_customers()})
    zones.landing.mkdir(parents=True)
    (zones.landing / "crm").symlink_to(tmp_path / "outside" / "crm", target_is_directory=True)
    expect_refused(zones, "crm", "system folder is a symlink out of landing", "crm", "system folder is a symbolic link")


def test_manifest_that_is_a_symlink_is_refused(zones: Zones, tmp_path: Path) -> None:
    folder = make_drop(zones.landing, "crm", DAY, {})
    (tmp_path / "m.json").write_bytes((folder / C.MANIFEST_NAME).read_bytes())
    (folder / C.MANIFEST_NAME).unlink()
    (folder / C.MANIFEST_NAME).symlink_to(tmp_path / "m.json")
    expect_refused(zones, "crm", "manifest is a symlink", C.MANIFEST_NAME, "symbolic link")


def test_listed_file_that_is_a_directory_is_refused(zones: Zones) -> None:
    folder = make_drop(zones.landing, "crm", DAY, {})
    (folder / "customers.csv").unlink()
    (folder / "customers.csv").mkdir()
    expect_refused(zones, "crm", "listed file is a directory", "customers.csv", "is a directory, not a file")


def test_listed_file_that_is_a_fifo_is_refused_without_blocking(zones: Zones) -> None:
    folder = make_drop(zones.landing, "crm", DAY, {})
    (folder / "customers.csv").unlink()
    os.mkfifo(folder / "customers.csv")  # opening it for reading would wait for a writer for ever
    expect_refused(zones, "crm", "listed file is a FIFO", "customers.csv", "not a regular file")


def test_unlisted_os_file_like_ds_store_is_refused(zones: Zones) -> None:
    make_drop(zones.landing, "crm", DAY, {}, extra_files={".DS_Store": b"\x00\x00\x00\x01Bud1"})
    expect_refused(zones, "crm", "unlisted .DS_Store in the drop", ".DS_Store", "not listed in the manifest")


def test_unlisted_subdirectory_is_refused(zones: Zones) -> None:
    folder = make_drop(zones.landing, "crm", DAY, {})
    (folder / "__MACOSX").mkdir()
    expect_refused(zones, "crm", "unlisted subdirectory in the drop", "__MACOSX", "directory is not listed")


def test_file_name_that_is_not_utf8_is_refused_with_a_printable_message(zones: Zones) -> None:
    folder = make_drop(zones.landing, "crm", DAY, {})
    (folder / os.fsdecode(b"notes\xff.csv")).write_bytes(b"x\n")
    exc = expect_refused(zones, "crm", "file name not valid UTF-8", "notes", "not listed")
    assert "\\udcff" in exc.path  # escaped, so it can be printed and kept in the audit


# ---- files that change -------------------------------------------------------------------------
def test_file_that_grows_after_its_manifest_was_written_is_refused(zones: Zones) -> None:
    data = two_customers()
    folder = make_drop(zones.landing, "crm", DAY, {"customers": data})
    with (folder / "customers.csv").open("ab") as fh:  # the exporter was still writing
        fh.write(csv_file("crm", "customers", [customer("C3")], header=False))
    expect_refused(zones, "crm", "file grew after its manifest", "customers.csv", "sha256 mismatch")


def test_file_changed_between_hash_and_parse_loads_the_bytes_hashed(zones: Zones,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The bytes parsed are the bytes hashed: each listed file is read once, by the manifest's check, and
    parsed from those bytes. A file changed after the check (an exporter still writing, a replacement) is
    never read again: the drop loads what the manifest vouched for, not the new bytes. (Before, the readers
    opened the file again after the check, and later a second read was compared with the manifest.)"""
    folder = make_drop(zones.landing, "crm", DAY, {"customers": two_customers()})
    real = ingestion.load.read_manifest

    def then_change(*args):  # noqa: ANN002, ANN202
        m = real(*args)
        (folder / "customers.csv").write_bytes(two_customers(city="Tampered"))
        return m

    monkeypatch.setattr(ingestion.load, "read_manifest", then_change)
    expect_loaded(zones, "crm", "customers", "file changed between hash and parse", 2, 0)
    cities = pl.read_parquet(zones.data_file("crm", "customers", DAY))["city"].to_list()
    assert "Tampered" not in cities and len(cities) == 2


# ---- the manifest itself -----------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "text", "needle"), [
    ("not JSON", b"contract_version: 1\n", "not valid UTF-8 JSON"),
    ("empty file", b"", "not valid UTF-8 JSON"),
    ("a JSON array", b"[1, 2]", "must be a JSON object"),
    ("not UTF-8", b'{"system": "\xe9"}', "not valid UTF-8 JSON"),
    ("nested 100000 deep", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
])
def test_manifest_that_is_not_a_json_object_is_refused(zones: Zones, kind: str, text: bytes, needle: str) -> None:
    make_drop(zones.landing, "crm", DAY, {})
    (folder_of(zones, "crm") / C.MANIFEST_NAME).write_bytes(text)
    expect_refused(zones, "crm", f"manifest {kind}", C.MANIFEST_NAME, needle)


def test_manifest_with_a_utf8_bom_loads(zones: Zones) -> None:
    folder = make_drop(zones.landing, "crm", DAY, {"customers": two_customers()})
    path = folder / C.MANIFEST_NAME
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    expect_loaded(zones, "crm", "customers", "manifest with a UTF-8 BOM", 2, 0)


@pytest.mark.parametrize(("kind", "edit", "needle"), [
    ("contract_version a string", lambda m: m | {"contract_version": "1"}, "contract_version '1'"),
    ("contract_version true", lambda m: m | {"contract_version": True}, "contract_version True"),
    ("files an object", lambda m: m | {"files": {"customers": m["files"][0]}}, "'files' must be a list"),
    ("entry a string", lambda m: m | {"files": ["customers.csv"]}, "needs entity, path, rows and sha256"),
    ("entity a list", lambda m: m | {"files": [m["files"][0] | {"entity": ["customers"]}] + m["files"][1:]},
     "unknown entity ['customers']"),
    ("path a number", lambda m: m | {"files": [m["files"][0] | {"path": 7}] + m["files"][1:]}, "path 7"),
    ("extracted_at a number", lambda m: m | {"extracted_at": 1760000000}, "extracted_at 1760000000"),
    ("system missing", lambda m: {k: v for k, v in m.items() if k != "system"}, "manifest system None"),
])
def test_manifest_fields_of_the_wrong_type_are_refused(zones: Zones, kind: str, edit, needle: str) -> None:  # noqa: ANN001
    make_drop(zones.landing, "crm", DAY, {})
    set_manifest(zones, "crm", edit)
    expect_refused(zones, "crm", f"manifest {kind}", C.MANIFEST_NAME, needle)


@pytest.mark.parametrize("rows", [-1, True, 2.0, "2", None, 2**70])
def test_rows_that_is_not_a_non_negative_integer_is_refused(zones: Zones, rows: object) -> None:
    make_drop(zones.landing, "crm", DAY, {"customers": two_customers()}, rows={"customers": rows})  # type: ignore[dict-item]
    if rows == 2**70:  # an integer, but a lie
        expect_refused(zones, "crm", "rows 2**70", "customers.csv", f"manifest says {2**70} records, the file holds 2")
    else:
        expect_refused(zones, "crm", f"rows {rows!r}", "files[0]", f"rows {rows!r} must be a non-negative integer")


@pytest.mark.parametrize(("kind", "claimed"), [("far more", 1000), ("far fewer", 0), ("a few fewer", 3)])
def test_manifest_that_lies_about_rows_is_refused(zones: Zones, kind: str, claimed: int) -> None:
    data = csv_file("crm", "customers", [customer(f"C{i}") for i in range(7)])
    make_drop(zones.landing, "crm", DAY, {"customers": data}, rows={"customers": claimed})
    expect_refused(zones, "crm", f"manifest rows {kind} ({claimed} for 7)", "customers.csv",
                   f"manifest says {claimed} records, the file holds 7")


def test_duplicate_entity_in_the_manifest_is_refused(zones: Zones) -> None:
    make_drop(zones.landing, "crm", DAY, {})
    set_manifest(zones, "crm", lambda m: m | {"files": m["files"] + [m["files"][0]]})
    expect_refused(zones, "crm", "entity listed twice in the manifest", f"files[{len(C.entities_of('crm'))}]",
                   "'customers' listed twice")


def test_uppercase_sha256_is_accepted(zones: Zones) -> None:
    data = two_customers()
    make_drop(zones.landing, "crm", DAY, {"customers": data},
              manifest_overrides={"customers": {"sha256": hashlib.sha256(data).hexdigest().upper()}})
    expect_loaded(zones, "crm", "customers", "sha256 in uppercase hex", 2, 0)


@pytest.mark.parametrize("sha", ["abc123", "0" * 65, "g" * 64, 12])
def test_sha256_that_is_not_64_hex_digits_is_refused(zones: Zones, sha: object) -> None:
    make_drop(zones.landing, "crm", DAY, {}, manifest_overrides={"customers": {"sha256": sha}})
    expect_refused(zones, "crm", f"sha256 {str(sha)[:8]!r} (not 64 hex digits)", "files[0]",
                   "must be 64 hexadecimal digits")


# ---- encodings ---------------------------------------------------------------------------------
def test_invalid_utf8_in_a_utf8_csv_is_refused_naming_line_and_byte(zones: Zones) -> None:
    data = two_customers(city="Lyon@").replace(b"Lyon@", b"Lyon\xff")
    make_drop(zones.landing, "crm", DAY, {"customers": data})
    expect_refused(zones, "crm", "invalid UTF-8 byte in a CRM CSV", "customers.csv", "not valid utf-8 at line 3",
                   "0xff")


def test_invalid_utf8_in_jsonl_is_refused_naming_line_and_byte(zones: Zones) -> None:
    data = jsonl_file([invoice("I1"), invoice("I2", customer_ref="C@")]).replace(b"C@", b"C\xc3(")
    make_drop(zones.landing, "billing", DAY, {"invoices": data})
    expect_refused(zones, "billing", "invalid UTF-8 in JSON Lines", "invoices.jsonl", "not valid UTF-8 at line 2",
                   "0xc3")


def test_smart_quotes_from_cp1252_in_a_utf8_csv_are_refused(zones: Zones) -> None:
    data = two_customers(city="@Paris@").replace(b"@Paris@", b"\x93Paris\x94 \x80")
    make_drop(zones.landing, "crm", DAY, {"customers": data})
    expect_refused(zones, "crm", "cp1252 smart quotes and euro in a UTF-8 CSV", "customers.csv",
                   "not valid utf-8 at line 3", "0x93")


def test_utf16_csv_is_refused(zones: Zones) -> None:
    data = two_customers().decode("utf-8").encode("utf-16")
    make_drop(zones.landing, "crm", DAY, {"customers": data}, rows={"customers": 2})
    expect_refused(zones, "crm", "UTF-16 CSV", "customers.csv", "not valid utf-8 at line 1", "0xff")


@pytest.mark.parametrize("byte", [0x81, 0x8D, 0x8F, 0x90, 0x9D])
def test_byte_undefined_in_cp1252_is_refused_for_the_erp(zones: Zones, byte: int) -> None:
    data = csv_file("erp", "orders", [order("O1"), order("O2", email="x@example.com")])
    data = data.replace(b"x@example", bytes([byte]) + b"@example")
    make_drop(zones.landing, "erp", DAY, {"orders": data})
    expect_refused(zones, "erp", f"byte 0x{byte:02X} undefined in cp1252 (ERP)", "orders.csv",
                   "not valid cp1252 at line 3", f"0x{byte:02x}")


def test_euro_sign_and_smart_quotes_in_cp1252_load_for_the_erp(zones: Zones) -> None:
    data = csv_file("erp", "orders", [order("O1", email="“rené”@example.com €")])
    assert b"\x93ren\xe9\x94@example.com \x80" in data
    make_drop(zones.landing, "erp", DAY, {"orders": data})
    expect_loaded(zones, "erp", "orders", "cp1252 euro (0x80) and smart quotes (0x93/0x94) in the ERP", 1, 0)
    assert raw(zones, "erp", "orders")["email"].to_list() == ["“rené”@example.com €"]


# ---- NUL bytes ---------------------------------------------------------------------------------
def test_nul_byte_in_a_csv_value_is_quarantined(zones: Zones) -> None:
    data = csv_file("crm", "customers", [customer("C1"), customer("C2", last_name="Du\x00pont"), customer("C3")])
    make_drop(zones.landing, "crm", DAY, {"customers": data})
    expect_loaded(zones, "crm", "customers", "NUL byte in a CSV value", 2, 1)
    q = quarantine(zones, "crm", "customers").row(0, named=True)
    assert (q["line"], q["column"], q["reason"]) == (3, "last_name", "column 'last_name': NUL character in the value")


def test_zero_filled_csv_is_refused(zones: Zones) -> None:
    make_drop(zones.landing, "crm", DAY, {"customers": b"\x00" * 4096}, rows={"customers": 0})
    expect_refused(zones, "crm", "CSV of NUL bytes (a zero-filled block)", "customers.csv", "no header row")


def test_nul_byte_in_jsonl_is_quarantined(zones: Zones) -> None:
    data = jsonl_file([invoice("I1"), invoice("I2", customer_ref="C\x00"), invoice("I3")])  # escaped: \u0000
    data += b'{"invoice_id": "I4\x00"}\n'  # a raw NUL byte: not JSON at all
    make_drop(zones.landing, "billing", DAY, {"invoices": data})
    expect_loaded(zones, "billing", "invoices", "NUL in JSON Lines (escaped and raw)", 2, 2)
    q = quarantine(zones, "billing", "invoices").sort("line")
    assert q["line"].to_list() == [2, 4]
    assert q["reason"][0] == "column 'customer_ref': NUL character in the value"
    assert q["reason"][1].startswith("malformed JSON: Invalid control character")


# ---- size --------------------------------------------------------------------------------------
def test_a_5_mb_csv_field_loads_intact(zones: Zones) -> None:
    big = "x" * 5_000_000
    make_drop(zones.landing, "crm", DAY, {"customers": two_customers(city=big)})
    expect_loaded(zones, "crm", "customers", "a 5 MB field in a CSV", 2, 0)
    assert raw(zones, "crm", "customers")["city"].to_list() == ["Paris", big]


def test_a_12_mb_jsonl_line_loads_intact(zones: Zones) -> None:
    big = "é" * 6_000_000  # 12 MB of UTF-8
    data = jsonl_file([response("r-1"), response("r-2") | {"answers": [
        {"question_id": "csat", "value": 5, "scale_min": 1, "scale_max": 5}, {"question_id": "comment", "text": big}]}])
    make_drop(zones.landing, "survey", DAY, {"responses": data})
    expect_loaded(zones, "survey", "responses", "a 12 MB JSON Lines line", 2, 0)
    assert raw(zones, "survey", "responses")["comment"][1] == big


def test_a_very_long_column_name_is_kept_as_drift(zones: Zones) -> None:
    name = "n" * 100_000
    data = csv_file("crm", "customers", [customer("C1", **{name: "v"})], extra=(name,))
    make_drop(zones.landing, "crm", DAY, {"customers": data})
    result = expect_loaded(zones, "crm", "customers", "a 100 000-character column name", 1, 0)
    assert result.entity("customers").new_columns == [name]
    assert json.loads(raw(zones, "crm", "customers")["_extra"][0]) == {name: "v"}


@pytest.mark.reliability_full
def test_a_file_of_tens_of_mb_loads_exactly(zones: Zones) -> None:
    e = C.ENTITIES[("erp", "order_lines")]
    header = (";".join(e.column_names) + "\n").encode("cp1252")
    block = b"".join(f"O{i};{i % 9 + 1};SKU-{i};jardin;{i % 5 + 1};{i},{i % 100:02d}\n".encode() for i in range(10_000))
    repeats = 60  # ~ 40 MB, 600 000 records
    data = header + block * repeats
    make_drop(zones.landing, "erp", DAY, {"order_lines": data}, rows={"order_lines": 10_000 * repeats})
    expect_loaded(zones, "erp", "order_lines", f"a {len(data) / 1e6:.0f} MB file (600 000 records)",
                  10_000 * repeats, 0)
    df = raw(zones, "erp", "order_lines")
    assert df["_source_line"].to_list()[-1] == 10_000 * repeats + 1
    assert df["unit_price"].sum() == Decimal(sum(int(f"{i}{i % 100:02d}") for i in range(10_000)) * repeats) / 100


# ---- CSV structure -----------------------------------------------------------------------------
def test_zero_byte_csv_is_refused(zones: Zones) -> None:
    make_drop(zones.landing, "crm", DAY, {"customers": b""}, rows={"customers": 0})
    expect_refused(zones, "crm", "zero-byte CSV (no header)", "customers.csv", "empty file")


def test_header_repeated_mid_file_is_quarantined_with_its_own_reason(zones: Zones) -> None:
    body = csv_file("crm", "customers", [customer("C1"), customer("C2")])
    data = body + body.replace(b"C1", b"C3").replace(b"C2", b"C4")  # two exports concatenated
    make_drop(zones.landing, "crm", DAY, {"customers": data})
    expect_loaded(zones, "crm", "customers", "header row repeated mid-file", 4, 1)
    q = quarantine(zones, "crm", "customers").row(0, named=True)
    assert q["line"] == 4 and "header row repeated" in q["reason"]


def test_rows_with_too_many_and_too_few_fields_are_quarantined(zones: Zones) -> None:
    data = csv_file("crm", "customers", [customer("C1"), customer("C2"), customer("C3")])
    lines = data.split(b"\n")
    lines[2] += b",surplus,fields"
    lines[3] = lines[3].rsplit(b",", 3)[0]
    make_drop(zones.landing, "crm", DAY, {"customers": b"\n".join(lines)})
    expect_loaded(zones, "crm", "customers", "rows with too many and too few fields", 1, 2)
    q = quarantine(zones, "crm", "customers").sort("line")
    assert q.select("line", "reason").rows() == [(3, "record has 16 fields, the header has 14"),
                                                 (4, "record has 11 fields, the header has 14")]


def test_unterminated_quote_at_eof_is_refused(zones: Zones) -> None:
    data = two_customers() + b'C3,"unterminated@example.com,,Anne\n'
    make_drop(zones.landing, "crm", DAY, {"customers": data}, rows={"customers": 3})
    expect_refused(zones, "crm", "unterminated quote at end of file", "customers.csv", "unreadable CSV",
                   "unexpected end of data")


def test_cr_only_line_endings_load_with_their_line_numbers(zones: Zones) -> None:
    data = csv_file("crm", "customers", [customer("C1"), customer("C2", created_at="bad"), customer("C3")],
                    newline="\r")
    assert b"\n" not in data
    make_drop(zones.landing, "crm", DAY, {"customers": data})
    expect_loaded(zones, "crm", "customers", "CR-only (classic Mac) line endings", 2, 1)
    assert raw(zones, "crm", "customers")["_source_line"].to_list() == [2, 4]
    assert quarantine(zones, "crm", "customers")["line"].to_list() == [3]


def test_trailing_line_without_newline_loads(zones: Zones) -> None:
    make_drop(zones.landing, "crm", DAY, {"customers": two_customers().rstrip(b"\n")})
    make_drop(zones.landing, "billing", DAY, {"invoices": jsonl_file([invoice("I1"), invoice("I2")]).rstrip(b"\n")})
    expect_loaded(zones, "billing", "invoices", "JSON Lines: last line without a newline", 2, 0)
    expect_loaded(zones, "crm", "customers", "CSV: last line without a newline", 2, 0)


def test_whitespace_only_lines(zones: Zones) -> None:
    """A whitespace-only JSON line is blank (not a record); in a CSV it is a record of one field."""
    csv_data = two_customers().replace(b"\nC2", b"\n   \t\nC2")
    make_drop(zones.landing, "crm", DAY, {"customers": csv_data})
    make_drop(zones.landing, "billing", DAY, {"invoices": b"  \n" + jsonl_file([invoice("I1")]) + b"\t \r\n"})
    result = expect_loaded(zones, "billing", "invoices", "JSON Lines: whitespace-only lines (not records)", 1, 0)
    assert result.entity("invoices").manifest_rows == 1
    expect_loaded(zones, "crm", "customers", "CSV: a whitespace-only line (a 1-field record)", 2, 1)
    assert quarantine(zones, "crm", "customers").select("line", "reason").rows() == [
        (3, "record has 1 fields, the header has 14")]


def test_header_with_an_empty_column_name_loads_as_drift(zones: Zones) -> None:
    lines = two_customers().split(b"\n")
    data = b"\n".join([lines[0] + b",", lines[1] + b",", lines[2] + b",", b""])  # a trailing separator
    make_drop(zones.landing, "crm", DAY, {"customers": data})
    result = expect_loaded(zones, "crm", "customers", "trailing separator (an unnamed column)", 2, 0)
    assert result.entity("customers").new_columns == ["_unnamed_15"]


def test_binary_garbage_named_csv_is_refused(zones: Zones) -> None:
    make_drop(zones.landing, "crm", DAY, {"customers": bytes(range(256)) * 8}, rows={"customers": 0})
    expect_refused(zones, "crm", "binary bytes in a .csv file", "customers.csv", "not valid utf-8")


# ---- JSON structure ----------------------------------------------------------------------------
@pytest.mark.parametrize("system", ["survey", "billing"])
def test_json_nested_10000_deep_is_quarantined_not_a_recursion_error(zones: Zones, system: str) -> None:
    deep = "[" * 10_000 + "]" * 10_000
    if system == "survey":
        good = json.dumps(response("r-1"))
        bad = json.dumps(response("r-2")).replace('"answers": [', f'"answers": [{deep},')
        entity = "responses"
    else:
        good, bad = json.dumps(invoice("I1")), json.dumps(invoice("I2") | {"note": 0}).replace("0}", deep + "}")
        entity = "invoices"
    make_drop(zones.landing, system, DAY, {entity: jsonl_file([good, bad, good])})
    expect_loaded(zones, system, entity, f"{system}: a JSON value nested 10 000 deep", 2, 1)
    q = quarantine(zones, system, entity).row(0, named=True)
    assert q["line"] == 2 and "nested too deeply" in q["reason"]


def test_jsonl_line_that_is_an_array_or_a_scalar_is_quarantined(zones: Zones) -> None:
    data = jsonl_file([invoice("I1"), "[1, 2]", "42", '"text"', "null", invoice("I2")])
    make_drop(zones.landing, "billing", DAY, {"invoices": data})
    expect_loaded(zones, "billing", "invoices", "JSON Lines: arrays and scalars instead of objects", 2, 4)
    q = quarantine(zones, "billing", "invoices").sort("line")
    assert q["reason"].to_list() == ["expected a JSON object, got array", "expected a JSON object, got integer",
                                     "expected a JSON object, got string", "expected a JSON object, got null"]


def test_duplicate_keys_in_a_json_object_are_quarantined(zones: Zones) -> None:
    data = jsonl_file([invoice("I1"), json.dumps(invoice("I2"))[:-1] + ', "amount_due_minor": 1}', invoice("I3")])
    make_drop(zones.landing, "billing", DAY, {"invoices": data})
    expect_loaded(zones, "billing", "invoices", "duplicate keys in a JSON object", 2, 1)
    q = quarantine(zones, "billing", "invoices").row(0, named=True)
    assert (q["line"], q["reason"]) == (2, "duplicate key 'amount_due_minor' in a JSON object")


def test_nan_and_infinity_in_json_numbers_are_quarantined(zones: Zones) -> None:
    data = jsonl_file([invoice("I1"), json.dumps(invoice("I2")).replace("1250", "NaN"),
                       json.dumps(invoice("I3")).replace("1250", "-Infinity")])
    make_drop(zones.landing, "billing", DAY, {"invoices": data})
    expect_loaded(zones, "billing", "invoices", "NaN and -Infinity in JSON numbers", 1, 2)
    assert quarantine(zones, "billing", "invoices").sort("line")["reason"].to_list() == [
        "column 'amount_due_minor': expected an integer, got number nan",
        "column 'amount_due_minor': expected an integer, got number -inf"]


def test_integers_beyond_64_bits_are_quarantined(zones: Zones) -> None:
    data = jsonl_file([invoice("I1"), invoice("I2", amount_due_minor=2**70),
                       json.dumps(invoice("I3")).replace("1250", "9" * 5000)])
    make_drop(zones.landing, "billing", DAY, {"invoices": data})
    make_drop(zones.landing, "survey", DAY, {"responses": jsonl_file([response("r-1"), response("r-2", value=2**64)])})
    expect_loaded(zones, "billing", "invoices", "JSON integers beyond 64 bits (2**70, 5000 digits)", 1, 2)
    reasons = quarantine(zones, "billing", "invoices").sort("line")["reason"].to_list()
    assert reasons[0] == f"column 'amount_due_minor': integer out of the 64-bit range: {2**70}"
    assert reasons[1].startswith("malformed JSON: Exceeds the limit (4300 digits)")
    expect_loaded(zones, "survey", "responses", "survey score beyond 64 bits", 1, 1)
    assert "out of the 64-bit range" in quarantine(zones, "survey", "responses")["reason"][0]


def test_lone_surrogate_escape_is_quarantined(zones: Zones) -> None:
    data = jsonl_file([invoice("I1"), json.dumps(invoice("I2", customer_ref="C\ud800")),
                       json.dumps(invoice("I3") | {"\udc00note": 1})])  # in a value, in a (drifted) key
    make_drop(zones.landing, "billing", DAY, {"invoices": data})
    result = expect_loaded(zones, "billing", "invoices", "lone surrogate (\\ud800) in a JSON value and key", 1, 2)
    assert quarantine(zones, "billing", "invoices")["reason"].str.contains("lone surrogate").all()
    assert result.entity("invoices").new_columns == []


# ---- fuzzing -----------------------------------------------------------------------------------
FUZZ_TARGETS = {  # (system, entity) -> a valid file to mutate
    ("crm", "customers"): csv_file("crm", "customers", [customer("C1"), customer("C2", city="Saint-Étienne\nB"),
                                                        customer("C3", created_at="2026-02-30T10:00:00Z")]),
    ("erp", "orders"): csv_file("erp", "orders", [order("O1"), order("O2", total_amount="1,5", email="é€@x.fr"),
                                                  order("O3", status="fax")]),
    ("billing", "invoices"): jsonl_file([invoice("I1"), invoice("I2", order_id=None), invoice("I3", status="x")]),
    ("survey", "responses"): jsonl_file([response("r-1"), response("r-2", survey_type="nps", value=11,
                                                                         scale=(0, 10))]),
}
SPECIAL = [b'"', b",", b";", b"\n", b"\r", b"\r\n", b"\x00", b"\xff", b"\x81", b"\xc3", b"{", b"}", b"[", b"]",
           b":", b"\\", b"\\u0000", b"\\ud800", b"\xef\xbb\xbf", b" ", b"1e999", b"NaN", b"-", b"9" * 30, b"true"]


@st.composite
def mutated(draw: st.DrawFn, valid: bytes) -> bytes:
    """Arbitrary bytes, or a valid file with a few bytes replaced, inserted, deleted or cut."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=300))
    data = bytearray(valid)
    body = valid.index(b"\n") + 1 if b"\n" in valid and not valid.startswith(b"{") else 0
    for _ in range(draw(st.integers(1, 4))):  # mostly in the records: a broken header refuses the file early
        lo = 0 if draw(st.integers(0, 4)) == 0 else min(body, len(data))
        at = draw(st.integers(lo, len(data)))
        op = draw(st.sampled_from(["insert", "replace", "delete", "cut", "duplicate"]))
        piece = draw(st.sampled_from(SPECIAL) | st.binary(min_size=1, max_size=4))
        if op == "insert":
            data[at:at] = piece
        elif op == "replace":
            data[at:at + len(piece)] = piece
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 20))]
        elif op == "cut":
            del data[at:]
        else:
            data[at:at] = data[max(0, at - 40):at]
    return bytes(data)


def check_load(system: str, entity: str, data: bytes) -> str:
    """Land a drop whose manifest is right for ``data``: refused by name, or reconciled. Never another error."""
    root = Path(tempfile.mkdtemp(prefix="fuzz-"))
    try:
        zones = Zones(root / "landing", root / "raw", root / "quarantine")
        e = C.ENTITIES[(system, entity)]
        make_drop(zones.landing, system, DAY, {entity: data}, rows={entity: _records_in(e, data)})
        try:
            result = load_drop(zones, system, DAY)
        except DropRefused as exc:
            assert exc.path and exc.problem
            assert "internal error" not in exc.problem, exc.problem
            assert not (zones.raw / system).exists() and not (zones.quarantine / system).exists()
            return "refused"
        for el in result.entities:
            assert el.loaded + el.quarantined == el.manifest_rows, el
        q_file = zones.quarantine_file(system, entity, DAY)
        assert q_file.exists() == (result.entity(entity).quarantined > 0)  # a file once a record is quarantined
        if not q_file.exists():
            return "loaded"
        q = pl.read_parquet(q_file)
        assert q["line"].null_count() == 0 and q["reason"].null_count() == 0
        assert (q["line"] >= 1).all()
        return "loaded"
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("target", list(FUZZ_TARGETS), ids="/".join)
def test_fuzz_readers_refuse_by_name_or_reconcile(target: tuple[str, str]) -> None:
    outcomes: list[str] = []

    @FUZZ
    @given(data=mutated(FUZZ_TARGETS[target]))
    @example(data=FUZZ_TARGETS[target])
    def run(data: bytes) -> None:
        outcomes.append(check_load(*target, data))

    run()
    record(scenario=f"fuzz: {'/'.join(target)} reader, {len(outcomes)} mutated or random files", ok=True,
           rows_lost=0, detail=f"loaded {outcomes.count('loaded')}, refused {outcomes.count('refused')} (by name); "
                               "no other exception")


@pytest.mark.reliability_full
@pytest.mark.parametrize("target", list(FUZZ_TARGETS), ids="/".join)
def test_fuzz_readers_many_examples(target: tuple[str, str]) -> None:
    outcomes: list[str] = []

    @FUZZ_FULL
    @given(data=mutated(FUZZ_TARGETS[target]))
    def run(data: bytes) -> None:
        outcomes.append(check_load(*target, data))

    run()
    record(scenario=f"fuzz (full): {'/'.join(target)} reader, {len(outcomes)} files", ok=True, rows_lost=0,
           detail=f"loaded {outcomes.count('loaded')}, refused {outcomes.count('refused')} (by name)")


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                                        max_size=4), max_leaves=12)
MANIFEST_KEYS = ["contract_version", "system", "business_date", "extracted_at", "files"]
ENTRY_KEYS = ["entity", "path", "rows", "sha256"]


@pytest.fixture(scope="module")
def manifest_drop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    landing = tmp_path_factory.mktemp("manifest-fuzz") / "landing"
    folder = make_drop(landing, "crm", DAY, {"customers": two_customers()})
    return folder, (folder / C.MANIFEST_NAME).read_bytes()


@st.composite
def manifests(draw: st.DrawFn, valid: bytes) -> bytes:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return draw(st.binary(max_size=200))
    if kind <= 2:  # the valid text with a few bytes changed
        data = bytearray(valid)
        for _ in range(draw(st.integers(1, 3))):
            at = draw(st.integers(0, len(data)))
            data[at:at + draw(st.integers(0, 3))] = draw(st.sampled_from(SPECIAL) | st.binary(max_size=3))
        return bytes(data)
    doc = json.loads(valid)
    for _ in range(draw(st.integers(1, 3))):  # a field (of the manifest or of an entry) replaced or removed
        if draw(st.booleans()):
            target, keys = doc, MANIFEST_KEYS
        else:
            files = doc["files"] if isinstance(doc.get("files"), list) and doc["files"] else [{}]
            target, keys = draw(st.sampled_from(files)), ENTRY_KEYS
            if not isinstance(target, dict):
                continue
        key = draw(st.sampled_from(keys))
        if draw(st.integers(0, 4)) == 0:
            target.pop(key, None)
        else:
            target[key] = draw(JSON_VALUES)
    return json.dumps(doc).encode("utf-8")


def test_fuzz_manifest_parser_refuses_by_name_or_succeeds(manifest_drop: tuple[Path, bytes]) -> None:
    folder, valid = manifest_drop
    outcomes: list[str] = []

    @settings(FUZZ, max_examples=150)
    @given(text=manifests(valid))
    @example(text=valid)
    def run(text: bytes) -> None:
        (folder / C.MANIFEST_NAME).write_bytes(text)
        try:
            m = read_manifest(folder, "crm", DAY)
        except DropRefused as exc:
            assert str(folder) in exc.path and exc.problem
            outcomes.append("refused")
            return
        assert [f.entity.name for f in m.files] == [e.name for e in C.entities_of("crm")]
        outcomes.append("accepted")

    try:
        run()
    finally:
        (folder / C.MANIFEST_NAME).write_bytes(valid)
    assert "accepted" in outcomes
    record(scenario=f"fuzz: manifest parser, {len(outcomes)} mutated or random manifests", ok=True, rows_lost=0,
           detail=f"accepted {outcomes.count('accepted')}, refused {outcomes.count('refused')} (by name); "
                  "no other exception")


@pytest.mark.parametrize("target", [("crm", "customers"), ("erp", "orders"), ("billing", "invoices"),
                                    ("survey", "responses")], ids="/".join)
def test_fuzz_fast_and_exact_parsers_agree(target: tuple[str, str]) -> None:
    """The fast (Arrow) path may decline a file, never read it differently from the exact path."""
    from ingestion import readers as R

    e, where = C.ENTITIES[target], Path("x")
    seen = {"same": 0, "declined": 0}

    seed = FUZZ_TARGETS[target]
    # besides the mutations (most of which the fast path declines), the valid file itself and, for JSON Lines,
    # the same file drifted (every record with one more integer field: the fast path keeps it, as `_extra`):
    # the fast path is exercised whatever examples the derandomized search draws
    drifted = seed.replace(b"}\n", b', "tax_minor": 5}\n') if e.format == "jsonl" else seed

    @settings(FUZZ, max_examples=120)
    @given(data=mutated(seed))
    @example(data=seed)
    @example(data=drifted)
    def run(data: bytes) -> None:
        try:
            text = R._decode(data, e, where) if e.format != "jsonl" else data.decode("utf-8")
            if e.format == "jsonl":  # the fast path also names the drifted fields: the exact path's too
                read, exact_file = R._jsonl_fast(e, data), R._jsonl_exact(e, where, text)
                fast, exact = (read[0] if read is not None else None), exact_file.frame
                if read is not None:
                    assert read[1] == exact_file.extra_columns, (data, read[1], exact_file.extra_columns)
            else:
                R._allow_fields_of(text)
                header = R._header(text, e, where)
                simple = "\n\n" not in text.replace("\r\n", "\n") and text.count("\r") == text.count("\r\n")
                fast = R._csv_fast(text, header, e) if simple else None
                exact = R._csv_exact(text, header, e, where)
        except (DropRefused, UnicodeDecodeError):
            return
        if fast is None:
            seen["declined"] += 1
            return
        assert fast.equals(exact.select(fast.columns)), (data, fast, exact)
        seen["same"] += 1

    run()
    assert seen["same"] > 0
    record(scenario=f"fuzz: fast and exact {'/'.join(target)} parsers agree", ok=True, rows_lost=0,
           detail=f"loaded {seen['same']} files both ways, identically; the fast path declined {seen['declined']}")
