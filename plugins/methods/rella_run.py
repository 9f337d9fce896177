"""ReLLa's run on the LLM-rec toolkit (``collm_bench.llmrec``); ``rella`` says what ReLLa is and
where this port departs. Stages: item embeddings (the untuned backbone's averaged last hidden
states, PCA; cached) -> LoRA on the 1:1 mix of recent and retrieved prompts (``tuning=lora``)
-> scoring with retrieved prompts. Imported only when the method runs (torch)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from collm_bench.api.methods import MethodContext, MethodOutput
from collm_bench.encoders.training import seed_everything
from collm_bench.errors import UserError
from collm_bench.llm.prompts import Prompts, collate, tokenize_for
from collm_bench.llm.scorer import add_lora, load_trainable, save_trainable
from collm_bench.llmrec import PROMPT, SCORING, STEP1_READS, LLMRun, TextPromptMaker, train_prompts, tune_meta

from collm_bench_plugins.methods.rella import RETRIEVAL

ITEMS_FILE, TUNED_FILE = "items.npy", "rella.safetensors"
ITEM_TEXT = "Here is a {item}. Its title is {title}."   # the authors' item text, without the genre
RATED = ("The user watched the following {items} in order in the past, and rated them: {history}. "
         "Based on the {items} the user has watched, deduce if the user will like the {item} ***{target_title}***. "
         "Note that more stars the user rated the {item}, the more the user liked the {item}. "
         "You should ONLY tell me yes or no. \\n#Answer:")
LABELLED = ("The user watched the following {items} in order in the past, and rated them: {history}. "
            "Based on the {items} the user has watched, deduce if the user will like the {item} ***{target_title}***. "
            "You should ONLY tell me yes or no. \\n#Answer:")


def item_vectors(backbone: Any, titles: np.ndarray, item_noun: str, dims: int, batch_size: int = 64) -> np.ndarray:
    """``[n_items, d]`` unit vectors, row 0 zero: each item's text through the backbone, its last
    hidden states averaged over the text's tokens, PCA to ``d = min(dims, hidden, n_items - 1)``."""
    from sklearn.decomposition import PCA

    texts = [ITEM_TEXT.format(item=item_noun, title=str(t)) for t in titles[1:]]
    tokenized = tokenize_for(backbone, Prompts(texts, np.zeros((len(texts), 0), dtype=np.int64)))
    model, out = backbone.model, []
    extra = {"logits_to_keep": 1} if backbone.kind == "causal" else {}
    was_training = model.training
    model.eval()   # no dropout: the same vectors on every run
    with torch.inference_mode():
        for lo in range(0, len(texts), batch_size):
            batch = collate(tokenized, np.arange(lo, min(lo + batch_size, len(texts))), pad_id=backbone.pad_token_id,
                            padding_side=backbone.padding_side)
            ids = torch.from_numpy(batch["input_ids"]).to(model.device)
            mask = torch.from_numpy(batch["attention_mask"]).to(model.device)
            hidden = model(input_ids=ids, attention_mask=mask, output_hidden_states=True, **extra).hidden_states[-1]
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            out.append(((hidden * weights).sum(1) / weights.sum(1)).float().cpu().numpy())
    model.train(was_training)
    states = np.concatenate(out)
    d = min(dims, states.shape[1], len(states) - 1)
    reduced = PCA(n_components=d, svd_solver="full").fit_transform(states.astype(np.float64))
    reduced /= np.maximum(np.linalg.norm(reduced, axis=1, keepdims=True), 1e-12)
    return np.concatenate([np.zeros((1, d)), reduced]).astype(np.float32)


class RetrievalPromptMaker(TextPromptMaker):
    """Prompts listing K history items of each row: the K most similar to the target (retrieved)
    or the K most recent, in chronological order. Row ``r + n`` (``n`` = the dataset's rows)
    stands for row ``r`` with its K most recent items: the tuning stage trains on both forms.
    ``set_retrieval`` gives what the prompts need beyond ``data``."""

    k = 0
    liked_only = False     # prompt=tallrec: the user's liked items, as TALLRec's prompt lists
    _recent: np.ndarray | None = None

    def set_retrieval(self, *, vectors: np.ndarray, timestamps: np.ndarray, ratings: np.ndarray | None, k: int,
                      prompt: str) -> None:
        data = self.data
        self.vectors, self.ratings, self.k = vectors, ratings, k
        self.liked_only = prompt == "tallrec"
        if not self.liked_only:
            self.template = RATED if ratings is not None else LABELLED
        # every row's earlier rows: the user's rows sorted by time, stable over file order (the history rule)
        self.order = np.lexsort((np.arange(len(data.user)), timestamps, data.user))
        self.position = np.empty(len(self.order), dtype=np.int64)
        self.position[self.order] = np.arange(len(self.order))
        sorted_users = data.user[self.order]
        self.start = np.searchsorted(sorted_users, data.user, side="left")
        self.picked = {False: {}, True: {}}   # per form: data row -> its listed rows (cached)
        kind = "liked items" if self.liked_only else "rated items with their " + ("ratings" if ratings is not None
                                                                                 else "labels")
        self.holds = (f"the {k} {kind} of the user's history most similar to the target (the backbone's item "
                      f"embeddings, cosine), in time order, and the target's title"
                      + (" (TALLRec's prompt)" if self.liked_only else " (ReLLa's prompt)"))

    def listed_rows(self, row: int, recent: bool) -> np.ndarray:
        """The data rows whose items row ``row``'s prompt lists, oldest first."""
        cache = self.picked[recent]
        if row not in cache:
            earlier = self.order[self.start[row]:self.position[row]]
            if self.liked_only:
                earlier = earlier[self.data.label[earlier] == 1]
            if len(earlier) <= self.k:
                chosen = earlier[:self.k]   # all of them (none when k is 0)
            elif recent:
                chosen = earlier[-self.k:]
            else:
                similarity = self.vectors[self.data.item[earlier]] @ self.vectors[self.data.item[row]]
                chosen = earlier[np.sort(np.argsort(-similarity, kind="stable")[:self.k])]
            cache[row] = chosen
        return cache[row]

    def prompts(self, rows: np.ndarray, with_ids: bool) -> Prompts:
        rows = np.asarray(rows, dtype=np.int64)
        n = len(self.data.item)
        self._recent = rows >= n
        try:
            return super().prompts(rows % n, with_ids)
        finally:
            self._recent = None

    def _listed(self, rows: np.ndarray) -> list[np.ndarray]:
        recent = self._recent if self._recent is not None else np.zeros(len(rows), dtype=bool)
        return [self.listed_rows(int(r), bool(f)) for r, f in zip(rows.tolist(), recent.tolist())]

    def history(self, rows: np.ndarray) -> np.ndarray:
        out = np.zeros((len(rows), self.k), dtype=np.int64)
        for r, listed in enumerate(self._listed(rows)):
            out[r, self.k - len(listed):] = self.data.item[listed]
        return out

    def history_text(self, rows: np.ndarray, history: np.ndarray) -> list[str]:
        if self.liked_only:
            return super().history_text(rows, history)
        texts = []
        for listed in self._listed(rows):
            entries = [f"{j}. {self.titles[self.data.item[h]]} ({self._rating(h)})" for j, h in enumerate(listed.tolist())]
            texts.append(str(entries))
        return texts

    def _rating(self, row: int) -> str:
        if self.ratings is None:
            return "liked" if self.data.label[row] == 1 else "disliked"
        stars = int(self.ratings[row])
        return f"{stars} star" if stars == 1 else f"{stars} stars"

    def fields(self, rows: np.ndarray) -> dict[str, Sequence[str]]:
        return {} if self.liked_only else {"target_title": [str(self.titles[i]) for i in self.data.item[rows].tolist()]}


