"""Open executed notebooks' HTML in headless Chromium and confirm that every plot rendered.

Usage: ``python scripts/tools/check_html.py build/*.html`` (``make check-html``, after ``make run``). Needs Chromium
(Debian/Ubuntu: ``apt-get install chromium``; or set ``CHROMIUM``) and ``pip install -r requirements-browser.txt``.
For each page it counts the images, checks each one decoded to a non-empty bitmap, and saves a screenshot of
the first plot as ``<page>.plot.png`` beside the HTML for a person to look at.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
COUNT_IMAGES = """() => {
  const imgs = [...document.querySelectorAll('img')].filter(i => i.src.startsWith('data:image'));
  return {total: imgs.length, rendered: imgs.filter(i => i.complete && i.naturalWidth > 0 && i.naturalHeight > 0).length,
          errors: document.querySelectorAll('[data-mime-type="application/vnd.jupyter.error"], .output_error').length};
}"""


def main(pages: list[str]) -> int:
    browser_path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser_path:
        sys.exit("No Chromium found: install it (apt-get install chromium) or set CHROMIUM=/path/to/chrome.")
    if not pages:
        sys.exit("No HTML pages given: run `make run` first, then `make check-html`.")
    failed = 0
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=FLAGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        for html in pages:
            path = Path(html).resolve()
            page.goto(path.as_uri(), wait_until="load")
            stats = page.evaluate(COUNT_IMAGES)
            ok = stats["total"] > 0 and stats["rendered"] == stats["total"] and stats["errors"] == 0
            failed += not ok
            shot = path.with_suffix(".plot.png")
            if stats["total"]:
                page.locator("img[src^='data:image']").first.screenshot(path=str(shot))
            print(f"{'ok  ' if ok else 'FAIL'} {path.name}: {stats['rendered']}/{stats['total']} plots rendered, "
                  f"{stats['errors']} error outputs" + (f"; first plot saved to {shot.name}" if stats["total"] else ""))
        browser.close()
    print(f"{len(pages) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
