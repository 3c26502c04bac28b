"""benchmarks/pipeline.py: job benchmarks summed per stage and compared with a baseline."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


@pytest.fixture(scope="module")
def pipeline():
    spec = importlib.util.spec_from_file_location("pipeline_bench", ROOT / "benchmarks/pipeline.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def write(path: Path, wall: float, cpu: str | float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{wall}\t0:00:01\t1\t1\t1\t1\t0\t0\t50\t{cpu}\n")


def make_logs(root: Path) -> Path:
    logs = root / "logs"
    write(logs / "exp/train/sgd/seed0.benchmark.tsv", 10.0, 8.0)
    write(logs / "exp/train/adam/seed0.benchmark.tsv", 12.0, 9.5)
    write(logs / "exp/tails/sgd/seed0/step200.benchmark.tsv", 3.0, 2.5)
    write(logs / "exp/simulate/calibration.benchmark.tsv", 5.0, 4.0)
    write(logs / "exp/simulate/sgd.benchmark.tsv", 6.0, 5.0)
    write(logs / "exp/simulate/escape.benchmark.tsv", 1.0, "NA")  # too short for psutil
    write(logs / "exp/escape/minima/sgd/seed0.benchmark.tsv", 7.0, 6.0)
    write(logs / "exp/escape/minima.benchmark.tsv", 0.5, 0.25)
    write(logs / "exp/escape_law_figures.benchmark.tsv", 2.0, 1.0)
    (logs / "exp/train/sgd/seed0.log").write_text("not a benchmark\n")
    return logs


def test_stage_totals_sum_each_rules_jobs_and_tell_the_similar_paths_apart(pipeline, tmp_path):
    stages = pipeline.stage_totals(pipeline.read_jobs(make_logs(tmp_path)))
    assert stages["train"] == {"jobs": 2, "wall_s": 22.0, "cpu_s": 17.5}
    assert stages["simulate_calibration"]["cpu_s"] == 4.0
    assert stages["simulate_arm"] == {"jobs": 1, "wall_s": 6.0, "cpu_s": 5.0}
    assert stages["escape_table"] == {"jobs": 1, "wall_s": 1.0, "cpu_s": 0.0}
    assert stages["escape_minimum"]["cpu_s"] == 6.0
    assert stages["escape_minima"]["cpu_s"] == 0.25
    assert stages["figures"]["jobs"] == 1
    assert "other" not in stages
    assert pipeline.total(stages, "cpu_s") == pytest.approx(17.5 + 2.5 + 4 + 5 + 0 + 6 + 0.25 + 1)


def test_a_repeated_benchmark_counts_its_last_row(pipeline, tmp_path):
    path = tmp_path / "logs/exp/noise/a/seed0/step1.benchmark.tsv"
    write(path, 4.0, 3.0)
    path.write_text(path.read_text() + "5.0\t0:00:05\t1\t1\t1\t1\t0\t0\t50\t4.5\n")
    assert pipeline.read_benchmark(path) == (5.0, 4.5)


def test_ratios_against_a_baseline_per_stage_and_in_total(pipeline):
    now = {
        "train": {"jobs": 2, "wall_s": 10.0, "cpu_s": 6.0},
        "noise": {"jobs": 1, "wall_s": 4.0, "cpu_s": 2.0},
        "new": {"jobs": 1, "wall_s": 1.0, "cpu_s": 1.0},
    }
    base = {
        "train": {"jobs": 2, "wall_s": 20.0, "cpu_s": 12.0},
        "noise": {"jobs": 1, "wall_s": 4.0, "cpu_s": 8.0},
        "gone": {"jobs": 3, "wall_s": 6.0, "cpu_s": 4.0},
    }
    rows = {r["stage"]: r for r in pipeline.compare(now, base)}
    assert rows["train"]["cpu_ratio"] == pytest.approx(0.5)
    assert rows["train"]["wall_ratio"] == pytest.approx(0.5)
    assert rows["noise"]["cpu_ratio"] == pytest.approx(0.25)
    assert rows["new"]["cpu_ratio"] is None  # nothing to compare with
    assert rows["gone"]["cpu_ratio"] == 0.0 and rows["gone"]["jobs"] == 0
    assert rows["total"]["cpu_ratio"] == pytest.approx(9.0 / 24.0)
    assert rows["train"]["cpu_per_job_ratio"] == pytest.approx(0.5)
    assert rows["total"]["cpu_per_job_ratio"] == pytest.approx((9.0 / 4) / (24.0 / 6))
    assert rows["total"]["wall_ratio"] == pytest.approx(15.0 / 30.0)
    assert rows["train"]["cpu_share"] == pytest.approx(6.0 / 9.0)
    assert list(rows)[0] == "train"  # the baseline's costliest stage first
    assert "total" in pipeline.format_table(list(rows.values()))


def test_write_baseline_then_compare_gives_ratio_one(pipeline, tmp_path, monkeypatch, capsys):
    logs = make_logs(tmp_path)
    baseline = tmp_path / "baseline.json"
    argv = ["pipeline.py", "--logs", str(logs), "--baseline", str(baseline)]
    monkeypatch.setattr(sys, "argv", [*argv, "--write-baseline", "--wall", "123", "--cpu", "45"])
    pipeline.main()
    record = json.loads(baseline.read_text())
    assert record["run_wall_s"] == 123.0 and record["run_cpu_s"] == 45.0
    assert set(record["machine"]) == {"cpu", "cores", "torch", "git"}
    assert record["stages"]["train"]["cpu_s"] == 17.5
    monkeypatch.setattr(sys, "argv", argv)
    capsys.readouterr()
    pipeline.main()
    total_line = [line for line in capsys.readouterr().out.splitlines() if line.startswith("total")]
    assert total_line and " 1.00 " in total_line[0]


def test_one_experiments_jobs_and_the_alpha_stable_stage_are_told_apart(pipeline, tmp_path):
    logs = make_logs(tmp_path)
    write(logs / "exp/alpha_stable/sgd/seed0.benchmark.tsv", 9.0, 7.0)
    write(logs / "other/train/sgd/seed0.benchmark.tsv", 30.0, 25.0)
    everything = pipeline.stage_totals(pipeline.read_jobs(logs))
    assert everything["train"]["jobs"] == 3 and everything["alpha_stable"]["cpu_s"] == 7.0
    one = pipeline.stage_totals(pipeline.read_jobs(logs, "exp"))
    assert one["train"] == {"jobs": 2, "wall_s": 22.0, "cpu_s": 17.5} and "other" not in one
