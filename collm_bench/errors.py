"""Errors that reach the user as one clear line and a non-zero exit code."""
from __future__ import annotations

import difflib
from typing import Iterable

# Plumbing: moves results around, computes none of their numbers (collm_bench.cache.identity).
__identity__ = "plumbing"


class UserError(Exception):
    """A problem the user can fix (bad input, unknown name, missing file). Exit code 2."""

    exit_code = 2


class DataError(UserError):
    """A prepared or raw dataset file is malformed. The message names the file."""

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """A ' (did you mean ...?)' suffix for an unknown name, or '' when nothing is close."""
    close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.5)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def unknown_name(kind: str, name: str, known: Iterable[str]) -> UserError:
    known = sorted(known)
    return UserError(
        f"unknown {kind} {name!r}{did_you_mean(name, known)}; known: {', '.join(known) or 'none'}"
    )
