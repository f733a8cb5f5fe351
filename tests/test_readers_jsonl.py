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
    fast_files = exact_files = drifted = survey_fast = 0
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
            survey_fast += system == "survey"
            assert_frame_equal(fast[0], exact.frame)
            assert fast[1] == exact.extra_columns
    # most files take the fast path, drifted invoices and survey responses too; empty files do not
    assert fast_files > exact_files > 0 and drifted > 0
    assert survey_fast > 0


def test_every_generated_survey_file_takes_the_fast_path(october_drops: Drops) -> None:
    """The generator's responses (a drifted ``device`` on some records, comments on others) are all ones the
    exact path accepts: each file reads on the fast path, or the survey's fast path would never be used."""
    e = C.ENTITIES[("survey", "responses")]
    files = sorted((october_drops.root / "survey").glob(f"*/{e.filename}"))
    assert files and all(_jsonl_fast(e, path.read_bytes()) is not None for path in files if path.stat().st_size)


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
    mixed = f"{drift}\n{GOOD}\n".encode()  # a record without the extra field: its _extra is null, both ways
    path.write_bytes(mixed)
    raw = read_file(PAYMENTS, path)
    assert raw.extra_columns == ["device"] and raw.frame["_extra"].to_list() == ['{"device": "mobile"}', None]
    fast = _jsonl_fast(PAYMENTS, mixed)
    assert fast is not None
    assert_frame_equal(fast[0], _jsonl_exact(PAYMENTS, path, mixed.decode()).frame)

    assert _jsonl_fast(PAYMENTS, b"\xef\xbb\xbf" + GOOD.encode() + b"\n") is None


@pytest.mark.parametrize(("extra", "fast"), [
    (',"device":"mobile"', True),
    (',"tax_minor":0,"b":true,"a":"x y \u00e9"', True),  # keys sorted, a boolean, non-ASCII text
    (',"tax_minor":-12', True),
    (',"device":null', False),  # explicitly null: the exact path keeps {"device": null}
    ((',"device":"x"', ',"device" : null'), False),  # null in one record, the exact path keeps it there
    ((',"b":1,"device":"x"', ',"b":2'), True),  # a field absent from one record: that record has the others
    ((',"b":1', ',"device":"x"'), True),  # each record its own field
    (('', ',"device":"x"'), True),  # no extra field in the first record: its _extra is null
    (',"rate":0.5', False),  # a float: json.dumps and Arrow could spell it differently
    (',"meta":{"a":1}', False),
    (',"tags":[1,2]', False),
    (',"device":"a\\"b"', False),  # an escape: the file holds a backslash
    (',"device":"x","device":"y"', False),  # a key twice: quarantined by the exact path
])
def test_drifted_fields_on_the_fast_path_read_as_the_exact_path_reads_them(
        tmp_path: Path, extra: str | tuple[str, str], fast: bool) -> None:
    first, second = extra if isinstance(extra, tuple) else (extra, extra)  # each record's extra fields
    data = (GOOD.replace("}", first + "}") + "\n" + GOOD.replace("PAY1", "PAY2").replace("}", second + "}")).encode()
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


# ---- the survey's nested answers -------------------------------------------------------------------------
RESPONSES = C.ENTITIES[("survey", "responses")]
SCORE = '{"question_id":"csat","value":4,"scale_min":1,"scale_max":5}'
COMMENT = '{"question_id":"comment","text":"Livré à temps"}'


def response(answers: str, survey_type: str = '"csat"', rid: str = "r-1") -> str:
    return (f'{{"response_id":"{rid}","survey_id":"post_delivery_csat","survey_type":{survey_type},'
            f'"customer_ref":"C1","touchpoint":"delivery","related_id":"O1","sent_at":"2026-10-09T09:00:00Z",'
            f'"responded_at":"2026-10-10T18:42:10Z","language":"fr","answers":{answers}}}')


@pytest.mark.parametrize(("answers", "survey_type"), [
    (f"[{SCORE}]", '"csat"'),  # no comment
    (f"[{SCORE},{COMMENT}]", '"csat"'),
    (f"[{COMMENT},{SCORE}]", '"csat"'),  # the comment first
    (f"[{SCORE.replace('csat', 'nps')}]", '"loyalty"'),  # a survey type without a scale: no question check
    (f"[{SCORE.replace('csat', 'nps')}]", "null"),  # no survey type: nor here
    ("[" + SCORE.replace("}", ',"text":"ignored"}') + "," + COMMENT.replace("}", ',"value":1}') + "]", '"csat"'),
    ("[" + COMMENT.replace("Livré à temps", "a \\u00e9 \\ud83d\\ude00 \\n \\u0000") + "," + SCORE + "]", '"csat"'),
])
def test_survey_answers_on_the_fast_path_read_as_the_exact_path_reads_them(
        tmp_path: Path, answers: str, survey_type: str) -> None:
    data = (response(answers, survey_type) + "\n" + response(f"[{SCORE}]", rid="r-2") + "\n").encode()
    got = _jsonl_fast(RESPONSES, data)
    assert got is not None, answers
    exact = _jsonl_exact(RESPONSES, tmp_path / "responses.jsonl", data.decode())
    assert exact.frame["_problem"].null_count() == 2
    assert_frame_equal(got[0], exact.frame)


