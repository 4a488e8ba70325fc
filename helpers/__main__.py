"""Command line: ``python -m helpers prefetch`` downloads, extracts and caches IMDB (for classrooms and Binder)."""

import sys

from .data import DatasetError, prefetch

if __name__ == "__main__":
    if sys.argv[1:] != ["prefetch"]:
        sys.exit("usage: python -m helpers prefetch")
    try:
        prefetch()
    except DatasetError as err:
        sys.exit(f"error: {err}")
