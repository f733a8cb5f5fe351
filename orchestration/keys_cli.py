"""`cxw keys`: the secret behind the pseudonymous keys (docs/privacy.md)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ingestion import keys, settings


@click.group()
def keys_group() -> None:
    """The key secret: make one, show which is in use, rotate every key (docs/privacy.md)."""


@keys_group.command("new")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the new secret to this file (mode 0600; an existing file is never replaced). "
                   "Without it, the secret is printed, for a secret manager.")
def new(out: Path | None) -> None:
    """Make a new random key secret."""
    secret = keys.new_secret()
    if out is None:
        click.echo(secret)
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise click.ClickException(f"{out}: already exists; a key secret is never overwritten") from None
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    click.echo(f"new key secret in {out} (fingerprint {keys.fingerprint(secret)[:12]}); "
               f"set {keys.SECRET_FILE_ENV}={out}, then `cxw keys rotate` to re-key")


def stored_fingerprints(warehouse: Path) -> set[str] | None:
    """The fingerprints of the secret(s) that made the warehouse's keys (None: no keys yet)."""
    import duckdb

    if not warehouse.exists():
        return None
    try:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            rows = con.execute("select distinct key_fingerprint from restricted.int_customer_key_map").fetchall()
    except duckdb.CatalogException:
        return None
    return {r[0] for r in rows}


@keys_group.command("show")
def show() -> None:
    """Which secret is in use (by fingerprint, never the secret) and whether the warehouse's keys match."""
    import duckdb

    try:
        secret = keys.load_secret(create=False)
    except keys.KeySecretError as exc:
        raise click.ClickException(str(exc)) from None
    source = keys.SECRET_ENV if settings.current().key_secret else str(keys.secret_file())
    mine = keys.fingerprint(secret)
    click.echo(f"key secret: {source} (fingerprint {mine[:12]})")
    try:
        stored = stored_fingerprints(settings.warehouse_path())
    except duckdb.IOException as exc:
        raise click.ClickException(f"{settings.warehouse_path()}: cannot read it now ({exc})") from None
    if stored is None:
        click.echo("warehouse: no customer keys yet")
    elif stored == {mine}:
        click.echo("warehouse: every customer key was made with this secret")
    else:
        click.echo("warehouse: keys were made with another secret (" + ", ".join(sorted(f[:12] for f in stored))
                   + "): the next build stops; restore that secret or run `cxw keys rotate`")
