"""The README's picture of ``cxw report``: build the report of a demo-sized served file and shoot its top.

    python scripts/report_screenshot.py [--serving DATA/serving/cx.duckdb] [--out docs/img/report.png]

Uses the served file of ``make demo`` ($CX_DATA_DIR/serving/cx.duckdb by default; run ``make demo`` first),
builds the report next to it, opens it in Debian's headless Chromium with the network blocked (as
tests/test_report.py does) at 1280 px wide, waits for every chart and saves the top of the page as a PNG
(kept under ~500 KB).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from reporting.build import build_report  # noqa: E402

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> None:
    data = Path(os.environ.get("CX_DATA_DIR", ROOT / "data"))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--serving", type=Path, default=data / "serving" / "cx.duckdb")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "report.png")
    ap.add_argument("--height", type=int, default=2200, help="pixels of the page's top to keep")
    args = ap.parse_args()
    if not args.serving.exists():
        sys.exit(f"{args.serving} does not exist: run `make demo` first (or pass --serving)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        info = build_report(args.serving, Path(tmp) / "report.html")
        print(f"report as of {info.as_of}: {info.bytes:,} bytes, {info.seconds:.1f} s")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
            try:
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                context.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file://", "data:"))
                              else r.abort("blockedbyclient"))
                page = context.new_page()
                page.goto(info.path.as_uri(), wait_until="load")
                page.wait_for_function("() => [...document.querySelectorAll('div.plotly-graph-div')].every("
                                       "d => d.querySelector('svg.main-svg, canvas'))", timeout=30_000)
                page.wait_for_timeout(500)
                height = min(args.height, page.evaluate("() => document.body.scrollHeight"))
                args.out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out), full_page=True,
                                clip={"x": 0, "y": 0, "width": 1280, "height": height})
            finally:
                browser.close()
    print(f"{args.out}: {args.out.stat().st_size / 1e3:.0f} KB")


if __name__ == "__main__":
    main()
