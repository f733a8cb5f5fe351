"""Great Expectations' Data Docs that open offline: every CDN asset served from the docs folder.

GX's page templates load jQuery, Bootstrap, bootstrap-table, bootstrap-datepicker, Popper, Font Awesome,
Vega / Vega-Lite / Vega-Embed and a dark theme from CDNs, and the GX logo from S3. Without network (an
air-gapped site, a laptop on a train) the pages show bare links and empty tables. ``make_offline(docs_dir)``,
run by the gate after ``build_data_docs``:

* copies the files the pages reference, and what their CSS references (Font Awesome's fonts), from the npm
  packages ``make install`` puts in ``expectations/data_docs_assets/node_modules`` (exact versions in its
  ``package.json``) to ``<docs_dir>/static/vendor/<package>@<version>/<path in the package>``;
* rewrites every CDN URL in every ``.html`` under ``docs_dir`` (index, suites, validation pages at any depth)
  to a relative path to its local copy; a tag's Subresource Integrity hash is checked against the local copy,
  then dropped with its ``crossorigin`` (a CORS fetch of a file:// URL fails);
* repoints a link into the docs' own ``static/`` that does not resolve (GX's validation pages put their
  favicon one folder too high);
* fails with ``OfflineDocsError`` naming the URL and the page when a page loads something from the network
  that has no local copy, or a local file that does not exist: a silent CDN link is exactly the bug this
  module fixes.

Links (``<a href>``) to GX's site stay: they load nothing until clicked. No framework imported here.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

ASSETS_DIR = Path(__file__).resolve().parent / "data_docs_assets"
VENDOR = "static/vendor"


class OfflineDocsError(RuntimeError):
    """A Data Docs page loads something from the network that has no local copy."""


@dataclass(frozen=True)
class Npm:
    """A file of an npm package: ``folder`` under node_modules (an npm alias for a second version of a
    package), the version the CDN URL asks for (exact, or a major version for ``vega@5``-style URLs) and
    the file's path inside the package."""

    folder: str
    version: str
    path: str


