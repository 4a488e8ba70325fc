"""Build the book: a static site of the executed notebooks, the benchmarks and the design notes (``run.py book``).

Usage: ``python scripts/tools/build_book.py EXECUTED.ipynb ... [--out build/book]``. Nothing is executed here: pass the
executed copies that ``run.py run``, ``bench`` or ``book`` wrote. The sources (book/, the executed notebooks,
docs/*.md and docs/img/) are staged in build/book-src/ (unchanged files keep their time stamps, so Sphinx rebuilds
only what changed), MathJax is copied from the django-static-mathjax package so math renders without a CDN, and
the series' key figure is extracted from the notebooks' outputs into docs/img/ for the README, whose image (and the
book's landing page) then get that figure's alt text.
"""

from __future__ import annotations

import argparse
import base64
import importlib.resources
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Figures helpers.plots labels (its figure metadata "label"), most wanted first: the README shows the last one
# found of the first label that any notebook shows.
KEY_FIGURE_LABELS = ("label-budget", "comparison")
KEY_FIGURE = Path("docs") / "img" / "series-comparison.png"
DOC_PAGES = ("benchmarks.md", "design-notes.md")
# The part of MathJax 3 the site needs: TeX input with every extension, CommonHTML output and its fonts, and the
# accessibility menu's components (loaded only when a reader turns them on).
MATHJAX_PARTS = ("tex-chtml-full.js", "output/chtml", "a11y", "ui", "sre")
# Launch badges the notebooks show, served by the book itself (book/_static/) so that a page loads nothing remote.
LOCAL_BADGES = {"https://colab.research.google.com/assets/colab-badge.svg": "badge-colab.svg",
                "https://mybinder.org/badge_logo.svg": "badge-binder.svg"}


def copy_if_changed(src: Path | bytes, dest: Path) -> bool:
    """Write ``src`` (a file or bytes) to ``dest`` unless it already holds the same bytes; True when written."""
    data = src if isinstance(src, bytes) else src.read_bytes()
    if dest.exists() and dest.read_bytes() == data:
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    return True


def mathjax_dir() -> Path:
    """The es5 folder of the MathJax copy in the django-static-mathjax package."""
    path = Path(str(importlib.resources.files("mathjax"))) / "static" / "mathjax" / "es5"
    if not (path / MATHJAX_PARTS[0]).exists():
        raise FileNotFoundError(f"MathJax not found at {path}: install requirements-book.txt (run.py book does).")
    return path


def read_notebook(path: Path) -> dict:
    """An executed notebook's JSON, with a clear error when it is not one."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"Cannot read the executed notebook {path}: {err}. Run `python3 run.py run` again.") from err
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise ValueError(f"{path} is not a notebook (no cell list); pass executed .ipynb files.")
    return nb


def images(nb: dict):
    """Each image output of a notebook as (png bytes, its metadata dict), in order."""
    for cell in nb["cells"]:
        for out in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            png = out.get("data", {}).get("image/png")
            if png:
                meta = out.get("metadata", {}).get("image/png", {})
                yield base64.b64decode("".join(png) if isinstance(png, list) else png), meta


def local_badges(nb: dict) -> dict:
    """The notebook with its markdown cells' launch-badge images pointing at the book's own copies."""
    for cell in nb["cells"]:
        if cell.get("cell_type") == "markdown":
            text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            for url, name in LOCAL_BADGES.items():
                text = text.replace(url, f"../_static/{name}")
            cell["source"] = text
    return nb


def key_figure(notebooks: list[dict]) -> tuple[bytes, str] | None:
    """The README's figure: the last image labelled with the most wanted of ``KEY_FIGURE_LABELS``, with its alt."""
    found = [(meta.get("label"), png, meta.get("alt", "")) for nb in notebooks for png, meta in images(nb)]
    for label in KEY_FIGURE_LABELS:
        matches = [(png, alt) for lab, png, alt in found if lab == label]
        if matches:
            return matches[-1]
    return None


def markdown_alt(alt: str) -> str:
    """``alt`` as one line that can stand between the brackets of a Markdown image: whitespace folded, brackets escaped."""
    return re.sub(r"([\\\[\]])", r"\\\1", " ".join(alt.split()))


