"""Errors that reach the user as one clear line and a non-zero exit code."""
from __future__ import annotations

import difflib
import re
from pathlib import PurePath
from typing import Iterable

# Plumbing: moves results around, computes none of their numbers (collm_bench.cache.identity).
__identity__ = "plumbing"


class UserError(Exception):
    """A problem the user can fix (bad input, unknown name, missing file). Exit code 2."""

    exit_code = 2


class DataError(UserError):
    """A prepared or raw dataset file is malformed. The message names the file; a file of a
    dataset being prepared is named by the dataset, not by its staging folder (removed as the
    error is raised: ``collm_bench.data.datasets.prepare_dataset``)."""

    def __init__(self, path: object, problem: str) -> None:
        staged = _staged(path)
        if staged:
            dataset, file = staged
            super().__init__(f"dataset {dataset!r}, {file} as prepared from its raw files: {problem}; the raw "
                             "files are malformed (fetch them again or give a sound --source), or the dataset "
                             "plugin wrote a bad file")
        else:
            super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


_STAGING = re.compile(r"\.[^/]+\.partial-\d+")   # prepare_dataset's staging folder: .<target>.partial-<pid>


def _staged(path: object) -> tuple[str, str] | None:
    """(dataset, file inside the staging folder) when ``path`` lies in a dataset's staging folder."""
    parts = PurePath(str(path)).parts
    for i, part in enumerate(parts[1:-1], start=1):
        if _STAGING.fullmatch(part):
            return parts[i - 1], "/".join(parts[i + 1:])
    return None


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """A ' (did you mean ...?)' suffix for an unknown name, or '' when nothing is close."""
    close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.5)
    return f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""


def unknown_name(kind: str, name: str, known: Iterable[str]) -> UserError:
    known = sorted(known)
    return UserError(
        f"unknown {kind} {name!r}{did_you_mean(name, known)}; known: {', '.join(known) or 'none'}"
    )
