"""The LLM presets: every preset sets the same options, and what each says about the readout."""
import dataclasses

import pytest

from collm_bench.llmrec.options import PRESETS, CoLLMOptions, resolved


def test_every_preset_sets_the_same_options():
    """A preset missing an option would leave it ``None`` (or take another preset's meaning)."""
    names = {name: set(values) for name, values in PRESETS.items()}
    assert all(keys == names["paper"] for keys in names.values()), names
    assert names["paper"] <= {f.name for f in dataclasses.fields(CoLLMOptions)}


@pytest.mark.parametrize(("preset", "readout"), [("paper", "yes"), ("cpu", "yes-no"), ("cpu-long", "yes-no")])
def test_the_cpu_presets_read_yes_minus_no_and_the_paper_the_yes_logit(preset, readout):
    assert resolved(CoLLMOptions(preset=preset)).readout == readout
    assert resolved(CoLLMOptions(preset=preset, readout="yes")).readout == "yes"   # an explicit value stays
