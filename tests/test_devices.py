"""``preset=auto`` told without importing torch where its build cannot see a GPU
(collm_bench/_util/devices.py)."""
import subprocess
import sys

import pytest

from collm_bench._util import devices
from collm_bench.llmrec.options import LLMOptions, preset_name

CPU_BUILD = "from typing import Optional\n__version__ = '2.13.0+cpu'\ncuda: Optional[str] = None\nhip: Optional[str] = None\n"


@pytest.mark.parametrize("version_py, cpu_only", [
    (CPU_BUILD, True),
    (CPU_BUILD.replace("cuda: Optional[str] = None", "cuda: Optional[str] = '12.8'"), False),
    (CPU_BUILD.replace("hip: Optional[str] = None", "hip = '6.2.4'"), False),
    ("__version__ = '2.13.0'\n", False),           # cannot be told: torch is asked
    ("cuda = None\nhip = None\ndef (\n", False),   # not Python
    (CPU_BUILD + "cuda = _detect()\n", False),     # bound again to what a reading cannot tell
    (CPU_BUILD + "for cuda in ():\n    pass\n", False),
    (None, False),                                 # no version.py
])
def test_a_cpu_only_build_is_read_from_its_version_file(tmp_path, monkeypatch, version_py, cpu_only):
    package = tmp_path / "torch"
    package.mkdir()
    (package / "__init__.py").write_text("raise ImportError('not to be imported')\n")
    if version_py is not None:
        (package / "version.py").write_text(version_py)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    assert devices.cpu_only_torch() is cpu_only


def test_auto_asks_torch_when_the_build_could_see_a_gpu(monkeypatch):
    import torch

    monkeypatch.setattr("collm_bench.llmrec.options.cpu_only_torch", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert preset_name(LLMOptions()) == "paper"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert preset_name(LLMOptions()) == "cpu"


def test_auto_on_this_cpu_build_does_not_import_torch():
    probe = ("import sys; from collm_bench.llmrec.options import LLMOptions, default_eval_sample, preset_name; "
             "print(preset_name(LLMOptions()), default_eval_sample(LLMOptions()), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    import torch

    if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:
        assert out == ["cpu", "3000", "False"]