@pytest.mark.parametrize(("answers", "survey_type", "problem"), [
    ("null", '"csat"', "column 'answers': expected an array, got null"),
    ("[]", '"csat"', "column 'answers': expected exactly one score answer, found 0"),
    (f"[{COMMENT}]", '"csat"', "column 'answers': expected exactly one score answer, found 0"),
    (f"[{SCORE},{SCORE}]", '"csat"', "column 'answers': expected exactly one score answer, found 2"),
    (f"[{SCORE},null]", '"csat"', "column 'answers': answers[1] must be an object with a question_id string"),
    ('[{"value":4,"scale_min":1,"scale_max":5}]', '"csat"',
     "column 'answers': answers[0] must be an object with a question_id string"),
    ("[" + SCORE.replace(',"scale_max":5', "") + "]", '"csat"',
     "column 'answers': answers[0].scale_max must be an integer"),
    ("[" + SCORE.replace("4", '"4"') + "]", '"csat"', "column 'answers': answers[0].value must be an integer"),
    (f"[{SCORE.replace('4', 'true')}]", '"csat"', "column 'answers': answers[0].value must be an integer"),
    (f"[{SCORE.replace('4', '4.5')}]", '"csat"', "column 'answers': answers[0].value must be an integer"),
    (f'[{SCORE},{{"question_id":"comment"}}]', '"csat"', "column 'answers': answers[1] comment text must be a string"),
    (f"[{SCORE}]", '"nps"', "column 'answers': score question 'csat' does not match survey_type 'nps'"),
    ("[" + SCORE.replace("4,", '4,"value":5,') + "]", '"csat"', "duplicate key 'value' in a JSON object"),
    ('{"0":' + SCORE + "}", '"csat"', "column 'answers': expected an array, got object"),
])
def test_survey_answers_the_exact_path_judges_take_it(
        tmp_path: Path, answers: str, survey_type: str, problem: str) -> None:
    """Each answer the exact path calls a problem sends the file there (the fast path returns None)."""
    data = (response(f"[{SCORE}]") + "\n" + response(answers, survey_type, rid="r-2") + "\n").encode()
    assert _jsonl_fast(RESPONSES, data) is None, answers
    path = tmp_path / "responses.jsonl"
    path.write_bytes(data)
    frame = read_file(RESPONSES, path).frame
    assert frame["_problem"][0] is None
    assert frame["_problem"][1] is not None and frame["_problem"][1].startswith(problem), frame["_problem"][1]


def test_two_comments_and_a_field_inside_the_answers_take_the_exact_path(tmp_path: Path) -> None:
    """Cases the exact path accepts but the fast path declines (rare; it keeps the last comment and ignores
    a field it does not read): read exactly, as before."""
    for answers in (f"[{SCORE},{COMMENT},{COMMENT.replace('Livré', 'Reçu')}]",
                    "[" + SCORE.replace("}", ',"label":"satisfaction"}') + "]"):
        data = (response(answers) + "\n").encode()
        assert _jsonl_fast(RESPONSES, data) is None, answers
        path = tmp_path / "responses.jsonl"
        path.write_bytes(data)
        assert read_file(RESPONSES, path).frame["_problem"].to_list() == [None]


def test_the_two_pass_line_check_agrees_with_the_four_pass_one_on_every_short_input() -> None:
    """``_one_object_per_line`` counts two patterns when the file holds no CR (every line break between two
    lines a "}\\n{"), four otherwise (the definition below, which it replaced): the same answer on every
    string of up to 7 of the characters that matter, and where it accepts, the file's line count (the
    records the fast path must find)."""
    from itertools import product

    from ingestion.readers import _one_object_per_line

    def four_passes(data: bytes) -> bool:
        lines = data.count(b"\n") + (not data.endswith(b"\n"))
        ends = (data.count(b"}\n") + data.count(b"}\r\n")
                + (not data.endswith(b"\n") and data.rstrip(b"\r").endswith(b"}")))
        return data.startswith(b"{") and data.count(b"\n{") == lines - 1 and ends == lines

    checked = accepted = 0
    for n in range(8):
        for chars in product((b"{", b"}", b"\n", b"\r", b"a"), repeat=n):
            data = b"".join(chars)
            lines = data.count(b"\n") + (not data.endswith(b"\n"))
            assert _one_object_per_line(data) == (lines if four_passes(data) else None), data
            checked += 1
            accepted += four_passes(data)
    assert checked == 97_656 and accepted > 100
