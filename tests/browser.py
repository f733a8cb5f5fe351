"""A real headless browser with the network blocked, for the tests that open a generated page (the Data
Docs, the report): Debian's chromium driven by Playwright (never `playwright install`, which downloads a
browser build), every request recorded, every request outside the allowed schemes aborted, and every
console error, page error and failed request collected."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

# the flags that work on these machines (no network beyond the package registries)
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("Chromium not found: this test opens a page in a real headless browser. Install it: "
                    "sudo apt-get install -y chromium (Debian; .ci/run does). Never `playwright install`: it "
                    "downloads a browser build")
    return path


@dataclass
class OfflinePage:
    page: object  # playwright.sync_api.Page
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    problems: list[str] = field(default_factory=list)  # console errors, page errors, failed requests


@contextmanager
def offline_page(allowed: tuple[str, ...] = ("file://",)) -> Iterator[OfflinePage]:
    """A page in headless Chromium (1280 x 900) where only URLs starting with ``allowed`` load."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            # the network is blocked: anything else is aborted (and recorded by the listener below)
            context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(allowed)
                          else route.abort("blockedbyclient"))
            out = OfflinePage(context.new_page())
            context.on("request", lambda request: out.requests.append(request.url))
            out.page.on("console", lambda m: out.problems.append(f"console {m.type}: {m.text}")
                        if m.type == "error" else None)
            out.page.on("pageerror", lambda e: out.problems.append(f"page error: {e}"))
            out.page.on("requestfailed", lambda r: out.problems.append(f"request failed: {r.url} ({r.failure})"))
            yield out
        finally:
            browser.close()
