"""Training: outputs, determinism, resume after interruption, divergence."""

from __future__ import annotations

import math

import pyarrow.parquet as pq
import pytest
import torch

import gradnoise.train as train_mod
from gradnoise.arms import Training
from gradnoise.train import RunSettings, train_run


def settings(seed: int = 0, model: dict | None = None, **training) -> RunSettings:
    """A small run; `training` overrides fields of its gradnoise.arms.Training."""
    plan = dict(
        optimizer="adam",
        hparams={"lr": 0.003},
        batch_size=32,
        iterations=24,
        checkpoints=[0, 8, 24],
    )
    plan.update(training)
    return RunSettings(
        run={"experiment": "t", "arm": plan["optimizer"], "optimizer": plan["optimizer"], "seed": seed},
        training=Training(**plan),
        dataset={"name": "mnist_embedded", "train_size": 400, "test_size": 200},
        model=model or {"name": "mlp", "hidden": [16]},
        eval_every=8,
    )


def _state(run_dir, step):
    return torch.load(run_dir / "checkpoints" / f"step{step}.pt", weights_only=True)


def test_run_writes_checkpoints_with_optimizer_state_and_history(tmp_path):
    assert train_run(settings(), tmp_path) == "ok"
    hist = pq.read_table(tmp_path / "history.parquet").to_pandas()
    assert hist[hist.evaluated].iteration.tolist() == [0, 8, 16, 24]
    assert len(hist) > 4 and hist[~hist.evaluated].train_loss.isna().all()
    assert {"train_loss", "test_acc", "weight_distance", "epoch", "lr"} <= set(hist.columns)
    assert hist.weight_distance.iloc[0] == 0 and hist.weight_distance.iloc[-1] > 0
    ck = _state(tmp_path, 24)
    assert ck["status"] == "ok" and ck["step"] == 24
    assert "exp_avg_sq" in ck["optimizer"]["state"][0]
    assert not (tmp_path / ".resume").exists()


def test_same_seed_gives_identical_checkpoints_and_history(tmp_path):
    train_run(settings(), tmp_path / "a")
    train_run(settings(), tmp_path / "b")
    assert (tmp_path / "a" / "history.parquet").read_bytes() == (
        tmp_path / "b" / "history.parquet"
    ).read_bytes()
    for k, v in _state(tmp_path / "a", 24)["model"].items():
        assert torch.equal(v, _state(tmp_path / "b", 24)["model"][k])


def _interrupt_at_batch(monkeypatch, n: int) -> None:
    """Make the n-th minibatch draw raise, as if the job were killed there."""
    real_next = train_mod.BatchStream.next
    calls = {"n": 0}

    def dying_next(self):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt("killed")
        return real_next(self)

    monkeypatch.setattr(train_mod.BatchStream, "next", dying_next)


def test_interrupted_run_resumes_from_its_last_checkpoint_and_matches(tmp_path, monkeypatch):
    train_run(settings(), tmp_path / "full")
    with monkeypatch.context() as m:
        _interrupt_at_batch(m, 13)  # mid-way between checkpoints 8 and 24
        with pytest.raises(KeyboardInterrupt):
            train_run(settings(), tmp_path / "cut")
    assert not (tmp_path / "cut" / "history.parquet").exists()  # nothing looks complete
    assert (tmp_path / "cut" / ".resume" / "state.pt").exists()
    train_run(settings(), tmp_path / "cut")
    full, cut = tmp_path / "full" / "history.parquet", tmp_path / "cut" / "history.parquet"
    assert cut.read_bytes() == full.read_bytes()
    for k, v in _state(tmp_path / "full", 24)["model"].items():
        assert torch.equal(v, _state(tmp_path / "cut", 24)["model"][k])


def test_resume_state_of_other_settings_is_discarded(tmp_path, monkeypatch):
    with monkeypatch.context() as m:
        _interrupt_at_batch(m, 13)
        with pytest.raises(KeyboardInterrupt):
            train_run(settings(), tmp_path)
    train_run(settings(hparams={"lr": 0.001}), tmp_path)
    train_run(settings(hparams={"lr": 0.001}), tmp_path / "fresh")
    fresh = (tmp_path / "fresh" / "history.parquet").read_bytes()
    assert (tmp_path / "history.parquet").read_bytes() == fresh


def test_diverging_run_is_recorded_not_dropped(tmp_path):
    status = train_run(settings(optimizer="sgd", hparams={"lr": 1e6}), tmp_path)
    assert status == "diverged"
    hist = pq.read_table(tmp_path / "history.parquet").to_pandas()
    assert hist.status.iloc[-1] == "diverged" and not math.isfinite(hist.batch_loss.iloc[-1])
    assert (
        pq.read_schema(tmp_path / "history.parquet")
        .metadata[b"gradnoise.settings"]
        .find(b'"status": "diverged"')
        >= 0
    )
    last = _state(tmp_path, 24)
    assert last["status"] == "diverged" and last["diverged_at"] == hist.iteration.iloc[-1]
