"""Training: outputs, determinism, resume after interruption, divergence."""

from __future__ import annotations

import json
import math

import pyarrow.parquet as pq
import pytest
import torch

import gradnoise.train as train_mod
import gradnoise.train.finish as finish_mod
import gradnoise.train.loop as loop_mod
import gradnoise.train.run as run_mod
from gradnoise.arms import Training
from gradnoise.models import build_model
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
        run={
            "experiment": "t",
            "arm": plan["optimizer"],
            "optimizer": plan["optimizer"],
            "seed": seed,
        },
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


# an MLP, and LeNet, which trains channels-last on the CPU (models.fastest_memory_format)
MODELS = [None, {"name": "lenet"}]


@pytest.mark.parametrize("model", MODELS, ids=["mlp", "lenet"])
def test_same_seed_gives_identical_checkpoints_and_history(tmp_path, model):
    train_run(settings(model=model), tmp_path / "a")
    train_run(settings(model=model), tmp_path / "b")
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


@pytest.mark.parametrize("model", MODELS, ids=["mlp", "lenet"])
def test_interrupted_run_resumes_from_its_last_checkpoint_and_matches(tmp_path, monkeypatch, model):
    train_run(settings(model=model), tmp_path / "full")
    with monkeypatch.context() as m:
        _interrupt_at_batch(m, 13)  # mid-way between checkpoints 8 and 24
        with pytest.raises(KeyboardInterrupt):
            train_run(settings(model=model), tmp_path / "cut")
    assert not (tmp_path / "cut" / "history.parquet").exists()  # nothing looks complete
    assert (tmp_path / "cut" / ".resume" / "state.pt").exists()
    train_run(settings(model=model), tmp_path / "cut")
    full, cut = tmp_path / "full" / "history.parquet", tmp_path / "cut" / "history.parquet"
    assert cut.read_bytes() == full.read_bytes()
    for k, v in _state(tmp_path / "full", 24)["model"].items():
        assert torch.equal(v, _state(tmp_path / "cut", 24)["model"][k])


def test_channels_last_training_follows_the_nchw_trajectory(tmp_path, monkeypatch):
    """LeNet trains channels-last: the same run, to float32 rounding, as in NCHW, and its
    checkpoints load into a fresh (NCHW) model."""
    run = settings(model={"name": "lenet"}, optimizer="sgd", hparams={"lr": 0.05})
    train_run(run, tmp_path / "last")
    with monkeypatch.context() as m:
        m.setattr(loop_mod, "fastest_memory_format", lambda *_: torch.contiguous_format)
        train_run(run, tmp_path / "nchw")
    last, nchw = _state(tmp_path / "last", 24)["model"], _state(tmp_path / "nchw", 24)["model"]
    assert last["features.0.weight"].is_contiguous(memory_format=torch.channels_last)
    assert nchw["features.0.weight"].is_contiguous()
    for k, v in nchw.items():
        torch.testing.assert_close(last[k], v, rtol=1e-4, atol=1e-5)
    hist = [pq.read_table(tmp_path / r / "history.parquet").to_pandas() for r in ("last", "nchw")]
    assert hist[0].train_loss.dropna().to_numpy() == pytest.approx(
        hist[1].train_loss.dropna().to_numpy(), rel=1e-4
    )
    model = build_model({"name": "lenet"}, (1, 28, 28), 10)
    model.load_state_dict(last)
    assert all(q.is_contiguous() for q in model.parameters())


def test_resume_state_of_other_settings_is_discarded(tmp_path, monkeypatch):
    with monkeypatch.context() as m:
        _interrupt_at_batch(m, 13)
        with pytest.raises(KeyboardInterrupt):
            train_run(settings(), tmp_path)
    train_run(settings(hparams={"lr": 0.001}), tmp_path)
    train_run(settings(hparams={"lr": 0.001}), tmp_path / "fresh")
    fresh = (tmp_path / "fresh" / "history.parquet").read_bytes()
    assert (tmp_path / "history.parquet").read_bytes() == fresh


