"""Command line: ``python -m helpers check`` (the preflight) and ``python -m helpers prefetch`` (cache IMDB)."""

import sys

USAGE = ("usage: python -m helpers check      check in seconds that this machine is ready for the series\n"
         "       python -m helpers prefetch   download, extract and cache IMDB (for classrooms and Binder)")


def main(argv: list[str]) -> int:
    """Run the command named by ``argv``; return the exit status."""
    if argv == ["check"]:
        from .check import main as check

        return check()
    if argv == ["prefetch"]:
        from .data import DatasetError, prefetch

        try:
            prefetch()
        except DatasetError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        return 0
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
