"""Great Expectations' Data Docs open offline (docs/data-quality.md, "Data Docs offline").

The gate's own GX step (``expectations.gate._gx``) builds the Data Docs of a tiny warehouse (three marts, a
handful of rows, one planted failure); then a real headless Chromium (Debian's, driven by Playwright) opens
the index and a validation page with every request that is not file:// aborted and recorded: the results
tables are filled by bootstrap-table, the scripts, styles and Font Awesome's fonts load from the docs
folder, and nothing is logged as an error. A screenshot of the validation page is saved under tmp_path.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import duckdb
import pytest

from expectations import data_docs_offline, gate

from .browser import offline_page

DAY = dt.date(2026, 10, 12)


def _tiny_warehouse(path: Path) -> None:
    """The three marts the GX suites read, with the columns they select; one order has a negative amount."""
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.execute(f"""create table marts.kpi_experience_daily as select * from (values
            (date '{DAY}', 'nps', 'all', 'all', 12.0, 40), (date '{DAY}', 'csat', 'all', 'all', 0.8, 30),
            (date '{DAY}', 'ces', 'all', 'all', 3.2, 20), (date '{DAY}', 'refund_rate_value', 'all', 'all', 1.3, 10))
            t(kpi_date, kpi, dimension, dimension_value, value, n)""")
        con.execute(f"""create table marts.fct_survey_responses as select * from (values
            ('r1', 'nps', 9, date '{DAY}'), ('r2', 'csat', 4, date '{DAY}'), ('r3', 'ces', 2, date '{DAY}'))
            t(response_key, survey_type, score, response_date)""")
        con.execute(f"""create table marts.fct_orders as select * from (values
            ('o1', 10.0, timestamptz '{DAY} 08:00:00+00', timestamptz '{DAY} 18:00:00+00', true, true,
             date '{DAY}', date '{DAY}'),
            ('o2', -5.0, timestamptz '{DAY} 09:00:00+00', null, false, null, date '{DAY}', null))
            t(order_key, total_amount, ordered_at, delivered_at, is_delivered, is_on_time, ordered_local_date,
              delivered_local_date)""")


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Data Docs built by the gate's GX step (which makes them offline) for one business date."""
    root = tmp_path_factory.mktemp("gx_docs")
    _tiny_warehouse(root / "warehouse.duckdb")
    result = gate.GateResult(rows=[])
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as con:
        gate._gx(con, DAY, DAY + dt.timedelta(days=1), root / "docs" / "gx", result)
    assert result.docs == root / "docs" / "gx" / "index.html"
    assert {r.check_name for r in result.rows if r.status == "fail"} == {"order_amount_not_negative"}
    return root / "docs" / "gx"


def test_no_page_loads_anything_from_the_network(docs: Path) -> None:
    """Every page (index, suites, validations) loads only files of the docs folder, and they exist."""
    pages = sorted(docs.rglob("*.html"))
    assert len(pages) == 7, pages  # index, 3 suites, 3 validation results
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert data_docs_offline.remote_loads(html) == [], page
        assert "integrity=" not in html and "crossorigin" not in html, page
        for ref in re.findall(r"""(?:src|href)="([^"#?]+)""", html):
            if "://" not in ref and ref.startswith(("../", "static/")):
                assert (page.parent / ref).resolve().is_file(), f"{page}: {ref}"
    vendored = {p.relative_to(docs).as_posix() for p in (docs / "static" / "vendor").rglob("*") if p.is_file()}
    assert "static/vendor/jquery@3.7.1/dist/jquery.min.js" in vendored
    assert "static/vendor/@fortawesome/fontawesome-free@6.6.0/webfonts/fa-solid-900.woff2" in vendored
    assert sum((docs / p).stat().st_size for p in vendored) < 4_000_000  # only what the pages load


def test_building_again_changes_nothing(docs: Path) -> None:
    before = {p: p.read_bytes() for p in docs.rglob("*") if p.is_file()}
    report = data_docs_offline.make_offline(docs)
    assert report.pages == []
    assert {p: p.read_bytes() for p in docs.rglob("*") if p.is_file()} == before


