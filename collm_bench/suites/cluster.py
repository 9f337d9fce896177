"""``collm-bench suite FILE --cluster slurm``: each cell a Slurm job, submitted through
submitit (``pip install 'collm-bench[cluster]'``), not through a scheduler of our own.

- Resources: ``[resources]`` in the suite file, an entry's ``resources``, then ``--resource
  KEY=VALUE`` (``collm_bench.suites.file.RESOURCES``), mapped to submitit's parameters
  (``submitit_parameters``); a job's threads follow its ``cpus``.
- The stage cache, the output root, the dataset cache and submitit's folder must be on a
  filesystem every node sees: checked before anything is submitted (``local_filesystems``).
- A job preempted or timed out is requeued by Slurm (submitit's checkpointing) and resumes from
  its cached stages; a job that died (node failure: submitit raises for it) is submitted again,
  up to ``retries`` times. A run that failed by itself (its error) is not retried.
- ``--cluster local`` takes the same path through submitit's local executor, on this machine
  (it ignores resources and never calls ``sbatch``): what the tests and CI run.
The scheduling (members first, at most ``--jobs`` in flight, Ctrl-C) is ``suites.jobs``'.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

from collm_bench.errors import UserError

# Plumbing: moves results around, computes none of their numbers (collm_bench.cache.identity).
__identity__ = "plumbing"

CLUSTERS = ("slurm", "local")
# Filesystems that only their own machine sees: a job on another node would not find the stages
# or write the records where this process looks for them.
LOCAL_FILESYSTEMS = {"ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "overlay", "zfs", "f2fs", "ramfs", "vfat",
                     "apfs", "devtmpfs"}


def submitit_parameters(resources: dict[str, Any], name: str) -> dict[str, Any]:
    """submitit's ``update_parameters`` for a cell's resources: one task on one node."""
    params: dict[str, Any] = {"name": re.sub(r"[^A-Za-z0-9._-]+", "_", name), "nodes": 1, "tasks_per_node": 1}
    mapping = {"gpus": "gpus_per_node", "cpus": "cpus_per_task", "mem_gb": "mem_gb", "time_min": "timeout_min",
               "partition": "slurm_partition", "account": "slurm_account", "qos": "slurm_qos",
               "constraint": "slurm_constraint"}
    for key, value in resources.items():
        if key != "gpus" or value:   # gpus = 0: ask for none (Slurm's default), not for "0 GPUs"
            params[mapping[key]] = value
    return params


def filesystem_type(path: Path) -> str | None:
    """The type of the filesystem holding ``path`` (the longest mount point above it in
    ``/proc/mounts``), or None where that cannot be read."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    path = Path(os.path.realpath(path))
    best, kind = -1, None
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        if (path == Path(point) or Path(point) in path.parents) and len(point) > best:
            best, kind = len(point), fields[2]
    return kind


def local_filesystems(paths: dict[str, Path]) -> list[str]:
    """``what (path, fstype)`` for each of ``paths`` on a filesystem other nodes cannot see."""
    out = []
    for what, path in paths.items():
        existing = Path(path)
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        kind = filesystem_type(existing)
        if kind in LOCAL_FILESYSTEMS:
            out.append(f"{what} {path} ({kind})")
    return out


class CellJob:
    """What a job runs: one cell (``suites._worker.run_request``). Checkpointable: Slurm's
    preemption or time limit requeues it, and the run resumes from its cached stages."""

    def __call__(self, request: dict[str, Any], level: int) -> dict[str, Any]:
        from collm_bench.suites._worker import run_request

        return run_request(request, level)

    def checkpoint(self, *args: Any, **kwargs: Any):
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