def doubled(data: Any) -> Any:
    """``data`` whose train rows appear twice: row ``r + n`` is row ``r`` in its recent form
    (``RetrievalPromptMaker``); the copies are train rows only (no validation, no test)."""
    twice = lambda a: np.concatenate([a, a])   # noqa: E731
    copy_split = np.where(data.split == "train", "train", "copy")
    return dataclasses.replace(data, user=twice(data.user), item=twice(data.item), label=twice(data.label),
                               split=np.concatenate([data.split, copy_split]), subset=twice(data.subset),
                               user_id=twice(data.user_id), item_id=twice(data.item_id),
                               valid_small=np.concatenate([data.valid_small, np.zeros_like(data.valid_small)]))


def run_rella(context: MethodContext) -> MethodOutput:
    ctx = context
    opts = ctx.options
    if opts.tuning == "zero-shot":
        kind = getattr(ctx.registry.get("backbone", ctx.backbone), "kind", None)
        if kind is not None and kind != "causal":  # before any weights load
            raise UserError(f"rella with tuning=zero-shot reads the answer from a language-model head, and backbone "
                            f"{ctx.backbone} is an {kind} without one: pick a causal backbone (--backbone smollm2, "
                            f"vicuna7b, qwen2-1.5b), or tuning=lora")
    run = LLMRun(ctx, "rella", maker_factory=RetrievalPromptMaker)
    if run.backbone.kind != "causal" and opts.tuning == "zero-shot":
        raise UserError(f"rella with tuning=zero-shot needs a causal backbone; {ctx.backbone} is {run.backbone.kind}")

    def embed_items(path: Path, o) -> dict[str, Any]:
        vectors = item_vectors(run.backbone, run.maker.titles, ctx.dataset.item_noun, o.pca_dim)
        np.save(path / ITEMS_FILE, vectors)
        return {"items": int(len(vectors) - 1), "dims": int(vectors.shape[1])}

    items = run.stage("rella-items", (RETRIEVAL,), {}, embed_items)  # the untuned backbone: before any LoRA
    frame = ctx.dataset.interactions
    prompt_opts = run.options_for(PROMPT)
    run.maker.set_retrieval(vectors=np.load(items.path / ITEMS_FILE), timestamps=frame["timestamp"].to_numpy(),
                            ratings=frame["rating"].to_numpy() if "rating" in frame else None,
                            k=prompt_opts.retrieved_items or prompt_opts.history_titles, prompt=prompt_opts.prompt)
    ctx.progress(f"rella prompts: {run.maker.describe()}")
    stages = [items]
    if opts.tuning == "zero-shot":
        model: dict[str, Any] = {"untuned": run.backbone.name, "items": items.key}
    else:
        def tune(path: Path, o) -> dict[str, Any]:
            seed_everything(ctx.seed)
            add_lora(run.scorer, r=o.lora_r, alpha=o.lora_alpha, dropout=o.lora_dropout)
            result = train_prompts(run.scorer, run.maker, doubled(ctx.data), with_ids=False, modules={}, embed=None,
                                   opts=o, lr=o.lr, max_steps=o.max_steps, seed=ctx.seed, progress=ctx.progress)
            save_trainable(run.scorer, path / TUNED_FILE)
            return tune_meta(result)

        tuned = run.stage("rella-tune", STEP1_READS, {"items": items.key}, tune)
        load_trainable(run.scorer, tuned.path / TUNED_FILE)
        stages.append(tuned)
        model = {"rella": tuned.key}
    scores, scored = run.scores(model, with_ids=False, reads=(PROMPT, SCORING))
    return run.output(scores, scored, stages)
