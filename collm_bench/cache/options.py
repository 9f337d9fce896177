"""Which options a cached stage reads, so that its key follows from the options themselves.

Each option names its groups (``option(..., groups=("tuning",))``); a stage names the groups it
reads. ``StageOptions`` is the view the stage computes with: it holds exactly the options of
those groups, its ``key()`` goes into the stage's cache key, and reading any other option from it
fails at once, naming the option and the fix. So an option cannot change a stage's result without
changing its key (the bug of hand-kept name lists: a forgotten name reused a stale stage).
Options in no group (a preset name, the harness's test sample) are read outside stages.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from collm_bench.api.components import OPTION_META, json_ready


def option_groups(options_cls: type) -> dict[str, tuple[str, ...]]:
    """Each field of an options dataclass -> its groups (``()`` for none)."""
    return {f.name: tuple((f.metadata.get(OPTION_META) or {}).get("groups") or ())
            for f in dataclasses.fields(options_cls)}


class StageOptions:
    """The options of ``groups`` from an options instance, read as attributes."""

    def __init__(self, options: Any, groups: tuple[str, ...], *, stage: str) -> None:
        tagged = option_groups(type(options))
        known = {g for names in tagged.values() for g in names}
        unknown = sorted(set(groups) - known)
        if unknown:  # a typo would otherwise read nothing and key nothing
            raise ValueError(f"stage {stage}: no option of {type(options).__name__} is in group(s) "
                             f"{', '.join(unknown)}; groups: {', '.join(sorted(known))}")
        wanted = set(groups)
        object.__setattr__(self, "_stage", stage)
        object.__setattr__(self, "_groups", tuple(groups))
        object.__setattr__(self, "_values", {name: getattr(options, name) for name, names in tagged.items()
                                             if wanted & set(names)})
        object.__setattr__(self, "_tagged", tagged)

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__["_values"]
        if name in values:
            return values[name]
        tagged = self.__dict__["_tagged"]
        if name not in tagged:
            raise AttributeError(name)
        where = ", ".join(tagged[name]) or "no group"
        raise AttributeError(
            f"stage {self._stage} reads option {name!r} ({where}) outside its groups "
            f"({', '.join(self._groups)}): add the group to the stage's reads or the stage's group to the option, "
            f"so that the option is part of the stage's key")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("stage options are read-only")

    def key(self) -> dict[str, Any]:
        """The JSON-ready values that enter the stage's key."""
        return json_ready(dict(sorted(self._values.items())))
