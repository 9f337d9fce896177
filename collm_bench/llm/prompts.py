"""CoLLM's prompts: text, ID placeholders, tokenization, padding and length bucketing.

The templates are those of the official code (``docs/protocol.md``, "Prompts"): the text-only one
of step 1 / TALLRec and the one with ``<UserID>`` / ``<TargetItemID>`` of step 2. The item noun
comes from the dataset (``PreparedDataset.item_noun``: movie, book, item), the history is the
last N positive titles (N=10 as the paper; fewer in the ``cpu`` preset), oldest first, each in
double quotes, joined by ``", "``; an empty history is written ``unkow`` (unquoted), as the
official code does. ``\\n`` is a literal backslash + n.

Each placeholder is rendered as the backbone's placeholder token (its unk token: ``<unk>`` for
Llama, ``[UNK]`` for BERT) and becomes exactly one token; ``tokenize_prompts`` reports its token
position, where the scorer writes an embedding into ``inputs_embeds`` (CoLLM: the CIE outputs of
user, then item). A prompt may have any number of slots (``Prompts.from_parts``).

Special tokens: causal models get their BOS (``<s>``) prepended where the tokenizer has one and
nothing else (as the official code); BERT-style encoders get ``[CLS] ... [SEP]`` as they were
pretrained. Causal prompts are left-padded (the answer is read at the last column), encoder
prompts right-padded (absolute positions start at column 0, where ``[CLS]`` is read).

Only numpy is imported here; tokenizers come in as objects.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from collm_bench.llm._checks import check_context
from collm_bench.errors import UserError

TEXT_TEMPLATE = (
    '#Question: A user has given high ratings to the following {items}: {history}. '
    'Leverage the information to predict whether the user would enjoy the {item} titled {target}? '
    'Answer with "Yes" or "No". \\n#Answer:'
)
ID_TEMPLATE = (
    '#Question: A user has given high ratings to the following {items}: {history}. '
    "Additionally, we have information about the user's preferences encoded in the feature {user_id}. "
    'Using all available information, make a prediction about whether the user would enjoy the {item} '
    'titled {target} with the feature {item_id}? Answer with "Yes" or "No". \\n#Answer:'
)
EMPTY_HISTORY = "unkow"
HISTORY_LEN = 10
NO_POSITION = -1


def plural(noun: str) -> str:
    return noun + "s"


def quote(title: str) -> str:
    return f'"{title}"'


def title_list(titles: Sequence[str]) -> str:
    """``"A", "B"`` (oldest first), or ``unkow`` for no titles."""
    return ", ".join(quote(t) for t in titles) if len(titles) else EMPTY_HISTORY


def titles_by_index(items: Any, item_ids: np.ndarray) -> np.ndarray:
    """Titles indexed by dense item index: ``items`` is the prepared ``items.csv`` frame,
    ``item_ids`` maps dense index -> original id (``Interactions.item_ids``; index 0 -> "")."""
    lookup = dict(zip(items["item"].tolist(), items["title"].tolist()))
    out = np.empty(len(item_ids), dtype=object)
    out[0] = ""
    for index, item in enumerate(np.asarray(item_ids)[1:].tolist(), start=1):
        out[index] = str(lookup.get(item, ""))
    return out


@dataclass
class Prompts:
    """Prompt strings; ``spans[r, j]`` = character offset of ID slot ``j`` of prompt ``r``, or
    ``-1`` where prompt ``r`` has no slot ``j`` (a text-only prompt has none; a prompt may have
    any number of slots, e.g. one per history item, and shorter rows leave the last ones empty).
    Which embedding fills which slot is the method's choice: CoLLM's are user, then item."""

    texts: list[str]
    spans: np.ndarray
    placeholder: str | None = None

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def with_ids(self) -> bool:
        return self.placeholder is not None

    @classmethod
    def from_parts(cls, rows: Sequence[Sequence[str]], placeholder: str, slots: int | None = None) -> "Prompts":
        """Prompts from text parts with a placeholder between each two: ``["a ", " b"]`` is
        ``"a <ph> b"`` with one slot. ``slots`` (default: the most any row has) is the width of
        ``spans``; rows with fewer slots have ``-1`` after their last one."""
        width = max((len(parts) - 1 for parts in rows), default=0) if slots is None else slots
        spans = np.full((len(rows), width), NO_POSITION, dtype=np.int64)
        texts = []
        for r, parts in enumerate(rows):
            if len(parts) - 1 > width:
                raise ValueError(f"prompt {r} has {len(parts) - 1} slots, more than {width}")
            text = parts[0]
            for j, part in enumerate(parts[1:]):
                spans[r, j] = len(text)
                text += placeholder + part
            texts.append(text)
        return cls(texts, spans, placeholder)


def build_prompts(titles: Sequence[str] | np.ndarray, history: np.ndarray, target: np.ndarray, *,
                  item_noun: str = "item", with_ids: bool = False, placeholder: str = "<unk>",
                  history_len: int = HISTORY_LEN) -> Prompts:
    """One prompt per row.

    ``titles[i]`` is the title of dense item index ``i``; ``history`` is ``[N, L]`` dense item
    indices left-padded with 0 (most recent last, ``Interactions.history_matrix``), of which
    the last ``history_len`` are used; ``target`` is ``[N]`` dense item indices.
    ``with_ids`` selects the step-2 template, with ``placeholder`` standing for each ID
    (two slots: user, then item).
    """
    history, target = _checked(history, target, history_len)
    quoted = np.array([quote(str(t)) for t in titles], dtype=object)
    recent = recent_history(history, history_len)
    fill = {"items": plural(item_noun), "item": item_noun}
    if not with_ids:
        texts = [TEXT_TEMPLATE.format(history=_joined(quoted, row), target=quoted[tgt], **fill)
                 for row, tgt in zip(recent, target.tolist())]
        return Prompts(texts, np.full((len(target), 2), NO_POSITION, dtype=np.int64))
    head, rest = ID_TEMPLATE.split("{user_id}")
    middle, tail = rest.split("{item_id}")
    rows = [(head.format(history=_joined(quoted, row), target=quoted[tgt], **fill),
             middle.format(target=quoted[tgt], **fill), tail.format(**fill))
            for row, tgt in zip(recent, target.tolist())]
    return Prompts.from_parts(rows, placeholder, slots=2)


def _checked(history: np.ndarray, target: np.ndarray, history_len: int) -> tuple[np.ndarray, np.ndarray]:
    history, target = np.asarray(history), np.asarray(target)
    if history.ndim != 2 or len(history) != len(target):
        raise ValueError(f"history must be [N, L] and target [N]; got {history.shape} and {target.shape}")
    if history_len < 0:
        raise ValueError("history_len must be >= 0")
    return history, target


def recent_history(history: np.ndarray, history_len: int) -> np.ndarray:
    """The last ``history_len`` columns of a left-padded ``[N, L]`` history (0 = no item)."""
    return history[:, history.shape[1] - history_len:] if history_len else history[:, :0]


def _joined(quoted: np.ndarray, row: np.ndarray) -> str:
    items = row[row > 0]
    return ", ".join(quoted[items]) if len(items) else EMPTY_HISTORY


def row_prompts(titles: Sequence[str] | np.ndarray, data: Any, rows: np.ndarray, *, item_noun: str = "item",
                with_ids: bool = False, placeholder: str = "<unk>", history_len: int = HISTORY_LEN) -> Prompts:
    """``build_prompts`` for ``rows`` of a ``collm_bench.data.interactions.Interactions``
    (``titles`` from ``titles_by_index``): each row's last ``history_len`` positives."""
    rows = np.asarray(rows, dtype=np.int64)
    return build_prompts(titles, data.history_matrix(rows, max(history_len, 1)), data.item[rows],
                         item_noun=item_noun, with_ids=with_ids, placeholder=placeholder, history_len=history_len)


