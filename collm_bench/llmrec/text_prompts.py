"""Prompts that carry per-row text and no ID slot: collaborative information written as text
(BinLLM's codes), other history items (ReLLa's retrieval), any feature of a row.

``TextPromptMaker`` renders ``template`` (default: the paper's text template) for each row from
four hooks, each overridable on its own:

- ``history(rows)``: which items each prompt lists, ``[N, K]`` dense item indices, oldest first,
  0 for none (default: the row's last ``history_titles`` positives, the paper's);
- ``history_text(rows, history)``: how they are written (default: quoted titles, comma-joined,
  ``unkow`` for none, the paper's);
- ``fields(rows)``: any other text the template names, one string per row for each field
  (default: none), e.g. ``{"user_id": codes_of_users, "item_id": codes_of_items}`` for the
  paper's ID template with codes where its ID slots were;
- ``holds``: what the prompts hold, in words; ``describe()`` is the line a method logs.

The template's fields are ``{items}`` and ``{item}`` (the dataset's noun), ``{history}``,
``{target}`` (the quoted target title) and those of ``fields``. The prompts have no slot, so a
stage reads them with ``with_ids=False`` and ``embed=None``; with the defaults they are exactly
``PromptMaker``'s text prompts (tested).
"""
from __future__ import annotations

import string
from typing import Sequence

import numpy as np

from collm_bench.llm.prompts import (NO_POSITION, TEXT_TEMPLATE, Prompts, plural, quote, recent_history,
                                     title_list)
from collm_bench.llm._checks import check_prompt_fields
from collm_bench.llmrec.prompt_maker import PromptMaker

BUILT_IN_FIELDS = ("items", "item", "history", "target")


class TextPromptMaker(PromptMaker):
    """``PromptMaker`` whose text a method fills row by row through its hooks (module docstring);
    ``with_ids`` is ignored: the prompts have no ID slot."""

    template: str = TEXT_TEMPLATE
    holds: str = "the user's last liked titles and the target's title (the paper's text prompt)"

    def history(self, rows: np.ndarray) -> np.ndarray:
        """``[N, K]`` dense item indices each prompt lists, oldest first (0: none)."""
        return recent_history(self.data.history_matrix(rows, max(self.history_titles, 1)), self.history_titles)

    def history_text(self, rows: np.ndarray, history: np.ndarray) -> list[str]:
        """The text standing for ``{history}`` in each row's prompt."""
        return [title_list([str(t) for t in self.titles[items[items > 0]]]) for items in history]

    def fields(self, rows: np.ndarray) -> dict[str, Sequence[str]]:
        """Other text fields the template names, one string per row each."""
        return {}

    def describe(self) -> str:
        """What the prompts hold, for a method's log."""
        return f"text prompts, no ID slot: {self.holds}"

    def prompts(self, rows: np.ndarray, with_ids: bool) -> Prompts:
        rows = np.asarray(rows, dtype=np.int64)
        history = self.history_text(rows, self.history(rows))
        extra = self.fields(rows)
        check_prompt_fields(self, extra, BUILT_IN_FIELDS)
        named = {name for _, name, _, _ in string.Formatter().parse(self.template) if name}
        missing = sorted(named - set(BUILT_IN_FIELDS) - set(extra))
        if missing:
            raise ValueError(f"{type(self).__name__}.template names {missing}, which fields() does not give")
        for name, values in extra.items():
            if len(values) != len(rows):
                raise ValueError(f"{type(self).__name__}.fields()[{name!r}] has {len(values)} values for {len(rows)} rows")
        fill = {"items": plural(self.item_noun), "item": self.item_noun}
        texts = [self.template.format(history=history[r], target=quote(str(self.titles[target])), **fill,
                                      **{name: values[r] for name, values in extra.items()})
                 for r, target in enumerate(self.data.item[rows].tolist())]
        return Prompts(texts, np.full((len(rows), 0), NO_POSITION, dtype=np.int64))
