"""Sphinx configuration of the book: the executed notebooks, the benchmarks and the design notes (``run.py book``).

``scripts/tools/build_book.py`` copies this folder, the executed notebooks and docs/ into build/book-src/ and builds it
there; nothing is executed or downloaded by the build, and MathJax is served from the site itself.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))

project = "Deep learning for NLP with Python"
author = "the dl-nlp tutorial authors"
copyright = "the dl-nlp tutorial authors, MIT licence"  # noqa: A001 - Sphinx's name
extensions = ["myst_nb", "alt_text", "sphinx.ext.githubpages"]  # githubpages: .nojekyll, so Pages serves _static/
exclude_patterns = ["_build", "**.ipynb_checkpoints", "README.md"]
root_doc = "index"

# Notebooks are executed before the build (run.py run, bench or book), never by Sphinx.
nb_execution_mode = "off"
nb_output_stderr = "remove"  # progress bars and library log lines; errors and results are kept
nb_ipywidgets_js = {}  # no widget state in the notebooks: no script from a CDN
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 4  # GitHub-style anchors, so ../docs/design-notes.md#a-heading links resolve

# Math offline: scripts/tools/build_book.py copies MathJax (PyPI package django-static-mathjax) into _static/mathjax.
mathjax_path = "mathjax/tex-chtml-full.js"

REPO = "https://github.com/dlnlp-tutorial/deep-learning-nlp-python"
html_theme = "sphinx_book_theme"
html_title = project
html_static_path = ["_static"]
html_css_files = ["book.css"]
html_theme_options = {
    "repository_url": REPO,
    "repository_branch": "main",
    "path_to_docs": "",
    "use_repository_button": True,
    "use_download_button": True,
    "launch_buttons": {"binderhub_url": "https://mybinder.org", "colab_url": "https://colab.research.google.com"},
    "show_toc_level": 2,
}
html_last_updated_fmt = None
suppress_warnings = ["myst.header"]  # notebooks start with an H1 and may skip levels in callouts