@dataclass
class TokenizedPrompts:
    """Unpadded token ids per prompt, special tokens included; ``positions[r, j]`` = token
    position of ID slot ``j`` (``-1`` where the prompt has none: every slot of a text-only prompt)."""

    ids: list[np.ndarray]
    positions: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.ids), dtype=np.int64, count=len(self.ids))


def special_tokens(tokenizer: Any, kind: str) -> tuple[list[int], list[int]]:
    """Token ids put before and after a prompt: ``[BOS]`` / nothing for causal models,
    ``[CLS]`` / ``[SEP]`` for encoders."""
    if kind == "causal":
        bos = tokenizer.bos_token_id
        return ([int(bos)] if bos is not None else []), []
    first = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    last = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    return ([int(first)] if first is not None else []), ([int(last)] if last is not None else [])


def tokenize_prompts(prompts: Prompts, tokenizer: Any, *, kind: str = "causal",
                     placeholder_token_id: int | None = None, max_length: int | None = None,
                     chunk: int = 2048) -> TokenizedPrompts:
    """Tokenize ``prompts`` as the backbone reads them (see the module docstring).

    Placeholders are located through the tokenizer's character offsets, so that a title
    that happens to contain unknown characters never moves them; each must be one token.
    ``max_length`` (an encoder's position table) turns an over-long prompt into a UserError.
    """
    before, after = special_tokens(tokenizer, kind)
    ph_id = placeholder_token_id
    if prompts.with_ids and ph_id is None:
        ph_id = tokenizer.convert_tokens_to_ids(prompts.placeholder)
    ids: list[np.ndarray] = []
    positions = np.full(prompts.spans.shape, NO_POSITION, dtype=np.int64)
    for lo in range(0, len(prompts), chunk):
        texts = prompts.texts[lo:lo + chunk]
        enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=prompts.with_ids,
                        return_attention_mask=False, return_token_type_ids=False)
        for k, row_ids in enumerate(enc["input_ids"]):
            r = lo + k
            if prompts.with_ids:
                starts = [s for s, _ in enc["offset_mapping"][k]]
                for j, span in enumerate(prompts.spans[r].tolist()):
                    if span < 0:  # this prompt has no slot j
                        continue
                    try:
                        pos = starts.index(span)
                    except ValueError:
                        raise UserError(
                            f"the tokenizer does not keep the placeholder {prompts.placeholder!r} as one "
                            f"token (prompt {r}); use a backbone whose tokenizer has it as a special token"
                        ) from None
                    if row_ids[pos] != ph_id:
                        raise UserError(f"the tokenizer does not keep the placeholder {prompts.placeholder!r} "
                                        f"as one token (id {row_ids[pos]} where {ph_id} was expected, prompt {r})")
                    positions[r, j] = pos + len(before)
            ids.append(np.asarray(before + list(row_ids) + after, dtype=np.int64))
    out = TokenizedPrompts(ids, positions)
    if max_length is not None and len(out) and int(out.lengths.max()) > max_length:
        longest = int(out.lengths.max())
        raise UserError(f"a prompt is {longest} tokens long, over the backbone's limit of {max_length}: "
                        f"use fewer history titles")
    return out


