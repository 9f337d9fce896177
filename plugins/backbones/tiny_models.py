"""Random-weight tiny causal models (Llama-, Qwen2-shaped) with a tokenizer built in code.

For tests and smoke runs only: the weights are random (seeded), so every number they give
is meaningless, and the backbone says so (``meaningless=True``). Nothing is downloaded:
the tokenizer is a byte-level BPE trained, deterministically, on a small fixed corpus made
of the prompt templates and common words of titles (any text encodes; no unk in practice).
"""
from __future__ import annotations

from typing import Any

from collm_bench.llm.backbone import BackboneOptions, backbone_from_model, resolve_device, resolve_dtype

SEED = 20240101
VOCAB_SIZE = 1024

_WORDS = (
    "the a an of and in on to for with from by at is are was were be been it its this that "
    "my your our his her their man woman men women love life story night day time world war "
    "king queen star stars american big little last first new old return back dark light blue "
    "red black white house home city girl boy girls boys family friends father mother brother "
    "sister death dead live living dream dreams heart game games secret lost street road river "
    "island mountain sea ocean summer winter spring fall christmas hotel school party murder "
    "kill killer ghost monster space planet earth moon sun fire water ice blood money gold "
    "book books novel volume edition guide history art science mystery romance adventure "
    "movie movies film item items collection series part vol ii iii iv the) (the ), ( "
    "Story Star Wars Man Love Life Night Day Time World King Dark Blue Red House Home City "
    "Toy Heat Jumanji Casino Fargo Alien Batman Titanic Matrix Godfather Scream Twister "
    "Yes No yes no Question Answer Additionally Using Leverage "
)
_YEARS = " ".join(f"({y})" for y in range(1920, 2021))


def _corpus() -> list[str]:
    from collm_bench.llm.prompts import ID_TEMPLATE, TEXT_TEMPLATE

    texts = []
    for noun in ("movie", "book", "item"):
        fill = dict(items=noun + "s", item=noun, history='"Toy Story (1995)", "Heat (1995)"',
                    target='"Jumanji (1995)"', user_id="<unk>", item_id="<unk>")
        texts += [TEXT_TEMPLATE.format(**fill), ID_TEMPLATE.format(**fill)] * 20
    texts += [_WORDS] * 10 + [_YEARS] * 3 + ["0 1 2 3 4 5 6 7 8 9 10 : ; , . ? ! ' \" # - & / \\n"] * 5
    return texts


def build_tokenizer(style: str) -> Any:
    """A byte-level BPE tokenizer; ``llama`` style has <s>, </s>, <unk> (no pad),
    ``qwen2`` style has only <|endoftext|> (no bos, no unk), like the real ones."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>"] if style == "llama" else ["<|endoftext|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_corpus(), trainer)
    if style == "llama":
        return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>")


def build_model(style: str, tokenizer: Any, *, hidden_size: int = 64, layers: int = 2, seed: int = SEED):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    common = dict(vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                  num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                  max_position_embeddings=2048, eos_token_id=tokenizer.eos_token_id)
    if style == "llama":
        config = LlamaConfig(**common, bos_token_id=tokenizer.bos_token_id, tie_word_embeddings=False)
        cls = LlamaForCausalLM
    else:
        config = Qwen2Config(**common, tie_word_embeddings=True)
        cls = Qwen2ForCausalLM
    config.architectures = [cls.__name__]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls(config)
    return model


def load_tiny(style: str, name: str, options: BackboneOptions | None = None, **overrides):
    import torch

    options = options or BackboneOptions(**overrides)
    if options.path:
        raise ValueError(f"backbone {name} is built in code and takes no path")
    device = resolve_device(options.device)
    dtype = resolve_dtype(options.dtype, device)
    tokenizer = build_tokenizer(style)
    model = build_model(style, tokenizer).to(device=device, dtype=getattr(torch, dtype))
    for p in model.parameters():
        p.requires_grad_(False)
    return backbone_from_model(
        model, tokenizer, name=name, kind="causal", device=device, dtype=dtype, meaningless=True,
        source=f"random {style}-shaped model (seed {SEED})",
        description="random weights: for tests and smoke runs, results are meaningless",
    )
