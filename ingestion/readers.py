"""Read one entity file into text columns with the physical line of each record.

The output of every reader is the same ``RawFile``: contract columns (text for CSV, JSON values
as text or integers for JSON Lines), ``_source_line`` (1-based line where the record starts),
``_problem`` (a structural problem of that record, e.g. wrong field count or malformed JSON),
and ``_extra`` (extra columns as a JSON object, for schema drift). Problems that make the whole
file unreadable raise ``DropRefused``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson

from . import contract as C
from .manifest import DropRefused

BOM = "\ufeff"


@dataclass
class RawFile:
    entity: C.Entity
    path: Path
    frame: pl.DataFrame
    extra_columns: list[str] = field(default_factory=list)


def _decode(data: bytes, e: C.Entity, path: Path) -> str:
    if e.encoding == "cp1252" and not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:  # non-ASCII bytes that form valid UTF-8 are, in practice, never cp1252 text
            raise DropRefused(path, "file is UTF-8 encoded; the contract requires cp1252 for the ERP")
    try:
        text = data.decode(e.encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DropRefused(path, f"not valid {e.encoding} at line {line} (byte 0x{data[exc.start]:02x} at offset "
                                f"{exc.start}); the contract requires {e.encoding}") from None
    return text[1:] if text.startswith(BOM) else text


def read_file(e: C.Entity, path: Path, data: bytes | None = None) -> RawFile:
    """Read ``data`` (the file's bytes, as verified against the manifest; read from ``path`` if None)."""
    if data is None:
        data = path.read_bytes()
    if e.format == "jsonl":
        return _read_jsonl(e, path, data)
    return _read_csv(e, path, _decode(data, e, path))


# ---- CSV -------------------------------------------------------------------------------------
def _allow_fields_of(text: str) -> None:
    """Python's csv module refuses a field longer than 128 KiB by default; a long value is data, not
    an error: allow fields as long as the file (the limit is process-wide and only ever raised)."""
    if len(text) >= csv.field_size_limit():
        csv.field_size_limit(len(text) + 1)


def _header(text: str, e: C.Entity, path: Path) -> list[str]:
    if not text.strip():
        raise DropRefused(path, "empty file: a CSV needs at least its header row")
    try:  # the first record (CR, LF and CRLF all end it), not the text up to the first LF
        first = next(csv.reader(io.StringIO(text, newline=""), delimiter=e.separator, quotechar='"', strict=True))
    except csv.Error as exc:
        raise DropRefused(path, f"unreadable CSV header (line 1): {exc}") from None
    # an unnamed column (a trailing separator) is drift like any other, under a name of its position
    header = [h.strip() or f"_unnamed_{i}" for i, h in enumerate(first, 1)]
    missing = [c for c in e.column_names if c not in header]
    if missing:
        if not set(header) & set(e.column_names):
            raise DropRefused(path, f"no header row: line 1 is {text.splitlines()[0][:80]!r}, "
                                    f"expected the column names {e.separator.join(e.column_names)}")
        raise DropRefused(path, f"missing required column(s) {', '.join(missing)}")
    dupes = {h for h in header if header.count(h) > 1}
    if dupes:
        raise DropRefused(path, f"duplicate column(s) in header: {', '.join(sorted(dupes))}")
    return header


def _read_csv(e: C.Entity, path: Path, text: str) -> RawFile:
    _allow_fields_of(text)
    header = _header(text, e, path)
    extra = [h for h in header if h not in e.column_names]
    # the fast path counts lines by LF: blank lines and bare CRs (classic Mac line ends, a CR inside a
    # quoted value) take the exact path, whose line numbers follow every line end
    if "\r" in text:
        simple = "\n\n" not in text.replace("\r\n", "\n") and text.count("\r") == text.count("\r\n")
    else:  # (the same test, without copying the text)
        simple = "\n\n" not in text
    frame = _csv_fast(text, header, e) if simple else None
    if frame is None:
        frame = _csv_exact(text, header, e, path)
    frame = frame.with_columns(_problem=_repeated_header(e))
    return RawFile(e, path, _with_extra(frame, e, extra), extra)


# the expression of each entity (kept alive here, so its id is never reused): built once, not per file
_REPEATED: dict[int, tuple[C.Entity, pl.Expr]] = {}


def _repeated_header(e: C.Entity) -> pl.Expr:
    """A row that repeats the header (two files concatenated) is a bad record with a reason of its own."""
    held = _REPEATED.get(id(e))
    if held is None:
        repeated = pl.all_horizontal([pl.col(h).eq_missing(pl.lit(h)) for h in e.column_names])
        held = _REPEATED[id(e)] = (e, pl.when(pl.col("_problem").is_null() & repeated)
                                   .then(pl.lit("the header row repeated inside the file (files concatenated?)"))
                                   .otherwise(pl.col("_problem")))
    return held[1]


def _csv_fast(text: str, header: list[str], e: C.Entity) -> pl.DataFrame | None:
    """Arrow's multithreaded parser; None when a record has the wrong number of fields."""
    ragged: list[int] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        ragged.append(1)
        return "skip"

    try:
        table = pacsv.read_csv(
            io.BytesIO(text.encode("utf-8")),
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1, use_threads=True),
            parse_options=pacsv.ParseOptions(delimiter=e.separator, quote_char='"', double_quote=True,
                                             newlines_in_values=True, ignore_empty_lines=True,
                                             invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(column_types={h: pa.string() for h in header},
                                                 strings_can_be_null=True, quoted_strings_can_be_null=True,
                                                 null_values=[""]),
        )
    except pa.ArrowInvalid:
        return None
    if ragged:
        return None
    df = pl.from_arrow(table)
    assert isinstance(df, pl.DataFrame)
    # physical line of each record: header is line 1; values with embedded newlines push later records down.
    # Every line ends with LF but perhaps the last: as many LFs as records + header (less one without a
    # final LF) means no value holds one, and record i sits on line i + 2
    if text.count("\n") == df.height + 1 - (not text.endswith("\n")):
        return df.with_columns(_source_line=pl.int_range(2, df.height + 2, dtype=pl.Int64),
                               _problem=pl.lit(None, pl.Utf8))
    embedded = pl.sum_horizontal([pl.col(h).str.count_matches("\n").fill_null(0) for h in header]) if header else 0
    return df.with_row_index("_i").with_columns(
        _source_line=(pl.col("_i") + 2 + embedded.cum_sum() - embedded).cast(pl.Int64),
        _problem=pl.lit(None, pl.Utf8),
    ).drop("_i")


def _csv_exact(text: str, header: list[str], e: C.Entity, path: Path) -> pl.DataFrame:
    """Python's csv module: slower, but exact line numbers and field counts for ragged files."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=e.separator, quotechar='"', strict=True)
    cols: dict[str, list[str | None]] = {h: [] for h in header}
    lines: list[int] = []
    problems: list[str | None] = []
    start = 1
    try:
        next(reader)  # header
        start = reader.line_num + 1
        for row in reader:
            line, start = start, reader.line_num + 1
            if not row or row == [""]:
                continue  # a blank line is not a record
            problem = None
            if len(row) != len(header):
                problem = f"record has {len(row)} fields, the header has {len(header)}"
                row = (row + [None] * len(header))[: len(header)]
            for h, v in zip(header, row, strict=True):
                cols[h].append(v if v != "" else None)
            lines.append(line)
            problems.append(problem)
    except csv.Error as exc:
        raise DropRefused(path, f"unreadable CSV at line {reader.line_num}: {exc}") from None
    return pl.DataFrame({**cols, "_source_line": lines, "_problem": problems},
                        schema={**{h: pl.Utf8 for h in header}, "_source_line": pl.Int64, "_problem": pl.Utf8})


def _with_extra(frame: pl.DataFrame, e: C.Entity, extra: list[str]) -> pl.DataFrame:
    """Extra (drifted) columns are kept as one JSON object per record in ``_extra``."""
    if extra:
        frame = frame.with_columns(_extra=pl.struct(extra).struct.json_encode()).drop(extra)
    else:
        frame = frame.with_columns(_extra=pl.lit(None, pl.Utf8))
    return frame


# ---- JSON Lines ------------------------------------------------------------------------------
_PY_TYPE = {"str": str, "ts": str, "date": str, "int": int, "bool": bool}
_TYPE_NAME = {str: "string", int: "integer", bool: "boolean", float: "number", list: "array", dict: "object",
              type(None): "null"}


INT64 = (-(2**63), 2**63 - 1)


def _short(v: object) -> str:
    """repr of a JSON value for a reason, cut to 60 characters (a value may be megabytes long)."""
    try:
        text = repr(v)
    except (RecursionError, ValueError):  # nested too deeply, or an integer of > 4300 digits
        return f"<{_TYPE_NAME.get(type(v), type(v).__name__)}>"
    return text if len(text) <= 60 else text[:57] + "..."


def _json_type_error(col: C.Column, v: object) -> str | None:
    want = _PY_TYPE[col.type]
    if v is None:
        return None
    if want is int and (isinstance(v, bool) or not isinstance(v, int)):
        return f"column '{col.name}': expected an integer, got {_TYPE_NAME.get(type(v), type(v).__name__)} {_short(v)}"
    if want is int and not INT64[0] <= v <= INT64[1]:  # type: ignore[operator]
        return f"column '{col.name}': integer out of the 64-bit range: {_short(v)}"
    if not isinstance(v, want):
        return (f"column '{col.name}': expected a {_TYPE_NAME[want]}, got "
                f"{_TYPE_NAME.get(type(v), type(v).__name__)} {_short(v)}")
    return None


SURVEY_COLUMNS = ("score_question_id", "score", "scale_min", "scale_max", "comment")


def _survey_answers(answers: object, survey_type: object) -> tuple[dict, str | None]:
    """Flatten the nested answers: one score answer (and an optional comment)."""
    out: dict = dict.fromkeys(SURVEY_COLUMNS)
    if not isinstance(answers, list):
        return out, f"column 'answers': expected an array, got {_TYPE_NAME.get(type(answers), type(answers).__name__)}"
    scores = 0
    for i, a in enumerate(answers):
        if not isinstance(a, dict) or not isinstance(a.get("question_id"), str):
            return out, f"column 'answers': answers[{i}] must be an object with a question_id string"
        if a["question_id"] == "comment":
            if not isinstance(a.get("text"), str):
                return out, f"column 'answers': answers[{i}] comment text must be a string, got {_short(a.get('text'))}"
            out["comment"] = a["text"]
            continue
        scores += 1
        for k in ("value", "scale_min", "scale_max"):
            if isinstance(a.get(k), bool) or not isinstance(a.get(k), int):
                return out, f"column 'answers': answers[{i}].{k} must be an integer, got {_short(a.get(k))}"
            if not INT64[0] <= a[k] <= INT64[1]:
                return out, f"column 'answers': answers[{i}].{k} is out of the 64-bit range: {_short(a[k])}"
        out.update(score_question_id=a["question_id"], score=a["value"], scale_min=a["scale_min"],
                   scale_max=a["scale_max"])
    if scores != 1:
        return out, f"column 'answers': expected exactly one score answer, found {scores}"
    if survey_type in C.SCALES and out["score_question_id"] != survey_type:
        return out, (f"column 'answers': score question {out['score_question_id']!r} does not match "
                     f"survey_type {survey_type!r}")
    return out, None


class _DuplicateKey(ValueError):
    pass


def _object(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object whose keys are unique: with a key twice, which value the sender meant is unknown
    (parsers disagree: Python keeps the last, others the first or refuse), so the record is quarantined."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        dupe = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise _DuplicateKey(f"duplicate key {_short(dupe)} in a JSON object")
    return obj


def _loads(text: str) -> object:
    return json.loads(text, object_pairs_hook=_object)


def _parse_lines(text: str) -> tuple[list[int], list[object], list[str | None]]:
    """(line numbers, parsed values, problem per record); blank lines are not records."""
    raw = text.split("\n")
    lines = [i + 1 for i, line in enumerate(raw) if line.strip()]
    body = [raw[i - 1].rstrip("\r") for i in lines]
    try:  # one C-level parse for the whole file; only a file with a malformed line takes the slow path
        values = _loads("[" + ",".join(body) + "]")
        if isinstance(values, list) and len(values) == len(body):
            return lines, values, [None] * len(body)
    except (ValueError, RecursionError):  # JSONDecodeError, a duplicate key, a huge integer, deep nesting
        pass
    values, problems = [], []
    for line in body:
        try:
            values.append(_loads(line))
            problems.append(None)
        except json.JSONDecodeError as exc:
            values.append({})
            problems.append(f"malformed JSON: {exc.msg} at column {exc.colno}")
        except _DuplicateKey as exc:
            values.append({})
            problems.append(str(exc))
        except ValueError as exc:  # an integer literal of more than 4300 digits
            values.append({})
            problems.append(f"malformed JSON: {str(exc).split(':')[0]}")
        except RecursionError:
            values.append({})
            problems.append("malformed JSON: nested too deeply (arrays or objects inside each other beyond the "
                            "parser's limit)")
    return lines, values, problems


# the frame type and the Arrow JSON type of each contract type in JSON Lines (everything else is text)
_JSON_TYPES: dict[str, tuple[pl.DataType, pa.DataType]] = {"int": (pl.Int64(), pa.int64()),
                                                          "bool": (pl.Boolean(), pa.bool_())}
_JSON_TEXT = (pl.Utf8(), pa.string())


# the survey's answers as Arrow reads them: the fields ``_survey_answers`` reads, each of its JSON type
_ANSWERS = pa.list_(pa.struct([("question_id", pa.string()), ("value", pa.int64()), ("scale_min", pa.int64()),
                               ("scale_max", pa.int64()), ("text", pa.string())]))


def _jsonl_schema(e: C.Entity, arrow: bool = False) -> dict[str, pl.DataType] | pa.Schema:
    """The flat JSON Lines columns of ``e`` with their polars types (or, with ``arrow``, as an Arrow schema,
    with the survey's nested answers)."""
    types = {c.name: _JSON_TYPES.get(c.type, _JSON_TEXT) for c in e.columns if c.type != "answers"}
    if arrow:
        nested = [(c.name, _ANSWERS) for c in e.columns if c.type == "answers"]
        return pa.schema([(name, t[1]) for name, t in types.items()] + nested)
    return {name: t[0] for name, t in types.items()}


def _one_object_per_line(data: bytes) -> int | None:
    """The number of lines, when every line starts with ``{`` and ends with ``}`` (before an optional CR);
    else None. Then no line is blank and no object runs over a line end (after a ``}`` that leaves an
    object open, a ``{`` is not valid JSON), so a reader that finds as many records as lines found exactly
    one per line, on line i + 1. Arrow's reader skips blank lines and reads two objects on one line
    (``{..}{..}``) as two records: together they could add up to the line count while the exact path sees
    other records on other lines."""
    lines = data.count(b"\n") + (not data.endswith(b"\n"))
    if b"\r" not in data:  # two passes: every line break between two lines is a "}\n{" (none holds two)
        one = (data.startswith(b"{") and (data.endswith(b"}\n") or data.endswith(b"}"))
               and data.count(b"}\n{") == lines - 1)
    else:
        ends = (data.count(b"}\n") + data.count(b"}\r\n")
                + (not data.endswith(b"\n") and data.rstrip(b"\r").endswith(b"}")))
        one = data.startswith(b"{") and data.count(b"\n{") == lines - 1 and ends == lines
    return lines if one else None


# the Arrow types of a drifted (extra) field the fast path writes back into ``_extra`` exactly as
# ``json.dumps`` does (an integer or a boolean as its literal, a string between quotes); any other type
# (a float, an object, an array, a field always null) sends the file to the exact path
_EXTRA_TYPES = (pa.int64(), pa.bool_(), pa.string())
_JSON_ESCAPED = r"[\x00-\x1f\\\"]"  # what json.dumps(ensure_ascii=False) would escape in a string


def _extra_json(extra: list[str], table: pa.Table, data: bytes) -> pl.Expr | None:
    """``_extra`` as ``_jsonl_exact`` writes it, ``json.dumps({k: v for k in sorted(keys)},
    ensure_ascii=False)`` over the extra keys each record holds (null for a record that holds none), for a
    file whose extra fields are each of a type in ``_EXTRA_TYPES`` (a string with nothing to escape):
    None otherwise. Arrow reads an absent field and a field spelled ``null`` alike, and the exact path
    keeps ``{"k": null}`` for the second: a field with nulls stays here only when ``"k": null`` appears
    nowhere in the file (the caller has checked that it holds no backslash, so no string value can
    spell it either)."""
    parts: list[pl.Expr] = []
    for k in sorted(extra):
        column = table.column(k)
        if column.type not in _EXTRA_TYPES or re.search(_JSON_ESCAPED, k):
            return None
        if column.null_count and re.search(b'"' + re.escape(k.encode("utf-8")) + rb'"\s*:\s*null', data):
            return None
        value = pl.col(k).cast(pl.Utf8)
        if column.type == pa.string():
            if pc.any(pc.match_substring_regex(column, _JSON_ESCAPED)).as_py():
                return None
            value = pl.lit('"') + value + pl.lit('"')
        parts.append(pl.lit(f'"{k}": ') + value)  # null where the record does not hold the field
    held = pl.concat_str(parts, separator=", ", ignore_nulls=True)
    return pl.when(held != "").then(pl.lit("{") + held + pl.lit("}"))


def _answers_flat(df: pl.DataFrame) -> dict[str, pl.Series] | None:
    """The survey's answers flattened as ``_survey_answers`` flattens them (the score answer's question,
    value and scale; the comment's text), when every record's answers are ones it accepts: an array of
    objects with a question id, exactly one score answer with its three integers, at most one comment
    with its text, the score's question that of the survey type. None otherwise: the exact path then
    names each record's problem."""
    n = df.height
    # one row per answer, in record order; null answers, an empty array or a null answer give a row of nulls
    rows = df.select(_i=pl.int_range(pl.len(), dtype=pl.Int64), _a=pl.col("answers")).explode("_a").unnest("_a")
    if rows["question_id"].null_count():
        return None
    is_comment = rows["question_id"] == "comment"
    comments, scores = rows.filter(is_comment), rows.filter(~is_comment)
    if (scores.height != n or not (scores["_i"] == pl.int_range(n, dtype=pl.Int64, eager=True)).all()
            or scores.select(pl.any_horizontal(pl.col("value", "scale_min", "scale_max").is_null()).any()).item()
            or comments["text"].null_count() or comments["_i"].n_unique() != comments.height):
        return None
    survey_type = df["survey_type"]
    checked = survey_type.is_in(list(C.SCALES)).fill_null(False)
    if (checked & (survey_type != scores["question_id"])).any():
        return None
    comment = pl.Series("comment", [None] * n, pl.Utf8).scatter(comments["_i"], comments["text"])
    return {"score_question_id": scores["question_id"], "score": scores["value"], "scale_min": scores["scale_min"],
            "scale_max": scores["scale_max"], "comment": comment}


def _jsonl_fast(e: C.Entity, data: bytes) -> tuple[pl.DataFrame, list[str]] | None:
    """Arrow's JSON reader with the contract's JSON types (the survey's answers as a list of structs):
    (the frame, the drifted fields). It is strict: a value of another JSON type (``"9"`` for an integer,
    ``9`` for a string), a malformed or non-object line, a key twice in an object (nested too), a control
    character or a lone surrogate in a string all fail the whole file, and so does a line that is not one
    object (a blank line, two objects on a line: records would no longer sit on line i + 1;
    ``_one_object_per_line``). Fields the contract does not name (drift) stay on this path only when each
    has a type ``_extra_json`` writes as the exact path would and the file holds no backslash (no escape
    whose decoding could differ); the survey's answers only when ``_answers_flat`` accepts every record's.
    Otherwise the file takes the exact path, which finds each record's line and problem. None means: take
    the exact path."""
    records = _one_object_per_line(data) if data and not data.startswith(BOM.encode("utf-8")) else None
    if records is None:
        return None
    schema = _jsonl_schema(e, arrow=True)
    try:  # the contract's fields as declared; drifted ones (and a field inside the answers) typed by Arrow
        table = pajson.read_json(io.BytesIO(data), parse_options=pajson.ParseOptions(
            explicit_schema=schema, unexpected_field_behavior="infer", newlines_in_values=False))
    except pa.ArrowInvalid:
        return None
    if table.num_rows != records or any(table.schema.field(f.name).type != f.type for f in schema):
        return None
    extra = [k for k in table.column_names if k not in schema.names]
    if extra:
        if b"\\" in data:
            return None
        encoded = _extra_json(extra, table, data)
        if encoded is None:
            return None
    df = pl.from_arrow(table)
    assert isinstance(df, pl.DataFrame)
    answers: dict[str, pl.Series] = {}
    if e.system == "survey":
        flat = _answers_flat(df)
        if flat is None:
            return None
        answers = flat
    frame = df.select(
        *[pl.col(name).cast(dtype) for name, dtype in _jsonl_schema(e).items()],  # type: ignore[union-attr]
        *[pl.lit(series).alias(name) for name, series in answers.items()],
        _source_line=pl.int_range(1, df.height + 1, dtype=pl.Int64), _problem=pl.lit(None, pl.Utf8),
        _extra=encoded if extra else pl.lit(None, pl.Utf8))
    return frame, sorted(extra)


def _read_jsonl(e: C.Entity, path: Path, data: bytes) -> RawFile:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DropRefused(path, f"not valid UTF-8 at line {line} (byte 0x{data[exc.start]:02x})") from None
    fast = _jsonl_fast(e, data)
    if fast is not None:
        return RawFile(e, path, *fast)
    return _jsonl_exact(e, path, text)


def _jsonl_exact(e: C.Entity, path: Path, text: str) -> RawFile:
    """Python's json module: every record's JSON types checked one by one, problems on their own line."""
    if text.startswith(BOM):
        text = text[1:]
    lines, objs, problems = _parse_lines(text)
    for i, o in enumerate(objs):
        if type(o) is not dict:
            objs[i] = {}
            problems[i] = problems[i] or f"expected a JSON object, got {_TYPE_NAME.get(type(o), type(o).__name__)}"
    if "\\u" in text:  # an escaped lone surrogate (\ud800), in a key or a value, is not Unicode text
        for i, o in enumerate(objs):
            try:
                json.dumps(o, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError:
                objs[i] = {}
                problems[i] = problems[i] or "invalid Unicode: an escaped lone surrogate (\\ud800-\\udfff)"
            except (RecursionError, ValueError):
                pass
    cols: dict[str, list] = {}
    for c in e.columns:
        if c.type == "answers":
            continue
        values = [o.get(c.name) for o in objs]
        want = _PY_TYPE[c.type]
        wrong = [i for i, v in enumerate(values) if v is not None and type(v) is not want]
        if want is int:  # a JSON integer beyond the 64-bit column type is a bad value, not a crash
            wrong += [i for i, v in enumerate(values) if type(v) is int and not INT64[0] <= v <= INT64[1]]
        for i in wrong:  # (bool is not int here: ``type(True) is not int``)
            problems[i] = problems[i] or _json_type_error(c, values[i])
            values[i] = None
        cols[c.name] = values
    if e.system == "survey":
        flat = {k: [None] * len(objs) for k in SURVEY_COLUMNS}
        for i, o in enumerate(objs):
            if problems[i] is not None:
                continue
            answers, err = _survey_answers(o.get("answers"), o.get("survey_type"))
            problems[i] = err
            for k in SURVEY_COLUMNS:
                flat[k][i] = answers[k]
        cols |= flat
    known = set(e.column_names)
    extra_keys = [o.keys() - known for o in objs]
    extra_seen = sorted(set().union(*extra_keys)) if extra_keys else []
    extras: list[str | None] = []
    for i, (o, x) in enumerate(zip(objs, extra_keys, strict=True)):
        try:
            extras.append(json.dumps({k: o[k] for k in sorted(x)}, ensure_ascii=False) if x else None)
        except (RecursionError, ValueError):  # an extra value nested too deeply to write back
            extras.append(None)
            problems[i] = problems[i] or "extra field nested too deeply to keep"
    schema = _jsonl_schema(e)
    if e.system == "survey":
        schema |= {"score_question_id": pl.Utf8, "score": pl.Int64, "scale_min": pl.Int64, "scale_max": pl.Int64,
                   "comment": pl.Utf8}
    frame = pl.DataFrame({**cols, "_source_line": lines, "_problem": problems, "_extra": extras},
                         schema={**schema, "_source_line": pl.Int64, "_problem": pl.Utf8, "_extra": pl.Utf8})
    return RawFile(e, path, frame, extra_seen)