def with_key_figure_alt(text: str, alt: str) -> str:
    """Markdown ``text`` with ``alt`` as the alt text of each image of ``KEY_FIGURE`` (``![...](...)`` or MyST ``:alt:``)."""
    target = re.escape(KEY_FIGURE.as_posix())
    text = re.sub(r"!\[(?:[^\]\\]|\\.)*\]\(" + target + r"\)", lambda m: f"![{markdown_alt(alt)}]({KEY_FIGURE.as_posix()})",
                  text)
    return re.sub(r"(\{figure\}[ \t]+" + target + r"[ \t]*\n(?:[ \t]*:(?!alt:)[\w-]+:.*\n)*[ \t]*:alt:)[^\n]*",
                  lambda m: f"{m.group(1)} {' '.join(alt.split())}", text)


def stage(executed: list[Path], src: Path, root: Path = ROOT) -> dict:
    """Copy the book's sources into ``src``; return what was staged (pages, key figure, README alt, alt-less images)."""
    notebooks = [read_notebook(p) for p in executed]
    figure = key_figure(notebooks)
    alt = figure[1] if figure is not None and figure[1].strip() else None
    for path in (root / "book").rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            data = path.read_bytes()
            if alt and path.suffix == ".md":  # the landing page shows the key figure: describe the one it now is
                data = with_key_figure_alt(data.decode("utf-8"), alt).encode("utf-8")
            copy_if_changed(data, src / path.relative_to(root / "book"))
    for path, nb in zip(executed, notebooks, strict=True):
        copy_if_changed(json.dumps(local_badges(nb), indent=1).encode(), src / "notebooks" / path.name)
    for name in DOC_PAGES:
        copy_if_changed(root / "docs" / name, src / "docs" / name)
    readme_alt = False
    if figure is not None:
        copy_if_changed(figure[0], root / KEY_FIGURE)
        readme = root / "README.md"
        if alt and readme.exists():
            readme_alt = copy_if_changed(with_key_figure_alt(readme.read_text(encoding="utf-8"), alt).encode("utf-8"), readme)
    for path in (root / "docs" / "img").glob("*"):
        copy_if_changed(path, src / "docs" / "img" / path.name)
    mathjax = mathjax_dir()
    for part in MATHJAX_PARTS:
        for path in [mathjax / part] if (mathjax / part).is_file() else (mathjax / part).rglob("*"):
            if path.is_file():
                copy_if_changed(path, src / "_static" / "mathjax" / path.relative_to(mathjax))
    copy_if_changed(mathjax.parent / "LICENSE", src / "_static" / "mathjax" / "LICENSE")
    missing_alt = sum(not meta.get("alt") for nb in notebooks for _, meta in images(nb))
    return {"pages": [f"notebooks/{p.stem}" for p in executed] + [f"docs/{Path(n).stem}" for n in DOC_PAGES],
            "key_figure": figure is not None, "readme_alt": readme_alt, "images_without_alt": missing_alt}


def count_pages(out: Path) -> int:
    """Content pages of a built site: HTML files other than Sphinx's search and index pages."""
    return sum(1 for p in out.rglob("*.html") if p.name not in ("search.html", "genindex.html", "py-modindex.html")
               and "_static" not in p.parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("executed", nargs="+", type=Path, help="executed notebooks, in the series' order")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "book", help="site folder (default build/book)")
    parser.add_argument("--src", type=Path, default=ROOT / "build" / "book-src", help="staging folder")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    staged = stage(args.executed, args.src)
    from sphinx.cmd.build import build_main  # imported late: --help and errors above need no Sphinx

    code = build_main(["-b", "html", "-q", "-d", str(args.src.parent / "book-doctrees"), str(args.src), str(args.out)])
    seconds = time.perf_counter() - start
    print(f"book: {count_pages(args.out)} pages in {args.out} ({seconds:.0f} s to stage and build); key figure "
          f"{'updated in ' + str(KEY_FIGURE) if staged['key_figure'] else 'not found, kept ' + str(KEY_FIGURE)}"
          f"{' (and its alt text in README.md)' if staged['readme_alt'] else ''}; "
          f"{staged['images_without_alt']} notebook image(s) without alt text")
    return code


if __name__ == "__main__":
    sys.exit(main())
