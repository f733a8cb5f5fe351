"""The secret behind the warehouse's pseudonymous keys (docs/privacy.md).

Every key BI sees (``customer_key``, ``order_key``, ...) is a keyed hash of a source identifier,

    pseudonym(kind, value) = first 32 hex digits of sha256(secret || sha256(secret || kind || ':' || value))

composed from SHA-256 because neither DuckDB nor Spark SQL has an HMAC: the inner hash binds the
secret to the value, the outer hash over a fixed-length input rules out length extension. Without
the secret, a key cannot be computed from a CRM id (enumerating ``C0000001``-style ids finds
nothing); with it, the same key comes out on DuckDB, on Spark and in Python (``pseudonym`` below,
used by tests as the independent computation).

The secret lives outside the warehouse and serving: ``CX_KEY_SECRET_FILE`` (a file holding it,
default ``~/.config/cx-warehouse/customer_key.secret``, created with mode 0600 on first use) or
``CX_KEY_SECRET`` (the value itself, for secret managers that inject environment variables). dbt
reads it through a connection plugin (``orchestration/dbt_plugin.py``) into a DuckDB session
variable, so it appears in no compiled SQL, dbt log, ``target/`` file or Dagster metadata.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from . import settings

SECRET_ENV = "CX_KEY_SECRET"
SECRET_FILE_ENV = "CX_KEY_SECRET_FILE"
KEY_HEX_DIGITS = 32
MIN_SECRET_CHARS = 32
DEFAULT_SECRET_FILE = settings.DEFAULT_SECRET_FILE


class KeySecretError(Exception):
    """The key secret is missing, unreadable or too weak."""


def secret_file() -> Path:
    """``CX_KEY_SECRET_FILE``, else the default file, ``~`` expanded."""
    return (settings.current().key_secret_file or DEFAULT_SECRET_FILE).expanduser()


def _checked(value: str, where: str) -> str:
    value = value.strip()
    if len(value) < MIN_SECRET_CHARS:
        raise KeySecretError(f"{where}: the key secret must have at least {MIN_SECRET_CHARS} characters "
                             f"(has {len(value)}); generate one with `cxw keys new`")
    if "'" in value or "\\" in value or "$" in value or any(ord(c) < 32 for c in value):
        raise KeySecretError(f"{where}: the key secret may not hold quotes, backslashes, '$' or control "
                             "characters; generate one with `cxw keys new`")
    return value


def new_secret() -> str:
    return secrets.token_hex(32)


def load_secret(create: bool = True) -> str:
    """The key secret: ``CX_KEY_SECRET``, else the file ``CX_KEY_SECRET_FILE`` (its default is
    created on first use, with a new random secret, readable by its owner only)."""
    config = settings.current()
    if value := config.key_secret:
        return _checked(value, SECRET_ENV)
    path = secret_file()
    if not path.exists():
        if not create or config.key_secret_file:
            raise KeySecretError(f"{path}: no key secret there (set {SECRET_FILE_ENV} to the file that holds "
                                 f"it, or {SECRET_ENV}); a new secret changes every key, see docs/privacy.md")
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(new_secret() + "\n")
    try:
        return _checked(path.read_text(encoding="utf-8"), str(path))
    except OSError as exc:
        raise KeySecretError(f"{path}: cannot read the key secret ({exc.strerror})") from None


def pseudonym(kind: str, value: str | None, secret: str) -> str | None:
    """The key of ``value`` (a source identifier of the given kind), as the warehouse computes it."""
    if value is None:
        return None
    inner = hashlib.sha256(f"{secret}{kind}:{value}".encode()).hexdigest()
    return hashlib.sha256(f"{secret}{inner}".encode()).hexdigest()[:KEY_HEX_DIGITS]


def fingerprint(secret: str) -> str:
    """Names the secret without revealing it (stored with the keys: a changed secret is noticed)."""
    return pseudonym("fingerprint", "cx-warehouse", secret) or ""