class Submitit:
    """Cells as submitit jobs (the launcher ``suites.jobs.run_parallel`` drives)."""

    def __init__(self, cluster: str, folder: Path, resources: dict[str, Any], lines, *, retries: int = 1,
                 capacity: int = 10_000) -> None:
        try:
            import submitit
        except ImportError:
            raise UserError("--cluster needs submitit: pip install 'collm-bench[cluster]'") from None
        if cluster not in CLUSTERS:
            raise UserError(f"--cluster must be one of {', '.join(CLUSTERS)}, got {cluster!r}")
        self.submitit, self.cluster, self.folder = submitit, cluster, Path(folder)
        self.overrides, self.lines, self.retries, self.capacity = resources, lines, retries, capacity
        self.running: dict[int, dict[str, Any]] = {}
        self.polled = 0.0

    def executor(self, resources: dict[str, Any], name: str):
        try:
            executor = self.submitit.AutoExecutor(folder=self.folder / "%j", cluster=self.cluster)
        except RuntimeError as exc:   # submitit: no srun here
            raise UserError(f"--cluster {self.cluster}: {exc} (run from a Slurm login node, or try the suite with "
                            "--cluster local)") from None
        params = submitit_parameters(resources, name)
        if self.cluster == "local":   # this machine: its own devices, whatever a cell asks of a node
            params = {k: v for k, v in params.items() if k in ("timeout_min", "name", "nodes", "tasks_per_node")}
        executor.update_parameters(**params)
        return executor

    def where(self, slot: int) -> str:
        job = self.running[slot]["job"]
        return f"{self.cluster} job {job.job_id}"

    def start(self, slot: int, cell, request: dict[str, Any], level: int) -> None:
        resources = {**cell.resources, **self.overrides}
        name = f"collm-bench {cell.describe()}"
        job = self.executor(resources, name).submit(CellJob(), request, level)
        self.running[slot] = {"job": job, "cell": cell, "request": request, "level": level, "tries": 1,
                              "resources": resources, "name": name}

    def wait(self, timeout: float) -> list[tuple[int, dict[str, Any]]]:
        time.sleep(timeout)
        ended = []
        for slot, entry in list(self.running.items()):
            job = entry["job"]
            self.lines.job(slot, f"{job.job_id}: {job.state}" + _last_line(job))
            if not job.done():
                continue
            try:
                result = job.result()
            except Exception as exc:  # noqa: BLE001 - the job died (node failure, killed): try again
                if entry["tries"] <= self.retries:
                    self.lines.say(f"{entry['name']}: job {job.job_id} failed ({str(exc).splitlines()[0][:200]}); "
                                   f"submitted again from its cached stages")
                    entry["job"] = self.executor(entry["resources"], entry["name"]).submit(
                        CellJob(), entry["request"], entry["level"])
                    entry["tries"] += 1
                    continue
                result = {"error": f"job {job.job_id} failed {entry['tries']} time(s): "
                                   f"{str(exc).splitlines()[0][:300]} (log: {job.paths.stderr})"}
            self.running.pop(slot)
            ended.append((slot, result))
        return ended

    def stop(self) -> None:
        for entry in self.running.values():
            try:
                entry["job"].cancel(check=False)
            except Exception:  # noqa: BLE001 - cancelling is best effort; the line below names the jobs
                pass
        jobs = ", ".join(str(e["job"].job_id) for e in self.running.values())
        if jobs:
            self.lines.say(f"cancelled {self.cluster} job(s) {jobs}; their finished stages are kept")

    def close(self) -> None:
        pass


def _last_line(job) -> str:
    try:
        text = Path(job.paths.stderr).read_text(errors="replace")
    except OSError:
        return ""
    lines = [line for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return f": {lines[-1][:200]}" if lines else ""


def resources_from_pairs(pairs: list[str]) -> dict[str, Any]:
    """``--resource KEY=VALUE`` pairs, checked as a suite file's ``[resources]``."""
    from collm_bench.suites.file import RESOURCES, read_resources

    raw: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key, value = key.strip(), value.strip()
        if not sep:
            raise UserError(f"--resource {pair!r}: write KEY=VALUE, e.g. gpus=1")
        kind = RESOURCES.get(key, (str, None))[0]
        try:
            raw[key] = value if kind is str else kind(value)
        except ValueError:
            raise UserError(f"--resource {pair!r}: {key} takes {'a number' if kind is float else 'an integer'}") from None
    return read_resources(raw, "--resource")


def launcher(cluster: str, out: Path, data_dir: str | None, cache_dir: str | None, resources: dict[str, Any],
             local_fs_ok: bool):
    """The launcher of ``suites.jobs.run_parallel`` for ``--cluster``, after checking that every
    node will see the output root, the stage cache, the datasets and submitit's folder."""
    from collm_bench.cache._dirs import cache_dir as dir_of

    if cluster not in CLUSTERS:
        raise UserError(f"--cluster must be one of {', '.join(CLUSTERS)}, got {cluster!r}")
    folder = Path(out) / ".submitit"
    if cluster == "slurm" and not local_fs_ok:
        local = local_filesystems({"the output root": Path(out),
                                   "the stage cache": dir_of(cache_dir, "COLLM_BENCH_CACHE", "stages"),
                                   "the dataset cache": dir_of(data_dir, "COLLM_BENCH_DATA", "datasets"),
                                   "submitit's folder": folder})
        if local:
            raise UserError(f"{'; '.join(local)}: a local filesystem, which jobs on other nodes do not see: put it "
                            "on a shared one (--out, --cache-dir, --data-dir), or pass --local-fs-ok for a "
                            "one-machine cluster")
    return lambda lines: Submitit(cluster, folder, resources, lines)