def tokenize_for(backbone: Any, prompts: Prompts) -> TokenizedPrompts:
    """``tokenize_prompts`` with a ``collm_bench.llm.backbone.Backbone``'s settings, after
    refusing a prompt longer than its context (``collm_bench.llm._checks``)."""
    check_context(backbone, prompts)
    return tokenize_prompts(prompts, backbone.tokenizer, kind=backbone.kind,
                            placeholder_token_id=backbone.placeholder_token_id,
                            max_length=backbone.max_length)


def collate(tokenized: TokenizedPrompts, rows: np.ndarray, *, pad_id: int,
            padding_side: str = "left") -> dict[str, np.ndarray]:
    """Pad ``rows`` into one batch: ``rows``, ``input_ids`` / ``attention_mask`` ``[B, T]``
    and ``placeholder_positions`` ``[B, k]`` in padded coordinates (``-1`` kept)."""
    rows = np.asarray(rows, dtype=np.int64)
    seqs = [tokenized.ids[r] for r in rows.tolist()]
    width = max((len(s) for s in seqs), default=0)
    input_ids = np.full((len(seqs), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(seqs), width), dtype=np.int64)
    positions = tokenized.positions[rows].copy()
    for b, seq in enumerate(seqs):
        if padding_side == "left":
            shift = width - len(seq)
            input_ids[b, shift:] = seq
            mask[b, shift:] = 1
            positions[b][positions[b] >= 0] += shift
        else:
            input_ids[b, :len(seq)] = seq
            mask[b, :len(seq)] = 1
    return {"rows": rows, "input_ids": input_ids, "attention_mask": mask, "placeholder_positions": positions}


