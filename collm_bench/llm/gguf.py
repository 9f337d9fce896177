"""GGUF files as Hugging Face model folders: converted once, cached, verified.

transformers reads a GGUF file (``from_pretrained(folder, gguf_file=...)``, with the ``gguf``
package) and dequantizes it to float32, but refuses to save the result. So the model is rebuilt
from its config without the GGUF quantization marker, its state dict loaded, and saved with its
tokenizer as a plain folder. That folder is a stage of the stage cache (``gguf-model``), keyed by
the GGUF file's sha256 and the transformers version: written atomically, checksummed, reused
when intact and converted again when damaged. A file that cannot be converted leaves nothing.
"""
from __future__ import annotations

import copy
from importlib import metadata
from pathlib import Path

from collm_bench.data.format import sha256_file
from collm_bench.errors import UserError

STAGE = "gguf-model"


def models_cache() -> Path:
    """Where converted models live: ``$COLLM_BENCH_MODELS``, else ``<user cache>/collm-bench/models``
    (a model is shared by every run, whatever its ``--cache-dir``)."""
    from collm_bench.cache._dirs import cache_dir

    return cache_dir(None, "COLLM_BENCH_MODELS", "models")


def gguf_folder(gguf_file: str | Path, *, sha256: str | None = None, progress=None) -> Path:
    """The Hugging Face folder of ``gguf_file``, converting it on first use (~20 s for 135M
    parameters). ``sha256`` pins the file: another file is refused before anything is read."""
    from collm_bench.cache.stages import StageCache

    path = Path(gguf_file).expanduser()
    if not path.is_file():
        raise UserError(f"{path}: no such GGUF file")
    digest = sha256_file(path)
    if sha256 is not None and digest != sha256:
        raise UserError(f"{path}: sha256 {digest[:12]}... is not the pinned {sha256[:12]}...: the file is "
                        "damaged or another one; delete it and let collm-bench fetch it again")
    try:
        transformers = metadata.version("transformers")
    except metadata.PackageNotFoundError:
        transformers = None
    inputs = {"gguf_sha256": digest, "transformers": transformers}
    stage = StageCache(models_cache()).run(STAGE, inputs, lambda out: _convert(path, out), progress)
    return stage.path


def _convert(path: Path, out: Path) -> dict:
    """Dequantize ``path`` into a model folder ``out`` (model + tokenizer)."""
    try:
        import gguf  # noqa: F401  (transformers needs it to read the file)
    except ImportError:
        raise UserError(f"{path}: reading GGUF files needs the gguf package: pip install 'gguf>=0.10'") from None
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    except (ValueError, KeyError, OSError, RuntimeError, TypeError, IndexError) as exc:
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise UserError(f"{path}: cannot be converted to a Hugging Face model ({reason}); transformers "
                        "reads GGUF files of llama, mistral, qwen2, gemma and a few other architectures") from None
    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):  # the GGUF marker makes save_pretrained refuse
        del config.quantization_config
    plain = type(model)(config)
    plain.load_state_dict(model.state_dict())
    plain.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return {"source": str(path), "parameters": sum(p.numel() for p in plain.parameters()),
            "architecture": type(model).__name__}
