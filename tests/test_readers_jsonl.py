"""The JSON Lines fast path (Arrow's strict reader) gives exactly what the exact Python path gives, and
hands every file it cannot read exactly to the exact path, which finds the record's line and problem."""

from __future__ import annotations

from pathlib import Path

import pytest
from polars.testing import assert_frame_equal

from ingestion import contract as C
from ingestion.readers import _jsonl_exact, _jsonl_fast, read_file

from .conftest import Drops

PAYMENTS = C.ENTITIES[("billing", "payments")]
GOOD = ('{"payment_id":"PAY1","invoice_id":"INV1","attempted_at":"2026-10-20T10:00:00Z","amount_minor":1250,'
        '"currency":"EUR","method":"card","status":"succeeded","failure_reason":null}')


def test_fast_path_equals_the_exact_path_on_every_generated_file(october_drops: Drops) -> None:
    fast_files = exact_files = drifted = 0
    for (system, _name), e in C.ENTITIES.items():
        if e.format != "jsonl":
            continue
        for path in sorted((october_drops.root / system).glob(f"*/{e.filename}")):
            data = path.read_bytes()
            fast = _jsonl_fast(e, data)
            exact = _jsonl_exact(e, path, data.decode("utf-8"))
            if fast is None:
                exact_files += 1
                continue
            fast_files += 1
            drifted += bool(fast[1])
            assert_frame_equal(fast[0], exact.frame)
            assert fast[1] == exact.extra_columns
    # most billing files take the fast path, drifted invoices too; survey files and empty files do not
    assert fast_files > exact_files > 0 and drifted > 0


@pytest.mark.parametrize(("name", "line2", "problem"), [
    ("string for an integer", GOOD.replace('"amount_minor":1250', '"amount_minor":"1250"'),
     "column 'amount_minor': expected an integer, got string '1250'"),
    ("number for a string", GOOD.replace('"currency":"EUR"', '"currency":978'),
     "column 'currency': expected a string, got integer 978"),
    ("float for an integer", GOOD.replace('"amount_minor":1250', '"amount_minor":12.5'),
     "column 'amount_minor': expected an integer, got number 12.5"),
    ("boolean for an integer", GOOD.replace('"amount_minor":1250', '"amount_minor":true'),
     "column 'amount_minor': expected an integer, got boolean True"),
    ("malformed line", GOOD[:-1], "malformed JSON"),
    ("array line", "[1, 2]", "expected a JSON object, got array"),
])
def test_a_file_the_fast_path_refuses_is_read_exactly(tmp_path: Path, name: str, line2: str, problem: str) -> None:
    data = f"{GOOD}\n{line2}\n{GOOD}\n".encode()
    assert _jsonl_fast(PAYMENTS, data) is None, name
    path = tmp_path / "payments.jsonl"
    path.write_bytes(data)
    frame = read_file(PAYMENTS, path).frame
    assert frame["_problem"].to_list()[0] is None and frame["_problem"].to_list()[2] is None
    assert frame["_problem"][1].startswith(problem), frame["_problem"][1]
    assert frame["_source_line"].to_list() == [1, 2, 3]


def test_blank_lines_extra_fields_and_bom_take_the_exact_path(tmp_path: Path) -> None:
    blank = f"{GOOD}\n\n{GOOD}\n".encode()
    assert _jsonl_fast(PAYMENTS, blank) is None
    path = tmp_path / "payments.jsonl"
    path.write_bytes(blank)
    assert read_file(PAYMENTS, path).frame["_source_line"].to_list() == [1, 3]  # the physical lines

    drift = GOOD.replace("}", ',"device":"mobile"}')
    mixed = f"{drift}\n{GOOD}\n".encode()  # a record without the extra field: its _extra is null
    assert _jsonl_fast(PAYMENTS, mixed) is None
    path.write_bytes(mixed)
    raw = read_file(PAYMENTS, path)
    assert raw.extra_columns == ["device"] and raw.frame["_extra"].to_list() == ['{"device": "mobile"}', None]

    assert _jsonl_fast(PAYMENTS, b"\xef\xbb\xbf" + GOOD.encode() + b"\n") is None


@pytest.mark.parametrize(("extra", "fast"), [
    (',"device":"mobile"', True),
    (',"tax_minor":0,"b":true,"a":"x y \u00e9"', True),  # keys sorted, a boolean, non-ASCII text
    (',"tax_minor":-12', True),
    (',"device":null', False),  # explicitly null: the exact path keeps {"device": null}
    (',"rate":0.5', False),  # a float: json.dumps and Arrow could spell it differently
    (',"meta":{"a":1}', False),
    (',"tags":[1,2]', False),
    (',"device":"a\\"b"', False),  # an escape: the file holds a backslash
    (',"device":"x","device":"y"', False),  # a key twice: quarantined by the exact path
])
def test_drifted_fields_on_the_fast_path_read_as_the_exact_path_reads_them(
        tmp_path: Path, extra: str, fast: bool) -> None:
    data = (GOOD.replace("}", extra + "}") + "\n" + GOOD.replace("PAY1", "PAY2").replace("}", extra + "}")).encode()
    got = _jsonl_fast(PAYMENTS, data)
    assert (got is not None) == fast, extra
    path = tmp_path / "payments.jsonl"
    path.write_bytes(data)
    exact = _jsonl_exact(PAYMENTS, path, data.decode("utf-8"))
    if got is not None:
        assert_frame_equal(got[0], exact.frame)
        assert got[1] == exact.extra_columns
    assert read_file(PAYMENTS, path).frame.equals(exact.frame)


def test_fast_path_reads_nulls_missing_keys_and_a_last_line_without_newline() -> None:
    data = (GOOD + "\n" + '{"payment_id":"PAY2","invoice_id":"INV1","attempted_at":"2026-10-20T11:00:00Z",'
            '"amount_minor":-5,"currency":"EUR","method":"card","status":"failed"}').encode()
    got = _jsonl_fast(PAYMENTS, data)
    assert got is not None
    fast = got[0]
    assert fast["amount_minor"].to_list() == [1250, -5]
    assert fast["failure_reason"].to_list() == [None, None]
    assert fast["_source_line"].to_list() == [1, 2]
    assert fast["_problem"].null_count() == 2 and fast["_extra"].null_count() == 2


def test_lines_that_are_not_one_object_each_take_the_exact_path(tmp_path: Path) -> None:
    # two objects on a line and a blank line: Arrow counts as many records as lines, on other lines
    data = f"{GOOD}{GOOD}\n\n{GOOD}\n".encode()
    assert _jsonl_fast(PAYMENTS, data) is None
    path = tmp_path / "payments.jsonl"
    path.write_bytes(data)
    frame = read_file(PAYMENTS, path).frame
    assert frame["_source_line"].to_list() == [1, 3]
    assert frame["_problem"][0].startswith("malformed JSON: Extra data")
    # an object over two lines, and two objects on a third
    split = GOOD.replace('"currency":', '"currency":\n')
    assert _jsonl_fast(PAYMENTS, f"{split}\n{GOOD}{GOOD}\n".encode()) is None
    assert _jsonl_fast(PAYMENTS, f" {GOOD}\n".encode()) is None  # a line not starting with its object
    assert _jsonl_fast(PAYMENTS, f"{GOOD} \n".encode()) is None  # nor ending with it
    assert _jsonl_fast(PAYMENTS, f"{GOOD}\r\n{GOOD}".encode()) is not None  # CRLF, no final line end