# every URL GX 1.x's templates load (great_expectations/render/view/templates: page.j2, index_page.j2,
# page_minimal.j2, js_script_imports.j2, top_navbar.j2), with the npm file that CDN serves for it
CDN: dict[str, Npm] = {
    "https://code.jquery.com/jquery-3.7.1.min.js": Npm("jquery", "3.7.1", "dist/jquery.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js":
        Npm("popper.js", "1.12.9", "dist/umd/popper.min.js"),
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css":
        Npm("bootstrap", "4.3.1", "dist/css/bootstrap.min.css"),
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js":
        Npm("bootstrap", "4.3.1", "dist/js/bootstrap.min.js"),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css":
        Npm("bootstrap-table", "1.19.1", "dist/bootstrap-table.min.css"),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js":
        Npm("bootstrap-table", "1.19.1", "dist/bootstrap-table.min.js"),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        Npm("bootstrap-table", "1.19.1", "dist/extensions/filter-control/bootstrap-table-filter-control.min.js"),
    # the pages take the filter-control CSS from 1.19.0 (package.json installs it under an alias)
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        Npm("bootstrap-table-1.19.0", "1.19.0", "dist/extensions/filter-control/bootstrap-table-filter-control.css"),
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        Npm("bootstrap-table-1.19.0", "1.19.0",
            "dist/extensions/filter-control/bootstrap-table-filter-control.min.css"),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        Npm("bootstrap-datepicker", "1.9.0", "dist/css/bootstrap-datepicker.min.css"),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        Npm("bootstrap-datepicker", "1.9.0", "dist/js/bootstrap-datepicker.min.js"),
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css":
        Npm("@forevolve/bootstrap-dark", "1.1.0", "dist/css/bootstrap-prefers-dark.css"),
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css":
        Npm("@fortawesome/fontawesome-free", "6.6.0", "css/all.min.css"),
    # jsDelivr serves a bare ``pkg@major`` as the newest release of that major, file from the package's
    # ``jsdelivr`` field; package.json pins the release (docs/data-quality.md says how to move it)
    "https://cdn.jsdelivr.net/npm/vega@5": Npm("vega", "5", "build/vega.min.js"),
    "https://cdn.jsdelivr.net/npm/vega-lite@5": Npm("vega-lite", "5", "build/vega-lite.min.js"),
    "https://cdn.jsdelivr.net/npm/vega-embed@6": Npm("vega-embed", "6", "build/vega-embed.min.js"),
}

# GX's logo from its S3 bucket: the navbar's logo is also in the docs' own static/images; the dark
# theme's white-on-dark variant is not shipped anywhere else, so the same logo stands in for it
GX_ASSETS = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/"
SITE_FILES: dict[str, str] = {
    GX_ASSETS + "logo-long.png": "static/images/logo-long.png",
    GX_ASSETS + "full_logo_dark.png": "static/images/logo-long.png",
}

# where a page loads something (not <a href>: a link loads nothing until clicked)
_LOADING = {"script": ("src",), "img": ("src", "srcset"), "link": ("href",), "iframe": ("src",),
            "source": ("src", "srcset"), "embed": ("src",), "object": ("data",), "audio": ("src",),
            "video": ("src", "poster"), "track": ("src",), "input": ("src",)}
_NOT_LOADED_LINKS = {"canonical", "alternate", "author", "help", "license", "next", "prev", "search", "bookmark"}
_REMOTE = re.compile(r"^\s*(?!file:)(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)  # http(s)://, //host
_TAG = re.compile(r"<(script|link|img|source|iframe|embed)\b[^>]*>", re.IGNORECASE)
_ATTR = re.compile(r"""\s(src|href)\s*=\s*(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
_INTEGRITY = re.compile(r"""\s(integrity|crossorigin)(\s*=\s*(["']).*?\3|\s*=\s*[^\s>]+)?(?=[\s/>])""",
                        re.IGNORECASE | re.DOTALL)
_SITE_STATIC = re.compile(r"^(?:\./)?(?:\.\./)*(static/[^:]+)$")
_NOT_FILES = re.compile(r"^\s*(?:#|data:|javascript:|about:|blob:)", re.IGNORECASE)
_CSS_URL = re.compile(r"""url\(\s*(["']?)([^"')]+?)\1\s*\)|@import\s+(["'])([^"']+)\3""", re.IGNORECASE)


@dataclass
class OfflineReport:
    pages: list[Path] = field(default_factory=list)  # .html files rewritten
    files: dict[str, int] = field(default_factory=dict)  # docs-relative path of each vendored file -> bytes


def _strip(url: str) -> str:
    """The URL without its query and fragment (GX appends ``?d=<timestamp>`` to its logo)."""
    return re.split(r"[?#]", url.strip(), maxsplit=1)[0]


class _Vendor:
    """Copies npm files into ``<docs_dir>/static/vendor`` once each, with what their CSS references."""

    def __init__(self, docs_dir: Path, assets_dir: Path, report: OfflineReport) -> None:
        self.docs_dir, self.report = docs_dir, report
        self.modules = assets_dir / "node_modules"
        if not self.modules.is_dir():
            raise OfflineDocsError(
                f"the Data Docs' vendored assets are not installed ({self.modules} is missing): run `make install` "
                f"(npm ci in {assets_dir}); without them the Data Docs would load their scripts from CDNs")

    def package(self, npm: Npm, url: str) -> tuple[Path, str]:
        """The package's folder and its ``name@version`` (checked against the version the URL asks for)."""
        root = self.modules / npm.folder
        try:
            meta = json.loads((root / "package.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise OfflineDocsError(f"{url} has no local copy: npm package {npm.folder} is not installed in "
                                   f"{self.modules} (run `make install`)") from None
        version = meta["version"]
        if version != npm.version and not version.startswith(npm.version + "."):
            raise OfflineDocsError(f"{url} asks for {meta['name']}@{npm.version} but {self.modules / npm.folder} "
                                   f"holds {version}: align expectations/data_docs_assets/package.json")
        return root, f"{meta['name']}@{version}"

    def copy(self, url: str) -> Path:
        """The docs-folder path of the local copy of a CDN URL, copied (with its CSS's fonts) if needed."""
        npm = CDN[url]
        root, tag = self.package(npm, url)
        return self._copy(root, tag, npm.path, url)

    def _copy(self, root: Path, tag: str, rel: str, wanted_by: str) -> Path:
        source = (root / rel).resolve()
        if not source.is_relative_to(root.resolve()) or not source.is_file():
            raise OfflineDocsError(f"{wanted_by} needs {rel}, which {tag} does not ship ({root / rel})")
        dest = self.docs_dir / VENDOR / tag / source.relative_to(root.resolve())
        key = dest.relative_to(self.docs_dir).as_posix()
        if key in self.report.files:
            return dest
        if not dest.is_file() or dest.stat().st_size != source.stat().st_size:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)
        self.report.files[key] = dest.stat().st_size
        if source.suffix == ".css":  # fonts and images a stylesheet loads, relative to it, in the same package
            for ref in _css_refs(source.read_text(encoding="utf-8")):
                if ref.startswith("data:"):
                    continue
                if _REMOTE.match(ref) or ref.startswith("/"):
                    raise OfflineDocsError(f"{tag}/{rel} loads {ref}, which has no local copy")
                target = (source.parent / _strip(ref)).resolve()
                if not target.is_relative_to(root.resolve()):
                    raise OfflineDocsError(f"{tag}/{rel} loads {ref}, outside its package: no local copy")
                self._copy(root, tag, target.relative_to(root.resolve()).as_posix(), f"{tag}/{rel}")
        return dest


def _css_refs(css: str) -> list[str]:
    return [m.group(2) or m.group(4) for m in _CSS_URL.finditer(css)]


def _sri(path: Path, integrity: str) -> bool:
    """Whether the file matches one of the tag's Subresource Integrity hashes (``sha384-...``)."""
    for token in integrity.split():
        algo, _, digest = token.partition("-")
        if algo in ("sha256", "sha384", "sha512"):
            actual = base64.b64encode(hashlib.new(algo, path.read_bytes()).digest()).decode()
            if actual == digest.split("?")[0]:
                return True
    return False


def _rewrite(html: str, page: Path, docs_dir: Path, vendor: _Vendor) -> str:
    def local(url: str) -> str | None:
        """The relative path from the page to the URL's local copy, or None when it is not a known asset."""
        if url in CDN:
            target = vendor.copy(url)
        elif _strip(url) in SITE_FILES:
            target = docs_dir / SITE_FILES[_strip(url)]
            if not target.is_file():
                raise OfflineDocsError(f"{url} (in {page}) stands for {target}, which GX did not write")
        else:
            return None
        return Path(os.path.relpath(target, page.parent)).as_posix()

    def tag(m: re.Match) -> str:
        text = m.group(0)
        attr = _ATTR.search(text)
        if not attr:
            return text
        if not _REMOTE.match(attr.group(3)):
            # GX's validation pages point their favicon one folder too high (favicon.j2 counts 3 levels for
            # validations/<suite>/<run>/<time>/): a link into the docs' own static/ that does not resolve
            ref = _strip(attr.group(3))
            static = _SITE_STATIC.match(ref)
            if static and not (page.parent / ref).is_file() and (docs_dir / static.group(1)).is_file():
                path = Path(os.path.relpath(docs_dir / static.group(1), page.parent)).as_posix()
                return text[:attr.start(3)] + path + text[attr.end(3):]
            return text
        url = attr.group(3).strip()
        path = local(url)
        if path is None:
            return text  # not known: the scan below names it
        integrity = re.search(r"""\sintegrity\s*=\s*(["'])(.*?)\1""", text, re.IGNORECASE | re.DOTALL)
        if integrity and not _sri(Path(os.path.normpath(page.parent / path)), integrity.group(2)):
            raise OfflineDocsError(f"{url} (in {page}): the local copy {path} does not match the page's integrity "
                                   f"hash {integrity.group(2)}: wrong version in expectations/data_docs_assets")
        text = text[:attr.start(3)] + path + text[attr.end(3):]
        return _INTEGRITY.sub("", text)  # a CORS fetch (crossorigin, integrity) of a file:// URL fails

    def css_url(m: re.Match) -> str:
        ref = m.group(2) or m.group(4)
        if ref is None or not _REMOTE.match(ref):
            return m.group(0)
        path = local(ref.strip())
        if path is None:
            return m.group(0)
        return f"url('{path}')" if m.group(2) else f"@import '{path}'"

    html = _TAG.sub(tag, html)
    return _CSS_URL.sub(css_url, html)


class _Loads(HTMLParser):
    """Every URL a page loads: resource attributes, inline CSS (``<style>``, ``style=``)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        rel = set((values.get("rel") or "").lower().split())
        if tag == "link" and rel and rel <= _NOT_LOADED_LINKS:
            pass
        else:
            for name in _LOADING.get(tag, ()):
                value = values.get(name)
                if value:
                    self.urls += [v.split()[0] for v in value.split(",") if v.strip()] if name == "srcset" else [value]
        if values.get("style"):
            self.urls += _css_refs(values["style"] or "")
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.urls += _css_refs(data)


def loads(html: str) -> list[str]:
    """Every URL a page loads (scripts, stylesheets, images, fonts in inline CSS...), not its links."""
    parser = _Loads()
    parser.feed(html)
    parser.close()
    return sorted({u.strip() for u in parser.urls})


def remote_loads(html: str) -> list[str]:
    """The URLs a page would load from the network."""
    return [u for u in loads(html) if _REMOTE.match(u)]


def make_offline(docs_dir: Path, assets_dir: Path = ASSETS_DIR) -> OfflineReport:
    """Serve every asset of the Data Docs under ``docs_dir`` from ``docs_dir/static/vendor``.

    Idempotent: pages already rewritten (an earlier night's) are left as they are. Raises
    ``OfflineDocsError`` naming each URL a page would still load from the network."""
    docs_dir = Path(docs_dir).resolve()
    report = OfflineReport()
    vendor = _Vendor(docs_dir, Path(assets_dir), report)
    missing: dict[str, list[str]] = {}
    for page in sorted(docs_dir.rglob("*.html")):
        if (docs_dir / VENDOR) in page.parents:
            continue
        html = page.read_text(encoding="utf-8")
        new = _rewrite(html, page, docs_dir, vendor)
        for url in loads(new):
            if _REMOTE.match(url):
                missing.setdefault(url, []).append(page.relative_to(docs_dir).as_posix())
            elif not _NOT_FILES.match(url) and not (page.parent / unquote(_strip(url))).is_file():
                missing.setdefault(f"{url} (no such file)", []).append(page.relative_to(docs_dir).as_posix())
        if new != html:
            tmp = page.with_name(page.name + ".offline-tmp")
            tmp.write_text(new, encoding="utf-8")
            os.replace(tmp, page)
            report.pages.append(page)
    if missing:
        lines = [f"  {url} (in {', '.join(pages[:3])}{' and others' if len(pages) > 3 else ''})"
                 for url, pages in sorted(missing.items())]
        raise OfflineDocsError(
            "the Data Docs would load these, and expectations/data_docs_offline.py has no local copy of them (add a "
            "CDN URL to its CDN table, with its npm package in expectations/data_docs_assets/package.json):\n"
            + "\n".join(lines))
    return report
