"""CI gate 8: the textbook site builds from the executed chapters (gate 6 left them in
build/notebooks) and passes its test in a real headless browser.

Both editions are built. The public one is served on 127.0.0.1 and crawled from its home
page in Chromium (the system's package, driven by Playwright; never a browser download):

- every page loads with no console error and no uncaught exception;
- no request goes to another host (each one is intercepted, and refused);
- math is typeset by MathJax: every formula processed, no error, no raw TeX left;
- every image loads;
- every internal link and anchor resolves;
- search for a term of chapter 04 lists chapter 04, served and opened from disk;
- the dark theme changes the page's colours;
- no page, and no student notebook offered for download, holds a solution marker, a hidden
  test's name or a line of a solution region.

The instructor edition must mark every solution. Screenshots of the home page and of
chapter 04 (light and dark) are written to build/site-screenshots/.

    python ci/check_site.py [--term WORD]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import re
import sys
import threading
import time
from collections import deque
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

import nbformat

from llmlab.authoring import sync
from llmlab.book import execute, nbgrade, site
from llmlab.course import paths, topics

SEARCH_TOPIC = "04_attention"
MARKERS = tuple(marker.lstrip("# ") for marker in execute.MARKERS)  # "BEGIN SOLUTION", ...
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                  "--disable-background-networking", "--disable-component-update"]
PAGE_STATE = """() => ({
    images: document.images.length,
    broken_images: Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
    links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
    ids: Array.from(document.querySelectorAll('[id]')).map(e => e.id),
    formulas: document.querySelectorAll('span.math, div.math').length,
    typeset: document.querySelectorAll('span.math mjx-container, div.math mjx-container').length,
    math_errors: document.querySelectorAll('mjx-merror, [data-mjx-error]').length,
    text: document.body.innerText,
    prose: (() => { const body = document.body.cloneNode(true);
                    body.querySelectorAll('pre, code, script, style, mjx-container').forEach(e => e.remove());
                    return body.textContent; })(),
})"""


def solution_lines() -> set[str]:
    """Distinctive lines of every solution region: long enough to be unambiguous, and in no
    public file (a skeleton, or a chapter's own code, such as its training loop)."""
    public = "\n".join(p.read_text() for p in sorted(paths.root().glob("notebooks/*.py")))
    public += "\n".join(p.read_text() for topic in topics.available() for p in sorted(topic.exercises.glob("*.py")))
    public_lines = {line.strip() for line in public.splitlines()}
    lines = set()
    for topic in topics.available():
        for path in sorted(topic.solutions.glob("*.py")):
            source = path.read_text()
            inside = {source.splitlines()[number - 1].strip() for number in sync.solution_lines(source)}
            lines |= {line for line in inside if len(line) >= 30 and line not in public_lines}
    return lines


def leaks(text: str, where: str, hidden: set[str], solutions: set[str]) -> list[str]:
    found = [f"{where}: holds the marker {m!r}" for m in MARKERS if m in text]
    found += [f"{where}: names the hidden test {name}" for name in sorted(hidden) if name in text]
    shown = {line.strip() for line in text.splitlines()}  # whole lines: a docstring may quote a call
    found += [f"{where}: shows a solution line: {line[:70]!r}" for line in sorted(solutions & shown)][:3]
    return found


def serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


class Browser:
    """One headless Chromium; each visit records console errors and refused requests."""

    def __init__(self, playwright, executable: str, base: str):
        self.browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        self.context = self.browser.new_context(viewport={"width": 1280, "height": 900})
        self.base = base
        self.external: list[str] = []
        self.errors: list[str] = []
        self.context.route("**/*", self._route)

    def _route(self, route):
        url = route.request.url
        if url.startswith((self.base, "file://", "data:", "blob:", "about:")):
            route.continue_()
        else:
            self.external.append(url)
            route.abort()

    def visit(self, url: str, wait_for_math: bool = True):
        page = self.context.new_page()
        page.on("console", lambda msg: msg.type == "error" and self.errors.append(f"{url}: console: {msg.text}"))
        page.on("pageerror", lambda exc: self.errors.append(f"{url}: exception: {exc}"))
        page.goto(url, wait_until="load")
        if wait_for_math and page.evaluate("() => document.querySelector('span.math, div.math') !== null"):
            page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=20000)
            page.evaluate("() => MathJax.startup.promise")
        return page


def crawl(browser: Browser, out: Path, problems: list[str], hidden: set[str], solutions: set[str]) -> dict:
    base = browser.base
    queue, seen, anchors, ids = deque([base + "index.html"]), set(), [], {}
    stats = {"pages": 0, "formulas": 0, "images": 0, "links": 0}
    while queue:
        url = queue.popleft()
        if url in seen:
            continue
        seen.add(url)
        page = browser.visit(url)
        state = page.evaluate(PAGE_STATE)
        page.close()
        name = url[len(base):]
        stats["pages"] += 1
        stats["formulas"] += state["formulas"]
        ids[url] = set(state["ids"])
        problems += [f"{name}: image did not load: {src}" for src in state["broken_images"]]
        stats["images"] += state["images"]
        if state["formulas"] and (state["typeset"] < state["formulas"] or state["math_errors"]):
            problems.append(f"{name}: {state['formulas']} formulas, {state['typeset']} typeset, "
                            f"{state['math_errors']} MathJax errors")
        if re.search(r"\\\(|\\\[|\$\$", state["prose"]):  # code may hold a "$$" of its own
            problems.append(f"{name}: raw TeX is visible on the page")
        problems += leaks(state["text"], name, hidden, solutions)
        for link in state["links"]:
            target, fragment = urldefrag(link)
            if not target.startswith(base):
                continue
            stats["links"] += 1
            path = out / unquote(urlparse(target).path.lstrip("/"))
            if not path.exists():
                problems.append(f"{name}: broken link to {target[len(base):]}")
            elif path.suffix == ".html":
                queue.append(target)
                if fragment:
                    anchors.append((name, target, fragment))
    problems += [f"{name}: link to a missing anchor {target[len(base):]}#{fragment}"
                 for name, target, fragment in anchors if fragment not in ids.get(target, set())]
    return stats


