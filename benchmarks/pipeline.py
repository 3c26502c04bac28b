"""Where a finished run's job time went, per stage, as ratios against a baseline kept in the repository.

python benchmarks/pipeline.py [--logs logs] [--experiment NAME] [--baseline benchmarks/baseline_default.json]
                              [--write-baseline] [--wall SECONDS]

Snakemake writes one benchmark file per job (the `benchmark:` directive of every rule, next to the
job's log under logs/, named `*.benchmark.tsv`): one row with the job's wall seconds (`s`) and the CPU
seconds of its processes (`cpu_time`). A stage is the rule; the stage of a file is read from its path
(STAGE_PATTERNS), so no Snakemake state is needed. The run's CPU seconds are the measure to compare:
the wall seconds of a job grow with whatever else shares the machine's cores, its CPU seconds much
less. The baseline records the machine it ran on (CPU model, cores, torch, git revision), so that a
ratio against it is read as a ratio on the same kind of machine.

Two cautions, both measured on the shared 2-core machine (README.md in this folder):
- Snakemake samples a job's processes every 0.5 s for its first 15 s and every 30 s after that, and
  keeps the last sample: a job's `cpu_time` misses what it spent after its last sample, up to 30 s of
  wall time. The sums are lower bounds; the accurate total is the run's own (`/usr/bin/time` around
  snakemake counts every reaped child), which `--cpu` records next to them.
- A run cut short (or one that reran only some jobs) compares per job: `cpu/job ×` is the ratio of
  the mean CPU seconds of a stage's jobs, which stays meaningful when the job counts differ.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

# (regex on the path below logs/<experiment>/, stage); the first match wins.
STAGE_PATTERNS: list[tuple[str, str]] = [
    (r"^train/", "train"),
    (r"^noise/", "noise"),
    (r"^tails/", "tails"),
    (r"^aggregate_tails", "aggregate_tails"),
    (r"^sharpness/", "sharpness"),
    (r"^simulate/calibration", "simulate_calibration"),
    (r"^simulate/escape", "escape_table"),
    (r"^simulate/", "simulate_arm"),
    (r"^escape/sweep_", "escape_sweep"),
    (r"^escape/slopes", "escape_slopes"),
    (r"^escape/minima/", "escape_minimum"),
    (r"^escape/minima", "escape_minima"),
    (r"^distance_fits", "distance_fits"),
    (r"^alpha_stable/", "alpha_stable"),
    (r"figures", "figures"),
    (r"^claims", "claims"),
]
SUFFIX = ".benchmark.tsv"


@dataclass(frozen=True)
class Job:
    stage: str
    wall_s: float
    cpu_s: float


def stage_of(relative: str) -> str:
    """The stage of a benchmark file, from its path below logs/<experiment>/ ('other' if unknown)."""
    for pattern, stage in STAGE_PATTERNS:
        if re.search(pattern, relative):
            return stage
    return "other"


def read_benchmark(path: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one job (the last row: a rerun with `repeat` appends rows)."""
    with path.open() as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    if not rows:
        raise ValueError(f"{path}: no benchmark row")
    row = rows[-1]
    cpu = row.get("cpu_time", "NA")
    return float(row["s"]), (float(cpu) if cpu not in ("NA", "-", "") else 0.0)


def read_jobs(logs: Path, experiment: str | None = None) -> list[Job]:
    """Every job's benchmark under logs/<experiment>/… (of one experiment where named)."""
    jobs = []
    for path in sorted((logs / experiment if experiment else logs).rglob(f"*{SUFFIX}")):
        relative = path.relative_to(logs).as_posix()
        below_experiment = relative.split("/", 1)[1] if "/" in relative else relative
        wall, cpu = read_benchmark(path)
        jobs.append(Job(stage_of(below_experiment), wall, cpu))
    return jobs


def stage_totals(jobs: list[Job]) -> dict[str, dict[str, float]]:
    """Stage → {jobs, wall_s, cpu_s}, summed over its jobs."""
    totals: dict[str, dict[str, float]] = {}
    for job in jobs:
        entry = totals.setdefault(job.stage, {"jobs": 0, "wall_s": 0.0, "cpu_s": 0.0})
        entry["jobs"] += 1
        entry["wall_s"] += job.wall_s
        entry["cpu_s"] += job.cpu_s
    return totals


def total(stages: dict[str, dict[str, float]], key: str) -> float:
    return sum(entry[key] for entry in stages.values())


def ratio(new: float, old: float) -> float | None:
    """new / old, or None where the baseline has nothing to compare with."""
    return new / old if old > 0 else None


