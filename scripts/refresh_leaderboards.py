"""The leaderboard refresh, as CI runs it (.github/workflows/refresh-leaderboards.yml) and as
anyone can run it locally:

1. say whether the installed libraries are those of constraints.txt (the committed boards' own);
2. run each committed suite whose data and weights are at hand, with ``--stale`` (a suite skips
   the runs whose records exist and whose code has not changed since), and list the others
   with the reason;
3. verify every record against its predictions (collm-bench score);
4. re-render every committed board (and the pages scripts write: claims, recipe ranking) from its records, and one HTML page per board set
   (``--site DIR``: ``DIR/<runs folder>/index.html`` and ``DIR/index.html`` linking them, published
   as an artifact; ``--dry-run --site DIR`` is the one command that renders the whole site);
5. copy the predictions into an artifact folder (MovieLens terms keep them out of git);
6. write a summary (Markdown) of what ran, what was skipped, which boards changed and which
   records moved (AUC / UAUC before and after).

A records folder may hold records that no suite produces any more (a run id changes with the
configuration): the summary lists them by folder once every suite writing there has run or been
planned, and ``--prune`` deletes them, so a board shows only what its suites make today.

    python scripts/refresh_leaderboards.py [--dry-run] [--only RUNS ...] [--prune] [--artifacts DIR]
                                           [--summary FILE]

The exit code is 1 when a suite failed, a record does not match its predictions, a board did not
render, or a folder named with --only was not refreshed at all.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
BOARDS = ROOT / "leaderboards"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "collm_bench", *args], capture_output=True, text=True, cwd=ROOT)


def streamed(*args: str) -> tuple[int, str]:
    """(exit status, its output and errors together) of a command echoed to stderr line by line."""
    lines = []
    with subprocess.Popen([sys.executable, "-m", "collm_bench", *args], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, cwd=ROOT) as proc:
        for line in proc.stdout:
            sys.stderr.write(line)
            sys.stderr.flush()
            lines.append(line)
    return proc.returncode, "".join(lines)


def library_check() -> list[str]:
    """One line per pinned library whose installed version differs (none: the same libraries)."""
    lines = []
    for raw in (ROOT / "constraints.txt").read_text().splitlines():
        raw = raw.split("#")[0].strip()
        if not raw:
            continue
        name, pinned = raw.split("==")
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "not installed"
        if installed.split("+")[0] != pinned:
            lines.append(f"{name} {installed} (the committed boards used {pinned})")
    return lines


def input_dataset(variable: str | None, runs: str | None) -> tuple[str | None, str | None]:
    """(the dataset folder named by ``$variable``, why the suite cannot run or None). A folder
    holding another split than the committed records is refused: a refresh with --prune would
    otherwise replace the whole board with numbers on other data."""
    value = os.environ.get(variable) if variable else None
    if variable and not value:
        return None, f"needs the dataset folder in ${variable}"
    if not value:
        return None, None
    dataset = Path(value).expanduser().resolve()
    manifest = dataset / "manifest.json"
    if not manifest.exists():
        return None, f"${variable}={value} is not a prepared dataset folder"
    from collm_bench.data.format import PreparedDataset, read_manifest
    from collm_bench.errors import UserError

    try:
        meta = read_manifest(dataset)
    except UserError as exc:   # a wrong folder or archive: this board is skipped, the rest refreshed
        return None, f"${variable}={value}: {exc}"
    digest = PreparedDataset(dataset, meta.get("name", ""), meta, None, None).sha256   # as records store it
    committed = set()
    for record in (BOARDS / runs).glob("*/record.json") if runs else ():
        try:
            committed.add(json.loads(record.read_text()).get("dataset", {}).get("manifest_sha256"))
        except (OSError, ValueError, AttributeError):
            return None, f"{record.relative_to(ROOT)} is unreadable: fix it before refreshing {runs}"
    if committed and digest not in committed:
        return None, (f"${variable}={value} is another split than the committed records in {runs} (dataset "
                      f"digest {digest[:12]}, records {', '.join(sorted(str(c)[:12] for c in committed))})")
    return str(dataset), None


def plan(spec: dict) -> list[dict]:
    """One entry per (suite, output, dataset) to run, each with its skip reason or None."""
    jobs, seen = [], set()
    for board in spec["board"]:
        key = (board["suite"], board["runs"], board.get("dataset_input"))
        if key in seen:
            continue
        seen.add(key)
        if board.get("study"):   # its records are a decision's evidence: rendered, never rerun or pruned
            jobs.append({"suite": board["suite"], "runs": board["runs"], "dataset": None,
                         "skip": f"a study, rerun by hand: {board['study']}", "plannable": False})
            continue
        dataset, reason = input_dataset(board.get("dataset_input"), board["runs"])
        # without its dataset a suite would plan on its default one, so what it produces is unknown
        jobs.append({"suite": board["suite"], "runs": board["runs"], "dataset": dataset, "skip": reason,
                     "plannable": reason is None})
    for suite in spec.get("suite", []):
        path = BOARDS / suite["file"]
        if not path.exists():
            sys.exit(f"leaderboards/boards.toml lists {suite['file']}, which does not exist: restore it or "
                     "remove its [[suite]] entry")
        out = tomllib.loads(path.read_text())["suite"].get("out")
        if out is not None:   # relative to the suite file; the boards name folders relative to leaderboards/
            out = os.path.relpath(os.path.normpath(path.parent / out), BOARDS)
        dataset, reason = input_dataset(suite.get("dataset_input"), out)
        jobs.append({"suite": suite["file"], "runs": out, "dataset": dataset,
                     "skip": f"needs {suite['needs']}" + (f"; {reason}" if reason else ""), "plannable": reason is None})
    return jobs


RUN_ID = re.compile(r"(?<![\w.+-])[A-Za-z0-9][\w.+-]*__[\w.+-]+__seed\d+__[0-9a-f]{10}(?![\w.+-])")
TABLE_ROW = re.compile(r"^\s*\d+\s{2}\S", re.M)   # a line of the suite's table: "  3  entry  run  status  run id"


UNPLANNED = "some runs have no run id here (a dataset not prepared, or an optional plugin not installed)"


def planned_ids(stdout: str) -> set[str] | None:
    """The run ids of a suite's table, or None when a line has none (a cell not planned yet,
    e.g. its dataset is not prepared): then nobody knows what the suite produces."""
    ids = set()
    for line in stdout.splitlines():
        if TABLE_ROW.match(line):
            found = RUN_ID.findall(line)
            if not found:
                return None
            ids.update(found)
    return ids


def run_suite(job: dict, dry_run: bool) -> tuple[str, str, set[str] | None]:
    """(status, detail, the run ids the suite plans or None), read from the suite's own table."""
    args = ["suite", str(BOARDS / job["suite"]), "--out", str(BOARDS / job["runs"]), "--stale"]
    if job["dataset"]:
        args += ["--dataset", job["dataset"]]
    if dry_run:
        args.append("--dry-run")
    if dry_run:
        proc = cli(*args)
        returncode, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    else:  # hours long: its lines (one per stage) go to the log as they come, not at the end
        returncode, stdout = streamed(*args)
        stderr = ""
    counts = re.findall(r"^\d+ runs: .*$", stdout, re.M)
    if returncode != 0:
        tail = (stderr or stdout).strip().splitlines()[-1:] or [f"exit {returncode}"]
        return "failed", tail[0], None
    return "dry run" if dry_run else "ran", counts[-1] if counts else "", planned_ids(stdout)


