"""Open every page of the built book in headless Chromium and check what a reader sees.

Usage: ``python scripts/tools/check_book.py [build/book]`` (``run.py check-book``, after ``run.py book``). Needs Chromium
(Debian/Ubuntu: ``apt-get install chromium``; or set ``CHROMIUM``) and ``pip install -r requirements-browser.txt``.
The site is served from a local HTTP server, as GitHub Pages would serve it, and any request that leaves it (a
CDN, a font, an analytics script) is blocked and reported. Each page must have no error output and no script
error, every image decoded and with non-empty alt text, all of its math typeset by MathJax without errors, and
every internal link must reach an existing page and anchor. A screenshot of the first notebook page is saved as
``build/book-check.png`` for a person to look at.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit

from playwright.sync_api import sync_playwright

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
INSPECT = r"""async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  const imgs = [...document.querySelectorAll('img')];
  const math = [...document.querySelectorAll('.math')];
  return {
    images: imgs.length,
    broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src')),
    // docutils falls back to the file name when an image has no alt text: that counts as none
    no_alt: imgs.filter(i => { const alt = (i.getAttribute('alt') || '').trim();
      return !alt || alt === i.getAttribute('src') || /\.(png|jpe?g|gif|svg)$/i.test(alt); }).map(i => i.getAttribute('src')),
    math: math.length,
    unrendered: math.filter(m => !m.querySelector('mjx-container')).length,
    math_errors: document.querySelectorAll('mjx-merror').length,
    errors: document.querySelectorAll('.output.traceback, .output.error, [data-mime-type$="jupyter.error"]').length,
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    ids: [...document.querySelectorAll('[id]')].map(e => e.id).concat([...document.querySelectorAll('a[name]')].map(a => a.name)),
  };
}"""


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # one line per page below is enough
        pass


def target_file(site: Path, path: str) -> Path:
    """The file a site-relative URL path names (a folder means its index.html)."""
    file = site / unquote(path).lstrip("/")
    return file / "index.html" if file.is_dir() else file


def check(site: Path, shot: Path) -> int:
    browser_path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser_path:
        sys.exit("No Chromium found: install it (apt-get install chromium) or set CHROMIUM=/path/to/chrome.")
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html") if "_static" not in p.parts)
    if not pages:
        sys.exit(f"No HTML pages in {site}: run `python3 run.py book` first.")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    failed, ids, links, external, script_errors = 0, {}, [], set(), []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})

        def route(r) -> None:
            if r.request.url.startswith((base, "data:", "blob:")):
                r.continue_()
            else:
                external.add(r.request.url)
                r.abort()

        page.route("**/*", route)
        page.on("pageerror", lambda err: script_errors.append(str(err)))
        for name in pages:
            script_errors.clear()
            page.goto(base + name, wait_until="load")
            s = page.evaluate(INSPECT)
            ids[name] = set(s["ids"])
            links += [(name, link) for link in s["links"] if link.startswith(base)]
            problems = [f"{len(s['broken'])} image(s) did not load"] if s["broken"] else []
            problems += [f"{len(s['no_alt'])} image(s) without alt text"] if s["no_alt"] else []
            problems += [f"{s['unrendered']} of {s['math']} formulas not typeset"] if s["unrendered"] else []
            problems += [f"{s['math_errors']} MathJax error(s)"] if s["math_errors"] else []
            problems += [f"{s['errors']} error output(s)"] if s["errors"] else []
            problems += [f"script error: {e}" for e in script_errors]
            failed += bool(problems)
            print(f"{'FAIL' if problems else 'ok  '} {name}: {s['images']} images, {s['math']} formulas"
                  + (" -- " + "; ".join(problems) if problems else ""))
            if name.startswith("notebooks/") and not shot.exists():
                page.screenshot(path=str(shot), full_page=False)
        browser.close()
    server.shutdown()
    bad_links = []
    for name, link in links:
        url, fragment = urldefrag(link)
        path = urlsplit(url).path
        file = target_file(site, path)
        rel = file.relative_to(site).as_posix() if file.is_relative_to(site) else path
        if not file.exists():
            bad_links.append(f"{name} -> {link} (no such file)")
        elif fragment and rel in ids and unquote(fragment) not in ids[rel]:
            bad_links.append(f"{name} -> {link} (no anchor #{fragment})")
    for line in sorted(set(bad_links)):
        print(f"FAIL link {line}")
    for url in sorted(external):
        print(f"FAIL request left the site: {url}")
    print(f"{len(pages) - failed} of {len(pages)} pages passed; {len(set(links))} internal links, "
          f"{len(set(bad_links))} broken; {len(external)} blocked external request(s); screenshot {shot}")
    return 1 if failed or bad_links or external else 0


def main(argv: list[str]) -> int:
    site = Path(argv[0] if argv else "build/book").resolve()
    shot = site.parent / "book-check.png"
    shot.unlink(missing_ok=True)
    return check(site, shot)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