@pytest.mark.parametrize("optimizer", ["sgd", "sgdm", "adam"])
def test_diverging_run_is_recorded_not_dropped(tmp_path, optimizer):
    """lr 1e3 drives the loss to ~1e11 (finite): far above the initial loss, so diverged."""
    hparams = {"lr": 1e3, "momentum": 0.9} if optimizer == "sgdm" else {"lr": 1e3}
    status = train_run(settings(optimizer=optimizer, hparams=hparams), tmp_path)
    assert status == "diverged"
    hist = pq.read_table(tmp_path / "history.parquet").to_pandas()
    limit = train_mod.divergence_limit(hist.train_loss.iloc[0], 10)
    assert hist.status.iloc[-1] == "diverged" and not hist.batch_loss.iloc[-1] <= limit
    assert (hist.status.iloc[:-1] == "ok").all()
    assert (
        pq.read_schema(tmp_path / "history.parquet")
        .metadata[b"gradnoise.settings"]
        .find(b'"status": "diverged"')
        >= 0
    )
    last = _state(tmp_path, 24)
    assert last["status"] == "diverged" and last["diverged_at"] == hist.iteration.iloc[-1]


def test_a_last_step_that_makes_the_weights_non_finite_marks_the_run_diverged(
    tmp_path, monkeypatch
):
    # the step overflows a weight to inf; the loss it was computed from was finite
    real_step = torch.optim.SGD.step

    def overflowing_step(self, *args, **kwargs):
        out = real_step(self, *args, **kwargs)
        with torch.no_grad():
            self.param_groups[0]["params"][0].view(-1)[0] = math.inf
        return out

    monkeypatch.setattr(torch.optim.SGD, "step", overflowing_step)
    status = train_run(
        settings(optimizer="sgd", hparams={"lr": 0.1}, iterations=1, checkpoints=[0, 1]), tmp_path
    )
    assert status == "diverged"
    assert _state(tmp_path, 1)["status"] == "diverged" and _state(tmp_path, 0)["status"] == "ok"


def test_learning_rate_drops_at_the_milestones_and_clipping_bounds_the_step(tmp_path):
    train_run(
        settings(optimizer="sgd", hparams={"lr": 0.5}, lr_milestones=[8], lr_gamma=0.1),
        tmp_path / "a",
    )
    hist = pq.read_table(tmp_path / "a" / "history.parquet").to_pandas()
    assert set(hist[hist.iteration <= 8].lr) == {0.5} and set(hist[hist.iteration > 8].lr) == {0.05}
    train_run(
        settings(
            optimizer="sgd", hparams={"lr": 0.5}, iterations=1, checkpoints=[1], clip_grad_norm=1e-3
        ),
        tmp_path / "b",
    )
    hist = pq.read_table(tmp_path / "b" / "history.parquet").to_pandas()
    assert hist.weight_distance.iloc[-1] == pytest.approx(0.5 * 1e-3, rel=1e-4)  # lr × clipped norm


def test_ghost_batchnorm_training_gives_batchnorm_checkpoints(tmp_path):
    bn = {"name": "mlp", "hidden": [16], "batchnorm": True}
    train_run(
        settings(model=bn, optimizer="sgdm", hparams={"lr": 0.1}, ghost_batch_size=8), tmp_path
    )
    from gradnoise.models import build_model

    plain = build_model(bn, (1, 28, 28), 10)
    plain.load_state_dict(_state(tmp_path, 24)["model"])  # eval-mode networks are plain BatchNorm
    assert int(plain[2].num_batches_tracked) == 24 * 32 // 8  # one update per ghost batch


def _train_source(tmp_path, **over):
    train_run(settings(seed=5, **over), tmp_path / "src")
    return str(tmp_path / "src" / "checkpoints" / "step24.pt")


def test_an_arm_starts_from_the_final_weights_of_its_source(tmp_path):
    init = _train_source(tmp_path)
    run = settings(seed=5, optimizer="sgd", hparams={"lr": 0.05}, init_from="pre")
    train_run(run, tmp_path / "ft", init=init)
    start = _state(tmp_path / "ft", 0)["model"]
    for k, v in _state(tmp_path / "src", 24)["model"].items():
        assert torch.equal(start[k], v)
    meta = json.loads(
        pq.read_schema(tmp_path / "ft" / "history.parquet").metadata[b"gradnoise.settings"]
    )
    assert meta["outcome"]["init"]["checkpoint"] == init