def test_an_asset_without_a_local_copy_fails_naming_it(tmp_path: Path) -> None:
    page = tmp_path / "validations" / "s" / "run" / "page.html"
    page.parent.mkdir(parents=True)
    page.write_text('<html><head><script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>'
                    '<script src="https://cdn.example.org/lib@1.0/lib.min.js"></script>'
                    '<link rel="stylesheet" href="../../../../static/styles/gone.css"></head>'
                    '<body><a href="https://greatexpectations.io">a link loads nothing</a></body></html>')
    with pytest.raises(data_docs_offline.OfflineDocsError,
                       match=r"https://cdn.example.org/lib@1.0/lib.min.js \(in validations/s/run/page.html\)") as e:
        data_docs_offline.make_offline(tmp_path)
    assert "static/styles/gone.css (no such file)" in str(e.value)
    assert "jquery" not in str(e.value) and "greatexpectations.io" not in str(e.value)


def test_missing_npm_packages_say_make_install(tmp_path: Path) -> None:
    with pytest.raises(data_docs_offline.OfflineDocsError, match=r"make install"):
        data_docs_offline.make_offline(tmp_path, assets_dir=tmp_path / "no_assets")


def test_data_docs_render_offline_in_headless_chromium(docs: Path, tmp_path: Path) -> None:
    validation = next((docs / "validations" / "fct_orders").rglob("*.html"))
    with offline_page() as browser:
        page = browser.page
        page.goto(docs.joinpath("index.html").as_uri(), wait_until="load")
        # the index's results table is empty HTML that bootstrap-table fills from inline data
        rows = page.locator("table.ge-index-page-validation-results-table tbody tr[data-index]")
        rows.first.wait_for(timeout=15_000)
        assert rows.count() == 3
        assert "fct_orders" in " ".join(rows.all_inner_texts())
        libraries = page.evaluate("""() => ({jquery: window.jQuery && jQuery.fn.jquery,
            bootstrapTable: jQuery.fn.bootstrapTable && jQuery.fn.bootstrapTable.Constructor.VERSION,
            bootstrap: typeof jQuery.fn.tooltip, popper: typeof window.Popper,
            datepicker: typeof jQuery.fn.datepicker, vega: window.vega && vega.version,
            vegaLite: window.vegaLite && vegaLite.version, vegaEmbed: typeof window.vegaEmbed})""")
        assert (libraries["jquery"], libraries["bootstrapTable"]) == ("3.7.1", "1.19.1"), libraries
        assert libraries["vega"].startswith("5.") and libraries["vegaLite"].startswith("5."), libraries
        assert {libraries[k] for k in ("bootstrap", "popper", "datepicker", "vegaEmbed")} == {"function"}, libraries

        page.goto(validation.as_uri(), wait_until="load")
        # the validation results: bootstrap-table rebuilds each table (rows get a data-index)
        results = page.locator("div.bootstrap-table table tbody tr[data-index]")
        results.first.wait_for(timeout=15_000)
        assert results.count() >= 4  # one per expectation of the fct_orders suite (and the statistics)
        # the planted failure (order o2's amount of -5.0) with its unexpected value
        failed = page.locator("div.bootstrap-table tr[data-index]", has_text="must be greater than or equal to 0")
        assert failed.count() == 1 and "-5.0" in failed.inner_text()
        # Font Awesome's icons: its CSS loaded its webfont from the docs folder
        fonts = page.evaluate("""async () => { await document.fonts.ready;
            return [...document.fonts].filter(f => f.status === 'loaded').map(f => f.family); }""")
        assert any("Font Awesome" in f for f in fonts), fonts
        shot = tmp_path / "data_docs_validation_page.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the validation page: {shot}")
    assert shot.stat().st_size > 10_000
    assert browser.requests and all(url.startswith("file://") for url in browser.requests), \
        [u for u in browser.requests if not u.startswith("file://")]
    assert any("/static/vendor/" in url for url in browser.requests)
    assert browser.problems == []
