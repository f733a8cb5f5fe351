"""The key secret and the keyed hash (ingestion/keys.py, docs/privacy.md): every branch of where the
secret comes from, and the same key from Python and from the SQL the dbt macro composes."""

from __future__ import annotations

import stat
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from ingestion import keys
from orchestration.cli import main


@pytest.fixture
def no_secret(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No secret configured; the default file lives under tmp_path."""
    monkeypatch.delenv(keys.SECRET_ENV, raising=False)
    monkeypatch.delenv(keys.SECRET_FILE_ENV, raising=False)
    monkeypatch.setattr(keys, "DEFAULT_SECRET_FILE", tmp_path / "cfg" / "customer_key.secret")
    return tmp_path / "cfg" / "customer_key.secret"


def test_the_default_file_is_created_once_readable_by_its_owner_only(no_secret: Path) -> None:
    first = keys.load_secret()
    assert no_secret.exists() and stat.S_IMODE(no_secret.stat().st_mode) == 0o600
    assert keys.load_secret() == first and len(first) == 64


def test_a_missing_default_is_not_created_when_asked_not_to(no_secret: Path) -> None:
    with pytest.raises(keys.KeySecretError, match="no key secret there"):
        keys.load_secret(create=False)
    assert not no_secret.exists()


def test_a_named_file_that_is_missing_is_an_error_never_replaced(no_secret: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(keys.SECRET_FILE_ENV, str(tmp_path / "lost.secret"))
    with pytest.raises(keys.KeySecretError, match=r"lost\.secret: no key secret there"):
        keys.load_secret()
    assert not (tmp_path / "lost.secret").exists()


def test_the_environment_wins_over_the_file(no_secret: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(keys.SECRET_ENV, "e" * 40)
    assert keys.load_secret() == "e" * 40
    assert not no_secret.exists()


@pytest.mark.parametrize(("value", "problem"), [("short", "at least 32"), ("x" * 40 + "'", "quotes"),
                                                ("x" * 40 + "$", "quotes"), ("x" * 20 + "\x01" + "x" * 20, "quotes")])
def test_a_weak_or_unsafe_secret_is_refused(no_secret: Path, monkeypatch: pytest.MonkeyPatch, value: str,
                                            problem: str) -> None:
    monkeypatch.setenv(keys.SECRET_ENV, value)
    with pytest.raises(keys.KeySecretError, match=problem):
        keys.load_secret()


def test_an_unreadable_file_is_named(no_secret: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "a_folder"
    folder.mkdir()
    monkeypatch.setenv(keys.SECRET_FILE_ENV, str(folder))
    with pytest.raises(keys.KeySecretError, match="cannot read the key secret"):
        keys.load_secret()


def test_python_and_the_sql_the_macro_composes_give_the_same_key() -> None:
    secret = keys.new_secret()
    with duckdb.connect() as con:
        con.execute("set variable cx_key_secret = ?", [secret])
        got = con.execute(
            "select substr(sha256(getvariable('cx_key_secret') || sha256(getvariable('cx_key_secret') || "
            "'customer:' || cast(v as varchar))), 1, 32) from (values ('crm:C0000720'), (null)) as t(v)").fetchall()
    assert got == [(keys.pseudonym("customer", "crm:C0000720", secret),), (None,)]
    assert keys.pseudonym("customer", None, secret) is None
    # a kind keeps equal identifiers apart; another secret gives another key
    assert keys.pseudonym("order", "C1", secret) != keys.pseudonym("customer", "C1", secret)
    assert keys.pseudonym("customer", "C1", keys.new_secret()) != keys.pseudonym("customer", "C1", secret)


def test_cxw_keys_new_and_show(no_secret: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    out = tmp_path / "new.secret"
    done = runner.invoke(main, ["keys", "new", "--out", str(out)])
    assert done.exit_code == 0 and "fingerprint" in done.output
    secret = out.read_text().strip()
    assert secret not in done.output and stat.S_IMODE(out.stat().st_mode) == 0o600
    again = runner.invoke(main, ["keys", "new", "--out", str(out)])
    assert again.exit_code == 1 and "never overwritten" in again.output and out.read_text().strip() == secret
    printed = runner.invoke(main, ["keys", "new"])
    assert printed.exit_code == 0 and len(printed.output.strip()) == 64

    monkeypatch.setenv(keys.SECRET_FILE_ENV, str(out))
    monkeypatch.setenv("CX_DATA_DIR", str(tmp_path / "data"))
    shown = runner.invoke(main, ["keys", "show"])
    assert shown.exit_code == 0, shown.output
    assert keys.fingerprint(secret)[:12] in shown.output and secret not in shown.output
    assert "no customer keys yet" in shown.output
    (tmp_path / "data").mkdir()
    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb")) as con:
        con.execute("create schema restricted")
        con.execute("create table restricted.int_customer_key_map as select 'other' as key_fingerprint")
    assert "made with another secret" in runner.invoke(main, ["keys", "show"]).output
    monkeypatch.setenv(keys.SECRET_FILE_ENV, str(tmp_path / "missing.secret"))
    assert runner.invoke(main, ["keys", "show"]).exit_code == 1
