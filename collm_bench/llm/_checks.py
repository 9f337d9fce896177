"""Guards on prompts (``collm_bench.cache.identity``: they only refuse, so calling one from the
code that tokenizes changes no result's identity).

One rule for every backbone kind: a prompt longer than the backbone's context (its config's
``max_position_embeddings``: an encoder's position table, a causal model's context window) is
refused before any tensor is allocated, naming the prompt, its length and the limit. Nothing is
truncated: a truncated prompt would drop the history or the question, silently.
"""
from __future__ import annotations

from typing import Any

from collm_bench.errors import UserError

# Plumbing: moves results around, computes none of their numbers (collm_bench.cache.identity).
__identity__ = "plumbing"
__guards__ = ("check_context", "check_cuda_index", "check_prompt_fields")

SPECIALS = 4   # BOS / CLS / SEP / EOS a tokenizer may add around a prompt


def check_context(backbone: Any, prompts: Any) -> None:
    """Refuse ``prompts`` (``collm_bench.llm.prompts.Prompts``) when one is longer than
    ``backbone``'s context. A byte-level tokenizer gives at most one token per UTF-8 byte, so
    only prompts with more bytes than the context are tokenized to be measured."""
    limit = getattr(getattr(getattr(backbone, "model", None), "config", None), "max_position_embeddings", None)
    if not isinstance(limit, int) or limit <= 0:
        return
    texts = list(getattr(prompts, "texts", []))
    suspects = [r for r, text in enumerate(texts) if len(text.encode("utf-8")) + SPECIALS > limit]
    if not suspects:
        return
    encoded = backbone.tokenizer([texts[r] for r in suspects], add_special_tokens=True,
                                 return_attention_mask=False, return_token_type_ids=False)["input_ids"]
    for r, ids in zip(suspects, encoded):
        if len(ids) > limit:
            start = texts[r][:60].replace("\n", " ")
            raise UserError(f"prompt {r} of {len(texts)} ({start!r}...) is {len(ids):,} tokens long, over "
                            f"backbone {getattr(backbone, 'name', '?')}'s context of {limit:,}: use fewer history "
                            "titles (--set history_titles=N) or shorter item titles; prompts are never truncated")


def check_cuda_index(device: str, cuda: Any) -> None:
    """Refuse ``device=cuda:N`` when ``cuda`` (``torch.cuda``, passed so that this module imports
    no numerical library) sees N or fewer devices: ``model.to`` would fail after the run started."""
    if not (isinstance(device, str) and device.startswith("cuda:") and device[5:].isdigit()):
        return
    count = int(cuda.device_count()) if cuda.is_available() else 0
    if int(device[5:]) >= count:
        raise UserError(f"backbone option device={device}: torch sees {count} CUDA device(s) here, numbered from 0; "
                        "use device=cuda:0, or CUDA_VISIBLE_DEVICES to choose which GPU that is")


def check_prompt_fields(maker: Any, fields: Any, built_in: Any) -> None:
    """Refuse a ``TextPromptMaker.fields`` result that names one of the ``built_in`` fields the
    maker fills itself (``collm_bench.llmrec.text_prompts.BUILT_IN_FIELDS``): it would be given twice."""
    taken = sorted(set(fields) & set(built_in))
    if taken:
        raise ValueError(f"{type(maker).__name__}.fields() gives {taken}, which the maker fills itself: "
                         "override history_text for the history, or name your field otherwise")