def compare(
    stages: dict[str, dict[str, float]], baseline: dict[str, dict[str, float]]
) -> list[dict]:
    """One row per stage of either run, and a 'total' row: sums, baseline sums and their ratios."""
    names = sorted(set(stages) | set(baseline), key=lambda s: -baseline.get(s, {}).get("cpu_s", 0))
    empty = {"jobs": 0, "wall_s": 0.0, "cpu_s": 0.0}
    rows = []
    for name in [*names, "total"]:
        if name == "total":
            now = {k: total(stages, k) for k in empty}
            then = {k: total(baseline, k) for k in empty}
        else:
            now, then = stages.get(name, empty), baseline.get(name, empty)
        rows.append(
            {
                "stage": name,
                "jobs": int(now["jobs"]),
                "cpu_s": now["cpu_s"],
                "wall_s": now["wall_s"],
                "base_cpu_s": then["cpu_s"],
                "base_wall_s": then["wall_s"],
                "cpu_ratio": ratio(now["cpu_s"], then["cpu_s"]),
                "wall_ratio": ratio(now["wall_s"], then["wall_s"]),
                "cpu_share": now["cpu_s"] / total(stages, "cpu_s") if stages else 0.0,
                "cpu_per_job_ratio": ratio(
                    now["cpu_s"] / now["jobs"] if now["jobs"] else 0.0,
                    then["cpu_s"] / then["jobs"] if then["jobs"] else 0.0,
                ),
            }
        )
    return rows


def format_table(rows: list[dict]) -> str:
    def num(x: float | None, fmt: str) -> str:
        return "—" if x is None else format(x, fmt)

    header = f"{'stage':<22}{'jobs':>5}{'cpu s':>10}{'share':>7}{'base cpu':>10}{'cpu ×':>7}"
    header += f"{'cpu/job ×':>10}{'wall s':>10}{'base wall':>10}{'wall ×':>8}"
    lines = [header]
    for r in rows:
        lines.append(
            f"{r['stage']:<22}{r['jobs']:>5}{r['cpu_s']:>10.1f}{r['cpu_share']:>7.1%}"
            f"{r['base_cpu_s']:>10.1f}{num(r['cpu_ratio'], '.2f'):>7}"
            f"{num(r['cpu_per_job_ratio'], '.2f'):>10}"
            f"{r['wall_s']:>10.1f}{r['base_wall_s']:>10.1f}{num(r['wall_ratio'], '.2f'):>8}"
        )
    return "\n".join(lines)


def machine(revision: str | None = None) -> dict[str, str | int]:
    """What the run ran on: CPU model, cores, torch, git revision (HEAD unless given)."""
    model = platform.processor() or "unknown"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    try:
        import torch

        torch_version = torch.__version__
    except ImportError:
        torch_version = "absent"
    revision = (
        revision
        or subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
    )
    return {"cpu": model, "cores": os.cpu_count() or 0, "torch": torch_version, "git": revision}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logs", type=Path, default=Path("logs"))
    parser.add_argument(
        "--experiment", help="only this experiment's jobs (logs/<experiment>/; default: all)"
    )
    parser.add_argument(
        "--baseline", type=Path, default=Path(__file__).with_name("baseline_default.json")
    )
    parser.add_argument(
        "--write-baseline", action="store_true", help="record this run as the baseline"
    )
    parser.add_argument("--wall", type=float, help="the run's own wall seconds, to record with it")
    parser.add_argument(
        "--cpu", type=float, help="the run's own CPU seconds (user + sys of /usr/bin/time)"
    )
    parser.add_argument("--revision", help="the git revision that ran (default: HEAD here)")
    parser.add_argument("--note", default="", help="a line recorded with a new baseline")
    args = parser.parse_args()

    stages = stage_totals(read_jobs(args.logs, args.experiment))
    if not stages:
        raise SystemExit(f"no *{SUFFIX} under {args.logs}")
    if args.write_baseline:
        record = {
            "machine": machine(args.revision),
            "run_wall_s": args.wall,
            "run_cpu_s": args.cpu,
            "note": args.note,
            "stages": stages,
        }
        args.baseline.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        print(f"wrote {args.baseline}")
    baseline = json.loads(args.baseline.read_text()) if args.baseline.exists() else {"stages": {}}
    print(
        f"baseline: {baseline.get('machine', {})}, run wall {baseline.get('run_wall_s')} s,"
        f" run CPU {baseline.get('run_cpu_s')} s; {baseline.get('note', '')}"
    )
    print(format_table(compare(stages, baseline["stages"])))
    base_cpu, base_wall = baseline.get("run_cpu_s"), baseline.get("run_wall_s")
    if args.cpu and base_cpu:
        print(
            f"run CPU (exact, /usr/bin/time): {args.cpu:.1f} s, {args.cpu / base_cpu:.2f}× the baseline's"
        )
    if args.wall and base_wall:
        print(f"run wall: {args.wall:.1f} s, {args.wall / base_wall:.2f}× the baseline's")


if __name__ == "__main__":
    main()