def test_a_source_checkpoint_of_other_settings_is_an_error_naming_it(tmp_path):
    from gradnoise.errors import InputError

    init = _train_source(tmp_path)
    with pytest.raises(InputError, match="step24.pt: checkpoint of another run"):
        train_run(settings(seed=6, init_from="pre"), tmp_path / "ft", init=init)
    with pytest.raises(InputError, match="missing.pt: checkpoint not found"):
        train_run(
            settings(seed=5, init_from="pre"), tmp_path / "ft", init=str(tmp_path / "missing.pt")
        )


def test_random_label_pretraining_is_seeded_recorded_and_stops_at_its_target(tmp_path):
    labels = {"copies": 2, "zero_fraction": 0.1, "seed": 3}
    run = settings(optimizer="sgd", hparams={"lr": 0.1}, random_labels=labels, until_train_acc=10.0)
    train_run(run, tmp_path / "a")
    train_run(run, tmp_path / "b")
    meta = json.loads(
        pq.read_schema(tmp_path / "a" / "history.parquet").metadata[b"gradnoise.settings"]
    )
    out = meta["outcome"]
    assert out["random_labels"]["n_examples"] == 800 and out["target_reached"] is True
    assert out["stopped_at"] == 0 or out["stopped_at"] % 8 == 0
    assert (tmp_path / "a" / "history.parquet").read_bytes() == (
        tmp_path / "b" / "history.parquet"
    ).read_bytes()
    missed = settings(
        optimizer="sgd", hparams={"lr": 0.1}, random_labels=labels, until_train_acc=100.0
    )
    train_run(missed, tmp_path / "c")
    meta = json.loads(
        pq.read_schema(tmp_path / "c" / "history.parquet").metadata[b"gradnoise.settings"]
    )
    assert (
        meta["outcome"]["target_reached"] is False
        and _state(tmp_path / "c", 24)["target_reached"] is False
    )


def test_random_label_copies_zero_a_fraction_and_leave_the_test_split_alone():
    from gradnoise.data import background, load_dataset, random_label_copies

    data = load_dataset("mnist_embedded", train_size=50, test_size=20)
    x, y = random_label_copies(data, 3, 0.25, seed=1)
    x2, y2 = random_label_copies(data, 3, 0.25, seed=1)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(y, random_label_copies(data, 3, 0.25, seed=2)[1])
    assert x.shape == (150, 1, 28, 28) and y.min() >= 0 and y.max() <= 9
    zero = background("mnist_embedded").reshape(-1)
    copies = x.reshape(50, 3, -1)
    original = data.x_train.reshape(50, 1, -1)
    changed = copies != original
    assert (copies[changed] == zero).all()  # values only ever set to a raw 0
    was_zero = (original == zero).sum(-1)
    now_zero = (copies == zero).sum(-1)
    assert (now_zero >= was_zero).all() and (now_zero - was_zero <= int(784 * 0.25)).all()
    assert data.x_test.shape == (20, 1, 28, 28)  # untouched
    # the chosen positions differ between the copies of one image
    assert not torch.equal(copies[:, 0] == zero, copies[:, 1] == zero)


