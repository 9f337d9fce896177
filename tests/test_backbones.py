"""Backbone plugins: registration, offline loading, tokenizer conventions, errors."""
import os

import pytest

from collm_bench.llm.backbone import BackboneOptions, detect_kind, resolve_dtype
from collm_bench.api.components import parse_options
from collm_bench.errors import UserError
from collm_bench.api.registry import load_registry

NAMES = ("vicuna7b", "qwen2-1.5b", "minilm", "tiny-llama", "tiny-qwen2", "hf")


def _load(name, **options):
    return load_registry().get("backbone", name).load(**options)


def test_all_backbones_registered():
    registry = load_registry()
    for name in NAMES:
        spec = registry.get("backbone", name)
        assert spec.options is BackboneOptions
    assert not [f for f in registry.failures if f.plugin in NAMES]


def test_options_from_the_command_line():
    opts = parse_options(BackboneOptions, {"trust_remote_code": "true", "dtype": "bf16", "path": "/x"},
                         owner="backbone")
    assert opts.trust_remote_code is True and opts.dtype == "bf16" and opts.path == "/x"
    assert resolve_dtype("auto", "cpu") == "float32"
    assert resolve_dtype("fp16", "cpu") == "float16"
    with pytest.raises(UserError, match="unknown dtype"):
        resolve_dtype("int3", "cpu")


def test_minilm_loads_offline():
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    b = _load("minilm")
    assert (b.kind, b.hidden_size, b.lora_targets) == ("encoder", 384, ("query", "value"))
    assert b.placeholder_token == "[UNK]" and b.yes_token_id is None
    assert b.tokenizer.padding_side == "right" and b.pad_token_id == 0
    assert not b.meaningless and b.dtype == "float32" and b.device == "cpu"
    assert 22_000_000 < b.summary()["parameters"] < 23_000_000
    assert not any(p.requires_grad for p in b.model.parameters())


@pytest.mark.parametrize("name,bos,placeholder", [("tiny-llama", "<s>", "<unk>"),
                                                   ("tiny-qwen2", None, "<|endoftext|>")])
def test_tiny_backbones(name, bos, placeholder):
    import torch

    b = _load(name)
    assert b.meaningless and b.kind == "causal" and b.lora_targets == ("q_proj", "v_proj")
    assert b.tokenizer.bos_token == bos and b.placeholder_token == placeholder
    assert b.tokenizer.pad_token is not None and b.tokenizer.padding_side == "left"
    assert b.tokenizer.decode([b.yes_token_id]).strip() == "Yes"
    again = _load(name)  # same seed, same weights
    for (k, v), (_, w) in zip(b.model.state_dict().items(), again.model.state_dict().items()):
        assert torch.equal(v, w), k


def test_hf_backbone_from_a_local_folder(tmp_path):
    b = _load("tiny-llama")
    b.model.save_pretrained(tmp_path)
    b.tokenizer.save_pretrained(tmp_path)
    loaded = _load("hf", path=str(tmp_path))
    assert loaded.kind == "causal" and loaded.name == f"hf:{tmp_path}"
    assert loaded.yes_token_id == b.yes_token_id and loaded.placeholder_token_id == b.placeholder_token_id
    assert loaded.source == str(tmp_path)
    assert detect_kind(loaded.model.config) == "causal"


def test_unreachable_hub_id_says_how_to_use_local_weights():
    with pytest.raises(UserError, match="--backbone-path"):
        _load("vicuna7b")
    with pytest.raises(UserError, match="no such model folder"):
        _load("hf", path="/no/such/folder")
    with pytest.raises(UserError, match="needs a model"):
        _load("hf")


def test_quantization_needs_cuda():
    with pytest.raises(UserError, match="CUDA"):
        _load("qwen2-1.5b", quantization="8bit", device="cpu")


def test_yes_token_is_read_after_the_answer_prefix():
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from collm_bench.llm.backbone import yes_token_id

    # A SentencePiece-style (Metaspace) vocabulary, as Llama/Vicuna: the answer is "▁Yes".
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first")
    tok.train_from_iterator(["#Answer: Yes", "#Answer: No", "Yes or No"] * 20,
                            trainers.BpeTrainer(vocab_size=120, special_tokens=["<unk>", "<s>"], show_progress=False))
    sp = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", unk_token="<unk>")
    assert sp.convert_ids_to_tokens(yes_token_id(sp)) == "\u2581Yes"
    tiny = _load("tiny-qwen2").tokenizer  # byte-level BPE, as Qwen2: "ĠYes"
    assert tiny.convert_ids_to_tokens(yes_token_id(tiny)) == "\u0120Yes"