def bucket_batches(lengths: np.ndarray, batch_size: int, *, seed: int | None = None,
                   window: int = 50) -> list[np.ndarray]:
    """Batches of indices into ``lengths`` whose prompts have similar token lengths.

    ``seed=None`` (scoring): longest first, consecutive batches, deterministic.
    With a seed (training): rows are shuffled, sorted by length within windows of
    ``window`` batches, cut into batches, and the batches shuffled; the same seed gives the
    same batches. Padding drops while every batch stays a random draw of similar rows.
    """
    lengths = np.asarray(lengths)
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    n = len(lengths)
    if seed is None:
        order = np.argsort(-lengths, kind="stable")
        return [order[i:i + batch_size] for i in range(0, n, batch_size)]
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    span = batch_size * max(1, window)
    batches: list[np.ndarray] = []
    for lo in range(0, n, span):
        chunk = order[lo:lo + span]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def padding_fraction(lengths: np.ndarray, batches: list[np.ndarray]) -> float:
    """Share of padded positions over all batch cells (0 = no padding)."""
    lengths = np.asarray(lengths)
    cells = sum(len(b) * int(lengths[b].max()) for b in batches if len(b))
    return 1.0 - float(lengths.sum()) / cells if cells else 0.0


# --- shared prefixes (causal scoring) ---------------------------------------------------------

@dataclass
class PrefixGroup:
    """Rows (indices into a ``TokenizedPrompts``) whose first ``prefix_len`` tokens, and the ID
    embeddings among them, are the same: a causal model reads that prefix once for all."""

    rows: np.ndarray
    prefix_len: int


def prefix_groups(tokenized: TokenizedPrompts, keys: np.ndarray, *, placeholder_keys: np.ndarray | None = None,
                  max_rows: int = 64, min_prefix: int = 8) -> list[PrefixGroup]:
    """Rows grouped for shared-prefix scoring, in the order of ``keys`` (stable).

    Consecutive rows of one key (a user: their prompts share the instruction and, until their
    next positive, the whole history) join a group while sharing saves tokens: a row joins when
    ``prefix + suffixes`` of the larger group costs fewer tokens than the group and the row apart.
    A placeholder position counts as the same token only where ``placeholder_keys[r, j]``
    (an identity of the embedding written there, e.g. its bytes' digest) is equal: DIN's user
    embedding depends on the target item, MF's does not. Every row keeps at least its last token
    in the suffix, where the answer is read.
    """
    keys = np.asarray(keys)
    order = np.argsort(keys, kind="stable")
    comparable = _comparable(tokenized, placeholder_keys)
    groups: list[PrefixGroup] = []
    members: list[int] = []
    prefix = 0
    for r in order.tolist():
        seq = comparable[r]
        if members and keys[r] == keys[members[0]] and len(members) < max_rows:
            shared = min(_common(comparable[members[0]], seq, prefix), len(seq) - 1)
            lengths = sum(len(comparable[m]) for m in members)
            together = shared + lengths + len(seq) - shared * (len(members) + 1)
            apart = prefix + lengths - prefix * len(members) + len(seq)
            if shared >= min_prefix and together < apart:
                members.append(r)
                prefix = shared
                continue
        if members:
            groups.append(PrefixGroup(np.asarray(members, dtype=np.int64), prefix if len(members) > 1 else 0))
        members, prefix = [r], len(seq) - 1
    if members:
        groups.append(PrefixGroup(np.asarray(members, dtype=np.int64), prefix if len(members) > 1 else 0))
    return groups


