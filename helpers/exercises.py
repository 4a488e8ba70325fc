"""Self-checking exercises: report whether an attempt passes without breaking restart-and-run-all."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def check(exercise: str, attempt: Any, is_correct: Callable[[Any], bool], hint: str = "") -> bool:
    """Print whether ``attempt`` passes ``is_correct``; an unattempted exercise (None, NotImplementedError) is not an error."""
    if not isinstance(exercise, str) or not callable(is_correct) or not isinstance(hint, str):
        raise TypeError("call check(exercise_name: str, attempt, is_correct: a function of the attempt returning True "
                        f"or False, hint: str); got exercise={exercise!r}, is_correct={is_correct!r}, hint={hint!r}")
    if attempt is None or attempt is Ellipsis:
        print(f"{exercise}: not attempted yet. {hint}".strip())
        return False
    try:
        ok = bool(is_correct(attempt))
    except NotImplementedError:
        print(f"{exercise}: not attempted yet. {hint}".strip())
        return False
    except Exception as err:  # noqa: BLE001 - the learner sees what went wrong in their attempt
        print(f"{exercise}: your attempt raised {type(err).__name__}: {err}")
        return False
    print(f"{exercise}: {'correct, well done!' if ok else 'not quite yet. ' + hint}".strip())
    return ok
