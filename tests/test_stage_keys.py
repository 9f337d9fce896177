"""Stage keys follow from the options each stage reads (``collm_bench.cache.options``): changing
an option changes the key of every stage that reads it, and of the stages downstream of those,
and of no other. Tiny runs (random tiny Llama, a few steps) on one stage cache."""
import dataclasses

import pytest

from collm_bench.api.components import option
from collm_bench.llmrec import CIE_GROUP, PROMPT, SCORER, SCORING, STEP1_READS, STEP2, TUNING, CoLLMOptions
from collm_bench.api.registry import load_registry
from collm_bench.runner import RunRequest, run
from collm_bench.cache.options import StageOptions, option_groups
from collm_bench.testing import tiny_dataset

FAST = {"max_steps": "4", "eval_every": "2", "batch_size": "8", "history_titles": "3", "valid_rows": "12",
        "warmup_steps": "1", "step2_max_steps": "4"}
FAST_MF = {"max_epochs": "2", "dim": "8"}
# A different valid value for every CoLLM option a stage reads.
CHANGED = {"history_titles": "2", "batch_size": "6", "lr": "5e-4", "max_steps": "3", "eval_every": "3",
           "patience": "5", "warmup_steps": "2", "valid_rows": "10", "weight_decay": "0.01", "lora_r": "4",
           "lora_alpha": "8", "lora_dropout": "0.1", "score_batch_size": "16", "int8_inference": "true",
           "strategy": "t1", "step2_lr": "5e-4", "step2_max_steps": "3", "cie_hidden_factor": "2",
           "cie_input": "layernorm", "readout": "yes", "pooling": "mean", "head_lr": "3e-2"}
# What each stage of a CoLLM run reads, and the stages it depends on: the specification. Every
# LLM stage reads the scorer (how the answer is read).
READS = {"encoder-mf": (), "llm-step1": (*STEP1_READS, SCORER), "llm-step2": (PROMPT, TUNING, STEP2, CIE_GROUP, SCORER),
         "scoring": (PROMPT, SCORING, SCORER), "tallrec-scoring": (PROMPT, SCORING, SCORER)}
UPSTREAM = {"llm-step2": ("llm-step1", "encoder-mf"), "scoring": ("llm-step2",), "tallrec-scoring": ("llm-step1",)}


@pytest.fixture(scope="module")
def registry():
    return load_registry()


@pytest.fixture(scope="module")
def runner(registry, tmp_path_factory):
    root = tmp_path_factory.mktemp("keys")
    tiny_dataset(root / "tiny")

    def keys(options: dict[str, str]) -> dict[str, str]:
        request = RunRequest(method="collm", dataset=str(root / "tiny"), backbone="tiny-llama", out=root / "runs",
                             cache_dir=str(root / "cache"), options={**FAST, **options}, encoder_options=FAST_MF)
        result = run(request, registry=registry, progress=lambda m: None)
        stages = result.record["timings"]["stages"]
        tallrec = next(r for _, r in result.companions if r["method"] == "tallrec")
        return {**{name: stages[name]["key"] for name in ("encoder-mf", "llm-step1", "llm-step2", "scoring")},
                "tallrec-scoring": tallrec["timings"]["stages"]["scoring"]["key"]}

    return keys


def expected_changes(name: str) -> set[str]:
    groups = set(option_groups(CoLLMOptions)[name])
    changed = {stage for stage, reads in READS.items() if groups & set(reads)}
    while True:
        more = {stage for stage, ups in UPSTREAM.items() if changed & set(ups)} - changed
        if not more:
            return changed
        changed |= more


def test_every_read_option_has_a_changed_value_here():
    grouped = {n for n, groups in option_groups(CoLLMOptions).items() if groups}
    assert grouped == set(CHANGED)
    assert set(option_groups(CoLLMOptions)) - grouped == {"preset", "eval_sample"}  # read by the harness


@pytest.mark.parametrize("name", sorted(CHANGED))
def test_changing_an_option_changes_exactly_the_stages_that_read_it(runner, name):
    base = runner({})
    changed = runner({name: CHANGED[name]})
    moved = {stage for stage in base if base[stage] != changed[stage]}
    assert moved == expected_changes(name), name


def test_step1_is_one_stage_for_every_step2_setting(runner):
    base = runner({})
    for name in ("step2_lr", "cie_hidden_factor", "strategy"):
        assert runner({name: CHANGED[name]})["llm-step1"] == base["llm-step1"]


@dataclasses.dataclass(frozen=True)
class _Options:
    a: int = option(1, groups=("one",))
    b: int = option(2, groups=("two",))
    c: int = option(3)


def test_a_stage_cannot_read_an_option_outside_its_groups():
    view = StageOptions(_Options(), ("one",), stage="demo")
    assert view.a == 1 and view.key() == {"a": 1}
    with pytest.raises(AttributeError, match="stage demo reads option 'b' \\(two\\) outside its groups"):
        view.b
    with pytest.raises(AttributeError, match="'c' \\(no group\\)"):
        view.c
    with pytest.raises(ValueError, match="no option of _Options is in group\\(s\\) tow"):
        StageOptions(_Options(), ("tow",), stage="typo")
    with pytest.raises(TypeError, match="option groups must be a tuple"):
        option(1, groups="one")


def test_a_maker_of_the_methods_own_leaves_step1_shared_and_joins_scoring(registry, tmp_path):
    """A plugin's own code counts only in the stages that run it: step 1 reads the toolkit's text
    prompts, so a method bringing its own PromptMaker (for scoring, or step 2) reuses TALLRec's
    step 1; its scoring runs the maker, so that stage's key holds the maker's code."""
    import sys
    import textwrap

    (tmp_path / "myprompts.py").write_text(textwrap.dedent('''
        from collm_bench import MethodSpec, hookimpl
        from collm_bench.llmrec import LLMOptions, LLMRun, PromptMaker, default_eval_sample, resolved

        class LoudMaker(PromptMaker):
            """Scores its prompts as TALLRec does, with a different class (and so code)."""
            loud = True

        def run(context):
            llm = LLMRun(context, "loud", maker_factory=LoudMaker)
            step1 = llm.step1()
            scores, stage = llm.scores({"step1": step1.key}, with_ids=False)
            return llm.output(scores, stage, [step1])

        @hookimpl
        def register_methods(register):
            register(MethodSpec(name="loud", run=run, options=LLMOptions, backbone="minilm",
                                eval_sample=default_eval_sample, resolve_options=resolved, description="TALLRec, louder"))
    '''))
    sys.path.insert(0, str(tmp_path))
    try:
        import myprompts

        plugged = load_registry([("myprompts", myprompts)])
        assert not plugged.failures
        tiny_dataset(tmp_path / "tiny")
        stages = {}
        for method in ("tallrec", "loud"):
            request = RunRequest(method=method, dataset=str(tmp_path / "tiny"), backbone="tiny-llama",
                                 out=tmp_path / "runs", cache_dir=str(tmp_path / "cache"),
                                 options={k: v for k, v in FAST.items() if k != "step2_max_steps"})
            stages[method] = run(request, registry=plugged, progress=lambda m: None).record["timings"]["stages"]
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("myprompts", None)
    assert stages["loud"]["llm-step1"]["key"] == stages["tallrec"]["llm-step1"]["key"]
    assert stages["loud"]["llm-step1"]["cached"] is True          # trained once, by TALLRec
    assert stages["loud"]["scoring"]["key"] != stages["tallrec"]["scoring"]["key"]