def _comparable(tokenized: TokenizedPrompts, placeholder_keys: np.ndarray | None) -> list[np.ndarray]:
    """Token ids with each placeholder replaced by a negative id naming its embedding."""
    if placeholder_keys is None or not (tokenized.positions >= 0).any():
        return tokenized.ids
    names: dict[Any, int] = {}
    out = []
    for r, ids in enumerate(tokenized.ids):
        seq = ids.copy()
        for j, pos in enumerate(tokenized.positions[r].tolist()):
            if pos >= 0:
                seq[pos] = -1 - names.setdefault(placeholder_keys[r, j], len(names))
        out.append(seq)
    return out


def _common(a: np.ndarray, b: np.ndarray, limit: int) -> int:
    """Length of the common prefix of ``a`` and ``b``, at most ``limit``."""
    n = min(len(a), len(b), limit)
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if len(differ) else n


def pack_groups(groups: list[PrefixGroup], batch_size: int) -> list[list[PrefixGroup]]:
    """Groups packed into batches of at most ``batch_size`` rows, longest prefixes first (similar
    prefix and suffix lengths share a batch, so little padding)."""
    ordered = sorted(groups, key=lambda g: -g.prefix_len)
    batches: list[list[PrefixGroup]] = []
    size = 0
    for group in ordered:
        if not batches or size + len(group.rows) > batch_size:
            batches.append([])
            size = 0
        batches[-1].append(group)
        size += len(group.rows)
    return batches


def collate_shared(tokenized: TokenizedPrompts, groups: list[PrefixGroup], *, pad_id: int) -> dict[str, np.ndarray]:
    """One shared-prefix batch, all left-padded: ``prefix_ids`` / ``prefix_mask`` ``[G, P]``
    (one row per group), ``input_ids`` / ``attention_mask`` ``[B, S]`` (each row's suffix),
    ``group`` ``[B]`` (its group), ``rows`` ``[B]``, and the placeholder positions in each part's
    padded coordinates (``prefix_positions`` ``[B, k]`` for the group's first row's view,
    ``placeholder_positions`` ``[B, k]``; ``-1`` where a placeholder is in the other part)."""
    rows = np.concatenate([g.rows for g in groups])
    group = np.repeat(np.arange(len(groups)), [len(g.rows) for g in groups])
    lengths = np.array([g.prefix_len for g in groups], dtype=np.int64)
    width = int(lengths.max(initial=0))
    prefix_ids = np.full((len(groups), width), pad_id, dtype=np.int64)
    prefix_mask = np.zeros((len(groups), width), dtype=np.int64)
    for g, (grp, length) in enumerate(zip(groups, lengths.tolist())):
        if length:
            prefix_ids[g, width - length:] = tokenized.ids[grp.rows[0]][:length]
            prefix_mask[g, width - length:] = 1
    suffixes = [tokenized.ids[r][lengths[g]:] for r, g in zip(rows.tolist(), group.tolist())]
    suffix_width = max(len(s) for s in suffixes)
    input_ids = np.full((len(rows), suffix_width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), suffix_width), dtype=np.int64)
    slots = tokenized.positions.shape[1] if tokenized.positions.ndim == 2 else 0
    prefix_positions = np.full((len(rows), slots), NO_POSITION, dtype=np.int64)
    positions = np.full((len(rows), slots), NO_POSITION, dtype=np.int64)
    for b, (r, g, seq) in enumerate(zip(rows.tolist(), group.tolist(), suffixes)):
        input_ids[b, suffix_width - len(seq):] = seq
        mask[b, suffix_width - len(seq):] = 1
        for j, pos in enumerate(tokenized.positions[r].tolist()):
            if 0 <= pos < lengths[g]:
                prefix_positions[b, j] = pos + width - lengths[g]
            elif pos >= lengths[g]:
                positions[b, j] = pos - lengths[g] + suffix_width - len(seq)
    return {"rows": rows, "group": group, "prefix_ids": prefix_ids, "prefix_mask": prefix_mask,
            "prefix_positions": prefix_positions, "input_ids": input_ids, "attention_mask": mask,
            "placeholder_positions": positions}
