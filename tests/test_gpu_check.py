"""benchmarks/gpu_check.py: its harness on the CPU here; the real check where CUDA is present."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_gpu_check_dry_run_on_the_cpu_covers_every_path_and_agrees(tmp_path):
    gpu_check = _gpu_check()
    out = tmp_path / "checks.json"
    assert gpu_check.main(["--device", "cpu", "--quick", "--out", str(out)]) == 0
    checks = json.loads(out.read_text())
    paths = {c["path"].split(" (")[0] for c in checks}
    trained = {p.split()[1] for p in paths if p.startswith("train ")}
    assert trained == set(gpu_check.OPTIMIZERS)
    assert {"augment shift ±2", "noise sgdm", "noise adam", "sde euler", "sde jump"} <= paths
    assert {"escape from minima", "levy SαS α=1.5"} <= paths
    # CPU against CPU: the deterministic paths agree exactly
    exact = [c for c in checks if c["path"].startswith(("train", "noise", "augment"))]
    assert all(c["measured"] == 0 for c in exact)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_every_cuda_path_agrees_with_the_cpu():
    assert _gpu_check().main(["--device", "cuda"]) == 0
