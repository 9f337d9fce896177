"""LLM backbones: a Hugging Face model + tokenizer with what CoLLM's scoring needs.

A backbone plugin registers a ``BackboneSpec`` whose ``load(**options)`` returns a
``Backbone``. ``load_hf_backbone`` loads any Hugging Face model (hub id or local folder);
``backbone_from_model`` finishes one built in code (the random tiny models of the tests).

Conventions fixed here (every scorer relies on them):

- ``kind="causal"`` (a model with an LM head): prompts are left-padded, a BOS is prepended
  where the tokenizer has one, the score is the raw logit of ``yes_token_id`` at the last
  position. ``kind="encoder"`` (BERT-style, no LM head): prompts are ``[CLS] ... [SEP]`` and
  right-padded (absolute position embeddings start at the first column, and the first token
  is read by a learned one-logit head).
- The placeholder of ``<UserID>`` / ``<TargetItemID>`` is the tokenizer's unk token, as in
  the official CoLLM code; tokenizers without one (Qwen2) use their pad, else eos token. Its
  identity does not matter: the embedding at a placeholder position is always overwritten.
- ``yes_token_id`` (causal only): the first non-blank token of ``" Yes"`` as tokenized right
  after ``#Answer:``, i.e. "Yes" as the word the model would write there. For Llama/Vicuna's
  SentencePiece vocabulary this is ``▁Yes``, the token the official code reads (it encodes
  ``"Yes"`` alone, which SentencePiece prefixes with ``▁``); for byte-level BPE (Qwen2) it is
  ``ĠYes`` where the official rule would give the space-less ``Yes``. (Not checked against
  the real Llama tokenizer here: no copy of it is offline.)

Nothing heavy is imported at module level: torch and transformers load inside the functions.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collm_bench.api.components import option
from collm_bench.errors import UserError

KINDS = ("causal", "encoder")
QUANTIZATION = ("none", "8bit", "4bit")
_DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
           "float16": "float16", "fp16": "float16", "half": "float16"}
DTYPE_NAMES = ("auto", *_DTYPES)

# Attention projections LoRA adapts, by ``config.model_type``.
LORA_TARGETS: dict[str, tuple[str, ...]] = {
    "llama": ("q_proj", "v_proj"),
    "mistral": ("q_proj", "v_proj"),
    "qwen2": ("q_proj", "v_proj"),
    "qwen3": ("q_proj", "v_proj"),
    "gemma": ("q_proj", "v_proj"),
    "gemma2": ("q_proj", "v_proj"),
    "phi3": ("qkv_proj",),
    "opt": ("q_proj", "v_proj"),
    "gpt2": ("c_attn",),
    "bert": ("query", "value"),
    "roberta": ("query", "value"),
    "xlm-roberta": ("query", "value"),
    "distilbert": ("q_lin", "v_lin"),
    "mpnet": ("q", "v"),
}
# Tried in order on models of other types: the first pair of names present in the model wins.
_FALLBACK_TARGETS = (("q_proj", "v_proj"), ("query", "value"), ("q_lin", "v_lin"), ("c_attn",))


@dataclass(frozen=True)
class BackboneOptions:
    """How a backbone is loaded (``--backbone-set KEY=VALUE``; ``--backbone-path`` sets ``path``).

    ``device``: ``auto`` (cuda when available, else cpu) or a torch device string.
    ``dtype``: ``auto`` (float32 on CPU; bfloat16 on a GPU that supports it, else float16),
    or ``float32`` / ``bfloat16`` / ``float16`` (also ``fp32`` / ``bf16`` / ``fp16``).
    ``path``: a local folder (or another hub id) used instead of the backbone's default hub id.
    ``quantization``: ``none``, ``8bit`` or ``4bit`` (bitsandbytes; CUDA only).
    ``trust_remote_code``: run model code shipped with the weights (off unless asked).
    """

    device: str = option("auto", help="auto, cpu, cuda, cuda:N or mps")
    dtype: str = option("auto", choices=DTYPE_NAMES, help="weights' dtype (auto: fp32 on CPU, bf16/fp16 on CUDA)")
    path: str | None = option(None, help="a local folder or hub id instead of the default weights")
    quantization: str = option("none", choices=QUANTIZATION, help="bitsandbytes 8bit/4bit (CUDA only)")
    trust_remote_code: bool = option(False, help="run model code shipped with the weights (command line only)")

    def __post_init__(self) -> None:
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", self.device):
            raise ValueError(f"option 'device' got {self.device!r}; allowed: auto, cpu, cuda, cuda:N, mps")


@dataclass
class Backbone:
    """A loaded backbone. ``meaningless`` marks random-weight models: label every result."""

    name: str
    model: Any
    tokenizer: Any
    kind: str
    hidden_size: int
    lora_targets: tuple[str, ...]
    placeholder_token: str
    placeholder_token_id: int
    yes_token_id: int | None
    device: str
    dtype: str
    meaningless: bool = False
    source: str = ""
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def padding_side(self) -> str:
        return "left" if self.kind == "causal" else "right"

    @property
    def pad_token_id(self) -> int:
        return int(self.tokenizer.pad_token_id)

    @property
    def max_length(self) -> int | None:
        """The longest input the model accepts (absolute position tables), or None."""
        config = self.model.config
        if self.kind == "encoder":
            return getattr(config, "max_position_embeddings", None)
        return None

    def summary(self) -> dict[str, Any]:
        """What a run record stores about the backbone."""
        return {
            "name": self.name, "source": self.source, "kind": self.kind,
            "model_type": getattr(self.model.config, "model_type", None),
            "hidden_size": self.hidden_size, "parameters": count_parameters(self.model),
            "lora_targets": list(self.lora_targets), "yes_token_id": self.yes_token_id,
            "placeholder_token": self.placeholder_token, "device": self.device, "dtype": self.dtype,
            "meaningless": self.meaningless,
        }


def count_parameters(model: Any) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def resolve_device(device: str = "auto") -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {device!r} asked for, but torch sees no CUDA device")
    return device




def resolve_dtype(dtype: str, device: str) -> str:
    """The dtype name for ``device``: ``auto`` -> float32 on CPU, bf16 (else fp16) on CUDA."""
    import torch

    if dtype == "auto":
        if not device.startswith("cuda"):
            return "float32"
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    try:
        return _DTYPES[dtype.lower()]
    except KeyError:
        raise UserError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16") from None


def lora_targets_for(model: Any) -> tuple[str, ...]:
    """LoRA target module names for ``model``: the table by model type, else found by name."""
    model_type = getattr(model.config, "model_type", "")
    if model_type in LORA_TARGETS:
        return LORA_TARGETS[model_type]
    leaves = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    for names in _FALLBACK_TARGETS:
        if all(n in leaves for n in names):
            return names
    return ()


def detect_kind(config: Any) -> str:
    """``causal`` for models with an LM head (by their architectures), else ``encoder``."""
    archs = getattr(config, "architectures", None) or []
    if any(a.endswith(("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")) for a in archs):
        return "causal"
    if getattr(config, "is_decoder", False):
        return "causal"
    return "encoder"


ANSWER_PREFIX = "#Answer:"


def answer_token_id(tokenizer: Any, word: str) -> int:
    """The first non-blank token of ``" " + word`` as tokenized after ``#Answer:`` (see the
    module docstring); tokenizing ``" Yes"`` alone could split SentencePiece's ``▁▁Yes``
    otherwise. ``Yes`` is what every scorer reads; ``No`` serves readouts that compare both."""
    prefix = tokenizer.encode(ANSWER_PREFIX, add_special_tokens=False)
    full = tokenizer.encode(f"{ANSWER_PREFIX} {word}", add_special_tokens=False)
    ids = full[len(prefix):] if full[:len(prefix)] == prefix else tokenizer.encode(f" {word}", add_special_tokens=False)
    for tid in ids:
        if tokenizer.decode([tid]).strip():
            return int(tid)
    raise UserError(f"the tokenizer cannot encode {word!r}")


def yes_token_id(tokenizer: Any) -> int:
    """``answer_token_id(tokenizer, "Yes")``: the token whose logit is the score."""
    return answer_token_id(tokenizer, "Yes")


def prepare_tokenizer(tokenizer: Any, kind: str) -> Any:
    """Padding side by kind; a pad token (unk, else eos) where the tokenizer has none."""
    if tokenizer.pad_token is None:
        fallback = tokenizer.unk_token or tokenizer.eos_token
        if fallback is None:
            raise UserError("the tokenizer has no pad, unk or eos token to pad with")
        tokenizer.pad_token = fallback
    tokenizer.padding_side = "left" if kind == "causal" else "right"
    return tokenizer


def placeholder_token(tokenizer: Any) -> str:
    """The token standing for ``<UserID>`` / ``<TargetItemID>``: unk, else pad, else eos."""
    for token in (tokenizer.unk_token, tokenizer.pad_token, tokenizer.eos_token):
        if token is not None:
            return str(token)
    raise UserError("the tokenizer has no unk, pad or eos token to use as an ID placeholder")


def backbone_from_model(model: Any, tokenizer: Any, *, name: str, kind: str | None = None,
                        device: str = "cpu", dtype: str = "float32", meaningless: bool = False,
                        source: str = "", description: str = "") -> Backbone:
    """Finish a ``Backbone`` from a model already on ``device`` in ``dtype`` and its tokenizer."""
    kind = kind or detect_kind(model.config)
    if kind not in KINDS:
        raise UserError(f"backbone {name}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if kind == "causal" and model.get_output_embeddings() is None:
        raise UserError(f"backbone {name}: a causal backbone needs a model with an LM head")
    prepare_tokenizer(tokenizer, kind)
    placeholder = placeholder_token(tokenizer)
    placeholder_id = tokenizer.convert_tokens_to_ids(placeholder)
    if placeholder_id is None:
        raise UserError(f"backbone {name}: placeholder token {placeholder!r} is not in the vocabulary")
    config = model.config
    hidden = getattr(config, "hidden_size", None) or getattr(config, "n_embd", None)
    if hidden is None:
        hidden = model.get_input_embeddings().embedding_dim
    model.eval()
    return Backbone(
        name=name, model=model, tokenizer=tokenizer, kind=kind, hidden_size=int(hidden),
        lora_targets=lora_targets_for(model), placeholder_token=placeholder,
        placeholder_token_id=int(placeholder_id),
        yes_token_id=yes_token_id(tokenizer) if kind == "causal" else None,
        device=device, dtype=dtype, meaningless=meaningless, source=source, description=description,
    )


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0") or \
        os.environ.get("TRANSFORMERS_OFFLINE", "") not in ("", "0")


def _unreachable(name: str, source: str, exc: BaseException) -> UserError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    how = ("the Hugging Face Hub is switched off (HF_HUB_OFFLINE=1)" if _offline()
           else "it is not in the local cache and the Hugging Face Hub could not be reached")
    return UserError(
        f"backbone {name}: cannot load {source!r}: {how} ({reason[:200]}). Download the weights "
        f"on a machine with access (e.g. `huggingface-cli download {source} --local-dir DIR`), "
        f"then pass `--backbone-path DIR`."
    )


def _quantization_config(quantization: str, device: str, compute_dtype: Any) -> Any:
    if quantization not in QUANTIZATION:
        raise UserError(f"quantization must be one of {', '.join(QUANTIZATION)}, not {quantization!r}")
    if quantization == "none":
        return None
    if not device.startswith("cuda"):
        raise UserError(f"quantization={quantization} needs a CUDA device (bitsandbytes); this run is on {device}")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise UserError(f"quantization={quantization} needs bitsandbytes: pip install bitsandbytes") from None
    from transformers import BitsAndBytesConfig

    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=compute_dtype,
                              bnb_4bit_quant_type="nf4")


def load_hf_backbone(source: str, *, name: str, kind: str | None = None,
                     options: BackboneOptions | None = None, meaningless: bool = False,
                     description: str = "") -> Backbone:
    """Load a Hugging Face model + tokenizer from a hub id or local folder.

    ``options.path`` (``--backbone-path``) replaces ``source``. With ``HF_HUB_OFFLINE=1``
    only local files are used; otherwise the hub is tried first and the local cache second.
    ``kind`` defaults to what the config's architectures say (``detect_kind``).
    """
    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    options = options or BackboneOptions()
    source = str(options.path or source)
    local = Path(source).expanduser()
    if local.suffix.lower() == ".gguf":  # a GGUF file: its converted folder (once, cached)
        from collm_bench.llm.gguf import gguf_folder

        local = gguf_folder(local)
        source = str(local)
    if not local.exists() and (source.startswith(("/", ".", "~")) or source.count("/") > 1):
        raise UserError(f"backbone {name}: no such model folder {source}")
    if local.exists():
        if not (local / "config.json").exists():
            raise UserError(f"backbone {name}: {local} has no config.json (expected a Hugging Face model folder)")
        source = str(local)
    device = resolve_device(options.device)
    dtype = resolve_dtype(options.dtype, device)
    torch_dtype = getattr(torch, dtype)
    quant = _quantization_config(options.quantization, device, torch_dtype)
    trust = bool(options.trust_remote_code)

    def attempt(local_only: bool):
        config = AutoConfig.from_pretrained(source, local_files_only=local_only, trust_remote_code=trust)
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only, trust_remote_code=trust)
        return config, tokenizer

    local_only = local.exists() or _offline()
    try:
        config, tokenizer = attempt(local_only)
    except (OSError, ValueError) as exc:
        if local_only:
            raise _unreachable(name, source, exc) from None
        try:
            config, tokenizer = attempt(True)
            local_only = True
        except (OSError, ValueError):
            raise _unreachable(name, source, exc) from None
    kind = kind or detect_kind(config)
    auto = AutoModelForCausalLM if kind == "causal" else AutoModel
    kwargs: dict[str, Any] = {"dtype": torch_dtype, "local_files_only": local_only, "trust_remote_code": trust}
    if quant is not None:
        kwargs["quantization_config"] = quant
        kwargs["device_map"] = {"": device}
    try:
        model = auto.from_pretrained(source, config=config, **kwargs)
    except OSError as exc:
        raise _unreachable(name, source, exc) from None
    if quant is None:
        model.to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    return backbone_from_model(model, tokenizer, name=name, kind=kind, device=device, dtype=dtype,
                               meaningless=meaningless, source=source, description=description)
