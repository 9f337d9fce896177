"""Prompts of dataset rows, built and tokenized only for the rows a batch needs.

``PromptMaker`` renders the paper's two templates (``collm_bench.llm.prompts``): the text one
(``with_ids=False``) and the ID one with two slots, user then item. A method with prompts of its
own subclasses it and overrides ``prompts`` (any number of slots, ``Prompts.from_parts``); length
bucketing, tokenization and padding follow.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from collm_bench.llm.prompts import Prompts, TokenizedPrompts, collate, row_prompts, titles_by_index, tokenize_for


class PromptMaker:
    """The prompts of ``data``'s rows as ``backbone`` reads them (``history_titles``: the last N
    positives' titles in each prompt; ``item_noun``: the dataset's word for an item)."""

    def __init__(self, data: Any, items_frame: Any, item_noun: str, backbone: Any, history_titles: int) -> None:
        self.data, self.backbone, self.history_titles = data, backbone, history_titles
        self.item_noun = item_noun
        self.titles = titles_by_index(items_frame, data.item_ids)

    def prompts(self, rows: np.ndarray, with_ids: bool) -> Prompts:
        """The prompt texts of ``rows`` and their ID slots."""
        return row_prompts(self.titles, self.data, rows, item_noun=self.item_noun, with_ids=with_ids,
                           placeholder=self.backbone.placeholder_token, history_len=self.history_titles)

    def lengths(self, rows: np.ndarray, with_ids: bool) -> np.ndarray:
        """Character lengths: a cheap proxy of token lengths for bucketing."""
        return np.fromiter((len(t) for t in self.prompts(rows, with_ids).texts), dtype=np.int64, count=len(rows))

    def tokenized(self, rows: np.ndarray, with_ids: bool) -> TokenizedPrompts:
        """The prompts of ``rows`` as the backbone reads them."""
        return tokenize_for(self.backbone, self.prompts(rows, with_ids))

    def batch(self, rows: np.ndarray, with_ids: bool) -> dict[str, np.ndarray]:
        """One padded batch of ``rows`` (``collm_bench.llm.prompts.collate``) with ``data_rows``."""
        out = collate(self.tokenized(rows, with_ids), np.arange(len(rows)), pad_id=self.backbone.pad_token_id,
                      padding_side=self.backbone.padding_side)
        out["data_rows"] = np.asarray(rows)
        return out