def search_finds(browser: Browser, url: str, slug: str) -> list[str]:
    page = browser.visit(url, wait_for_math=False)
    page.wait_for_function("() => document.querySelector('#search-results .search-summary')", timeout=20000)
    hits = page.evaluate("() => Array.from(document.querySelectorAll('#search-results li a')).map(a => a.href)")
    page.close()
    return [h for h in hits if f"chapters/{slug}.html" in h]


def search_term(out: Path) -> str:
    """A word of chapter 04's text (a heading's longest word), so the check follows the chapter."""
    text = (out / "chapters" / f"{SEARCH_TOPIC}.html").read_text(encoding="utf-8")
    headings = re.findall(r"<h[23][^>]*>(.*?)</h[23]>", text, flags=re.S)
    words = [w for h in headings for w in re.findall(r"[A-Za-z]{6,}", re.sub(r"<[^>]+>", " ", h))]
    return max(words, key=len) if words else "attention"


def screenshots(browser: Browser, folder: Path, problems: list[str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    shots, colours = [], {}
    for theme in ("light", "dark"):
        for name, url in (("home", "index.html"), ("chapter-04", f"chapters/{SEARCH_TOPIC}.html")):
            page = browser.visit(browser.base + url)
            page.evaluate(f"() => document.documentElement.dataset.theme = '{theme}'")
            time.sleep(0.2)
            colours[theme] = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
            shots.append(folder / f"{name}-{theme}.png")
            page.screenshot(path=str(shots[-1]))
            if name == "chapter-04" and page.locator("div.math").count():
                page.locator("div.math").first.scroll_into_view_if_needed()
                shots.append(folder / f"{name}-formula-{theme}.png")
                page.screenshot(path=str(shots[-1]))
            page.close()
    if colours["light"] == colours["dark"]:
        problems.append(f"the dark theme does not change the background ({colours['light']})")
    return shots


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--term", help="the search term (default: a word of a chapter 04 heading)")
    args = parser.parse_args()
    sys.path.insert(0, str(paths.root()))
    from install import find_browser

    problems: list[str] = []
    start = time.monotonic()
    try:
        out, pages = site.build(edition="public")
        instructor, _ = site.build(edition="instructor")
    except site.BookError as exc:
        print(f"PROBLEM {exc}")
        return 1
    built = time.monotonic() - start
    print(f"built the public edition ({pages} pages) and the instructor edition in {built:.1f} s")

    hidden, solutions = nbgrade.hidden_test_names(), solution_lines()
    for notebook in sorted((out / "_downloads").rglob("*.ipynb")):
        problems += [f"download {p}" for p in nbgrade.audit(notebook.parent)]
        code = "\n".join(c.source for c in nbformat.read(notebook, as_version=4).cells)
        problems += leaks(code, f"download {notebook.name}", hidden, solutions)
    for chapter in sorted((instructor / "chapters").glob("*.html")):
        if "Solution (instructor edition)" not in chapter.read_text(encoding="utf-8"):
            problems.append(f"instructor edition {chapter.name}: no solution is marked")

    executable = find_browser()
    if not executable:
        print("PROBLEM no Chromium: run `python install.py --browser` (or set LLMLAB_CHROMIUM)")
        return 1
    from playwright.sync_api import sync_playwright

    server, base = serve(out)
    term = args.term or search_term(out)
    try:
        with sync_playwright() as playwright:
            browser = Browser(playwright, executable, base)
            stats = crawl(browser, out, problems, hidden, solutions)
            if not search_finds(browser, f"{base}search.html?q={term}", SEARCH_TOPIC):
                problems.append(f"search for {term!r} (served) does not list {SEARCH_TOPIC}")
            if not search_finds(browser, f"{(out / 'search.html').as_uri()}?q={term}", SEARCH_TOPIC):
                problems.append(f"search for {term!r} (opened from disk) does not list {SEARCH_TOPIC}")
            shots = screenshots(browser, paths.root() / "build" / "site-screenshots", problems)
            problems += browser.errors
            problems += [f"a request to another host: {url}" for url in sorted(set(browser.external))]
            browser.browser.close()
    finally:
        server.shutdown()
    if stats["formulas"] == 0:
        problems.append("no page has a formula: the math check checked nothing")
    print(f"browser: {stats['pages']} pages, {stats['links']} internal links, {stats['images']} images, "
          f"{stats['formulas']} formulas; search for {term!r} lists {SEARCH_TOPIC}; "
          f"{time.monotonic() - start:.1f} s in all")
    print("screenshots: " + ", ".join(str(p.relative_to(paths.root())) for p in shots))
    for line in problems:
        print(f"PROBLEM {line}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
