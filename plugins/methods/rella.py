"""``rella``: ReLLa (Lin et al., WWW 2024, "ReLLa: Retrieval-enhanced Large Language Models for
Lifelong Sequential Behavior Comprehension in Recommendation").

What ReLLa does: instead of the user's K most recent history items, the prompt holds the K
history items most semantically relevant to the target (semantic user behaviour retrieval):
every item is embedded by the LLM itself (its last hidden states averaged over a short text
about the item), reduced by PCA to 512 dimensions, and the user's history items are ranked by
cosine similarity to the target; the K best are listed in chronological order with their
ratings. Zero-shot (``tuning=zero-shot``: the untuned causal LLM, read as softmax over Yes/No,
which ranks as ``logit(Yes) - logit(No)``) and tuned (LoRA on a mix: every train sample both
with its K most recent items and with its K retrieved ones).

As the authors' code (``get_semantic_embed.py``, ``topK_relevant_ml1m.py``,
``load_prompt_ml1m.py``, ``finetune.py``): item text "Here is a movie. Its title is ...", the
final hidden states (after the last norm) averaged, PCA, cosine, the top K of the user's whole
history put back in chronological order; the prompt lists them numbered from 0 with
"(N stars)"; the mix is 1:1; the answer is read as P(Yes) of a Yes/No softmax. Departures
(docs/protocol.md, "ReLLa"): no genre in the item text and no user profile sentence (the prepared
data has neither); where a dataset has no ``rating`` column (``ml-1m-collm``, the authors' official ML-1M split) each item
says "(liked)" or "(disliked)" from its label and the prompt drops the sentence about stars;
the chat wrapper of Vicuna is replaced by the toolkit's "\\n#Answer:" cue (the backbones read
plain prompts); PCA keeps at most the backbone's hidden size (MiniLM: 384, not 512); tuning
has TALLRec's step budget (``max_steps`` x ``batch_size`` prompts drawn from every train sample
in both forms, so a sample seldom appears in both within the cpu budget), where the authors
train 5 epochs on N samples twice; K defaults to ``history_titles`` (cpu 5, paper 10), so the
row holds as many items as TALLRec's. ``prompt=tallrec`` keeps TALLRec's prompt and changes
only which liked items it lists (the retrieved ones): against TALLRec the one difference is which
items the prompts list (tuned on its own mix, not scored with TALLRec's weights).
"""
from __future__ import annotations

from dataclasses import dataclass

from collm_bench import MethodSpec, hookimpl
from collm_bench.api.components import option
from collm_bench.llmrec import PROMPT, READOUTS, SCORER, LLMOptions, default_eval_sample, resolved

RETRIEVAL = "retrieval"  # option group: the item embeddings' stage
PROMPTS = ("rella", "tallrec")
TUNINGS = ("lora", "zero-shot")


@dataclass(frozen=True)
class ReLLaOptions(LLMOptions):
    """TALLRec's options (the tuning budget is step 1's: ``lr``, ``max_steps``) plus ReLLa's."""

    retrieved_items: int | None = option(None, ge=1, groups=(PROMPT,),
                                         help="K history items retrieved into the prompt (none: history_titles)")
    prompt: str = option("rella", choices=PROMPTS, groups=(PROMPT,),
                         help="rella: ReLLa's prompt (rated items, all labels); tallrec: TALLRec's, "
                              "retrieved liked items in place of the last ones")
    tuning: str = option("lora", choices=TUNINGS,
                         help="lora: tuned on the 1:1 mix of recent and retrieved prompts; zero-shot: untuned "
                              "(a causal backbone)")
    pca_dim: int = option(512, ge=1, groups=(RETRIEVAL,), help="PCA dimensions of the item embeddings")
    readout: str | None = option("yes-no", choices=READOUTS, groups=(SCORER,),
                                 help="causal backbones: yes-no (ReLLa's Yes/No softmax ranks so) or yes")


def run(context):
    from collm_bench_plugins.methods.rella_run import run_rella

    return run_rella(context)


@hookimpl
def register_methods(register):
    register(MethodSpec(
        name="rella", run=run, options=ReLLaOptions, backbone="minilm", eval_sample=default_eval_sample,
        resolve_options=resolved,
        description="ReLLa (WWW 2024): the K history items most similar to the target (the LLM's own item "
                    "embeddings), zero-shot or LoRA on a mix of recent and retrieved prompts",
    ))