def orphans(runs: Path, planned: set[str]) -> list[Path]:
    """Records in ``runs`` whose run id no suite plans any more."""
    return sorted(r.parent for r in runs.glob("*/record.json") if r.parent.name not in planned)


def verify_records() -> tuple[int, int, list[str]]:
    """(verified, without predictions here, failures) over every committed record."""
    verified, absent, failed = 0, 0, []
    for record in sorted(BOARDS.glob("runs/*/*/record.json")):
        if not (record.parent / "predictions.csv").exists():
            absent += 1
            continue
        proc = cli("score", str(record.parent))
        if proc.returncode == 0:
            verified += 1
        else:
            failed.append(f"{record.parent.relative_to(ROOT)}: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    return verified, absent, failed


def render_boards(spec: dict) -> list[str]:
    problems = []
    for board in spec["board"]:
        args = ["leaderboard", "--runs", str(BOARDS / board["runs"]), "--output", str(BOARDS / board["file"])]
        if board.get("table"):
            args += ["--table", str(board["table"])]
        proc = cli(*args)
        if proc.returncode != 0:
            problems.append(f"{board['file']}: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    for page in spec.get("page", []):
        proc = subprocess.run([sys.executable, str(ROOT / page["script"]), *(str(BOARDS / runs) for runs in page["runs"]),
                               "--output", str(BOARDS / page["file"])], capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            problems.append(f"{page['file']}: {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
    return problems


def render_site(spec: dict, site: Path) -> list[str]:
    """One static page per records folder (a board set), e.g. ``site/paper/index.html``, and
    ``site/index.html`` linking them all: the site the refresh workflow publishes."""
    from collm_bench.reporting.html import write_index

    problems, pages = [], []
    for runs in sorted({board["runs"] for board in spec["board"]}):
        if not (BOARDS / runs).is_dir():
            continue
        name = Path(runs).name
        proc = cli("leaderboard", "--runs", str(BOARDS / runs), "--format", "html", "--output", str(site / name))
        if proc.returncode != 0:
            problems.append(f"{runs} (html): {(proc.stderr.strip().splitlines() or ['?'])[-1]}")
            continue
        title = re.search(r"<title>(.*?)</title>", (site / name / "index.html").read_text(encoding="utf-8"))
        boards = ", ".join(Path(b["file"]).stem for b in spec["board"] if b["runs"] == runs)
        pages.append((f"{name}/index.html", f"{title.group(1) if title else name} (boards: {boards})"))
    write_index(site, pages)
    return problems


def changed_boards() -> list[str]:
    proc = subprocess.run(["git", "status", "--porcelain", "--", "leaderboards"], capture_output=True, text=True,
                          cwd=ROOT)
    return [line[3:] for line in proc.stdout.splitlines() if line.endswith(".md")]


def _auc_uauc(text: str | None) -> str:
    try:
        overall = json.loads(text)["metrics"]["overall"]
        return f"AUC {overall['auc']:.4f} / UAUC {overall['uauc']:.4f}"
    except (TypeError, ValueError, KeyError):
        return "?"


def moved_records() -> list[str]:
    """One line per record the refresh added, removed or changed against the last commit, with its
    AUC / UAUC before and after: what moved on the boards."""
    proc = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--", "leaderboards/runs"],
                          capture_output=True, text=True, cwd=ROOT)
    out = []
    for line in proc.stdout.splitlines():
        path = line[3:].strip()
        if not path.endswith("record.json"):
            continue
        old = subprocess.run(["git", "show", f"HEAD:{path}"], capture_output=True, text=True, cwd=ROOT)
        before = _auc_uauc(old.stdout) if old.returncode == 0 else None
        after = _auc_uauc((ROOT / path).read_text()) if (ROOT / path).exists() else None
        name = "/".join(Path(path).parts[-3:-1])
        if before is None:
            out.append(f"- {name}: new, {after}")
        elif after is None:
            out.append(f"- {name}: removed (was {before})")
        elif before != after:
            out.append(f"- {name}: {before} -> {after}")
        else:
            out.append(f"- {name}: rerun, same AUC / UAUC")
    return out


def copy_predictions(target: Path) -> int:
    copied = 0
    for path in sorted(BOARDS.glob("runs/*/*/predictions.csv")):
        dest = target / path.parent.parent.name / path.parent.name
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest / "predictions.csv")
        copied += 1
    return copied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="plan the suites (run nothing); verify and render")
    parser.add_argument("--only", action="append", metavar="RUNS",
                        help="refresh only these records folders (e.g. paper-ml-1m-collm; repeatable)")
    parser.add_argument("--prune", action="store_true",
                        help="delete the records no suite produces any more (listed either way)")
    parser.add_argument("--artifacts", type=Path, help="copy every predictions.csv here")
    parser.add_argument("--site", type=Path, help="write the HTML page of each board set below this folder")
    parser.add_argument("--summary", type=Path, default=os.environ.get("GITHUB_STEP_SUMMARY"),
                        help="write the Markdown summary here (default: $GITHUB_STEP_SUMMARY, else stdout)")
    args = parser.parse_args(argv)
    for name in ("artifacts", "site", "summary"):   # the suites run from the repository root: one meaning
        if getattr(args, name):
            setattr(args, name, getattr(args, name).resolve())
    spec = tomllib.loads((BOARDS / "boards.toml").read_text())
    lines = ["## Leaderboard refresh", ""]
    differs = library_check()
    lines += (["Libraries differ from constraints.txt, so refreshed numbers may move:", ""] + [f"- {d}" for d in differs]
              if differs else ["Libraries: those of constraints.txt (the committed boards' own)."]) + [""]
    lines += ["| suite | output | status | runs |", "|---|---|---|---|"]
    failed = False
    planned: dict[str, set[str] | None] = {}   # records folder -> run ids its suites plan (None: unknown)
    unplanned: dict[str, str] = {}             # records folder -> why what its suites produce is unknown
    refreshed: dict[str, bool] = {}            # selected records folder -> whether any of its suites ran
    jobs = plan(spec)
    unknown = set(args.only or ()) - {Path(job["runs"]).name for job in jobs if job["runs"]}
    if unknown:
        parser.error(f"--only {', '.join(sorted(unknown))}: no such records folder in boards.toml "
                     f"(known: {', '.join(sorted({Path(j['runs']).name for j in jobs if j['runs']}))})")
    for job in jobs:
        selected = not args.only or (job["runs"] is not None and Path(job["runs"]).name in args.only)
        if not selected:
            status, detail, ids = "not selected", "--only", None
        elif job["skip"]:  # not run, but what it would produce is planned (table7.toml writes runs/paper)
            status, detail = "skipped", job["skip"]
            ids, why = None, job["skip"]
            if job["runs"] and job["plannable"]:
                planned_status, why, ids = run_suite(job, True)
                why = why if planned_status == "failed" else UNPLANNED
        else:
            status, detail, ids = run_suite(job, args.dry_run)
            failed |= status == "failed"
            ids, why = (ids if status != "failed" else None), (detail if status == "failed" else UNPLANNED)
        if job["runs"]:
            known = planned.get(job["runs"], set())
            planned[job["runs"]] = None if ids is None or known is None else known | ids
            if ids is None and selected:
                unplanned.setdefault(job["runs"], f"{job['suite']}: {why}")
            if selected:
                refreshed[job["runs"]] = refreshed.get(job["runs"], False) or status in ("ran", "dry run")
        lines.append(f"| {job['suite']} | {job['runs'] or '-'} | {status} | {detail} |")
    for runs, ids in sorted(planned.items()):
        extra = orphans(BOARDS / runs, ids) if ids else []
        if ids is None and runs in unplanned and any((BOARDS / runs).glob("*/record.json")):
            lines += ["", f"Records in {runs}: which of them no suite produces any more is unknown "
                      f"({unplanned[runs]}), so none is deleted."]
        if extra:
            done = ("deleted" if args.prune and not args.dry_run
                    else "not deleted (dry run)" if args.prune else "not deleted (--prune deletes them)")
            lines += ["", f"Records in {runs} that no suite produces any more, {done}: "
                      + ", ".join(p.name for p in extra)]
            if args.prune and not args.dry_run:
                for path in extra:
                    shutil.rmtree(path)
    idle = sorted(runs for runs, ran in refreshed.items() if not ran and args.only)
    if idle:   # asked for by name, yet every suite writing there was skipped
        failed = True
        lines += ["", f"Selected with --only but not refreshed (every suite writing there was skipped or failed): "
                  f"{', '.join(idle)}"]
    verified, absent, mismatched = verify_records()
    lines += ["", f"Records: {verified} verified against their predictions, {absent} without predictions here "
              f"(not verifiable), {len(mismatched)} that do not match."]
    lines += [f"- {m}" for m in mismatched]
    problems = render_boards(spec)
    if args.site:
        problems += render_site(spec, args.site)
        lines.append(f"HTML pages: {args.site}/<board set>/index.html")
    lines += [f"- render failed: {p}" for p in problems]
    changed = changed_boards()
    lines += ["", "Boards changed: " + (", ".join(changed) if changed else "none")]
    moved = moved_records()
    if moved:
        lines += ["", "What moved (records against the last commit):", ""] + moved
    if args.artifacts:
        lines.append(f"Predictions copied to {args.artifacts}: {copy_predictions(args.artifacts)} files")
    text = "\n".join(lines) + "\n"
    if args.summary:
        with open(args.summary, "a") as fh:
            fh.write(text)
    print(text)
    return 1 if failed or mismatched or problems else 0


if __name__ == "__main__":
    sys.exit(main())