def test_augmentation_is_seeded_and_shifts_within_the_padding():
    from gradnoise.augment import augment_batch

    x = torch.arange(2 * 8 * 8, dtype=torch.float32).reshape(2, 1, 8, 8) + 1
    bg = torch.zeros(1, 1, 1, 1)
    a = augment_batch(x, {"shift": 2, "flip": True}, bg, torch.Generator().manual_seed(0))
    b = augment_batch(x, {"shift": 2, "flip": True}, bg, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == x.shape
    shifted = augment_batch(x, {"shift": 2}, bg, torch.Generator().manual_seed(1))
    for img, orig in zip(shifted[:, 0], x[:, 0], strict=True):
        kept = img[img > 0]
        assert kept.numel() >= 6 * 6 and set(kept.tolist()) <= set(orig.flatten().tolist())
    assert not torch.equal(
        augment_batch(x, {"shift": 2}, bg, torch.Generator().manual_seed(2)), shifted
    )


def test_divergence_rule_is_non_finite_or_far_above_the_initial_loss():
    limit = train_mod.divergence_limit(0.01, 10)  # trained start: chance level sets the scale
    assert limit == pytest.approx(train_mod.DIVERGENCE_FACTOR * math.log(10))
    assert train_mod.diverged(math.nan, limit) and train_mod.diverged(math.inf, limit)
    assert train_mod.diverged(1.01 * limit, limit) and not train_mod.diverged(0.99 * limit, limit)


# the file-system operations through which finishing (and the io helpers it calls) writes
_FS_OPS = ["replace", "link", "unlink", "rmdir"]


def _finish_ops(monkeypatch, kill_at: int | None) -> list[str]:
    """Count the file-system operations of train.finish._finish; raise before the kill_at-th one."""
    done: list[str] = []
    inside = {"on": False}
    real_finish = finish_mod._finish

    def finish(*args, **kwargs):
        inside["on"] = True
        try:
            return real_finish(*args, **kwargs)
        finally:
            inside["on"] = False

    def counted(name, real):
        def op(*args, **kwargs):
            if inside["on"]:
                if len(done) + 1 == kill_at:
                    raise KeyboardInterrupt(f"killed before {name} #{kill_at}")
                done.append(name)
            return real(*args, **kwargs)

        return op

    monkeypatch.setattr(run_mod, "_finish", finish)
    for name in _FS_OPS:
        monkeypatch.setattr(finish_mod.os, name, counted(name, getattr(finish_mod.os, name)))
    return done


def _outputs(run_dir) -> dict[str, bytes]:
    files = [run_dir / "history.parquet", *sorted((run_dir / "checkpoints").glob("*.pt"))]
    return {f.name: f.read_bytes() for f in files}


FINISHING = {
    "ok": {},
    "target": dict(optimizer="sgdm", hparams={"lr": 0.05, "momentum": 0.9}, until_train_acc=30.0),
    "diverged": dict(optimizer="sgd", hparams={"lr": 1e3}),
}


@pytest.mark.parametrize("kind", FINISHING)
def test_a_kill_at_any_point_of_finishing_reruns_to_the_same_outputs(tmp_path, monkeypatch, kind):
    run = settings(**FINISHING[kind])
    with monkeypatch.context() as m:
        ops = _finish_ops(m, None)
        status = train_run(run, tmp_path / "clean")
    want = _outputs(tmp_path / "clean")
    assert len(ops) >= 4
    for k in range(1, len(ops) + 1):
        cut = tmp_path / f"cut{k}"
        with monkeypatch.context() as m:
            _finish_ops(m, k)
            with pytest.raises(KeyboardInterrupt):
                train_run(run, cut)
        assert train_run(run, cut) == status
        assert _outputs(cut) == want, f"killed before file operation {k} ({ops[k - 1]})"
        assert not (cut / ".resume").exists()


def test_resume_state_made_by_other_code_is_discarded(tmp_path, monkeypatch, caplog):
    """Kill, edit the code training imports, rerun: the run starts again from iteration 0."""
    with monkeypatch.context() as m:
        _interrupt_at_batch(m, 13)
        with pytest.raises(KeyboardInterrupt):
            train_run(settings(), tmp_path / "cut")
    state = torch.load(tmp_path / "cut" / ".resume" / "state.pt", weights_only=True)
    assert state["code"] == run_mod.code_digest() and state["iteration"] == 8
    with monkeypatch.context() as m, caplog.at_level("INFO", logger="gradnoise.train"):
        m.setattr(run_mod, "code_digest", lambda: "edited-optim-py")
        seen = []
        real_next = train_mod.BatchStream.next
        m.setattr(train_mod.BatchStream, "next", lambda s: seen.append(1) or real_next(s))
        train_run(settings(), tmp_path / "cut")
    assert "made by other code" in caplog.text and "resuming" not in caplog.text
    assert len(seen) == 24  # every iteration ran again
