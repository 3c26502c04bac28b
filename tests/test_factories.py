"""Config factories (DESIGN.md §12): models, data and losses outside the zoo through the stages, the
provenance they leave, a rerun when the user's file changes, and bad factories named by their key."""

from __future__ import annotations

import copy
import hashlib
import json
import math
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from torch import nn

from gradnoise.arms import expand_arms
from gradnoise.config import prepare_config
from gradnoise.errors import ConfigError
from gradnoise.io import load_checkpoint, read_settings
from gradnoise.noise import NoiseSettings, sample_checkpoint
from gradnoise.sharpness import loss_hvp, top_eigenvalue
from gradnoise.tasks import evaluate_any, task_from
from gradnoise.train import RunSettings, train_run

from conftest import copy_project, snakemake

# A user's module, written by the test: a recurrent network (not in the zoo) that says whether a
# sequence's first feature sums to more than zero, its data, and a loss factory with a setting.
USER_MODULE = """
import torch
from torch import nn


class Recurrent(nn.Module):
    def __init__(self, hidden):
        super().__init__()
        self.rnn = nn.GRU(3, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 2)

    def forward(self, x):
        return self.head(self.rnn(x)[0][:, -1])


def model(hidden=6):
    return Recurrent(hidden)


def data(n_train=96, n_test=40, steps=5):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n_train + n_test, steps, 3, generator=g)
    y = (x[:, :, 0].sum(1) > 0).long()
    return {"train": (x[:n_train], y[:n_train]), "test": (x[n_train:], y[n_train:])}


def loss(smoothing=0.0):
    def fn(net, batch):
        x, y = batch
        return nn.functional.cross_entropy(net(x), y, label_smoothing=smoothing)
    return fn


def not_a_model():
    return "a string"


def per_example_loss():
    return lambda net, batch: nn.functional.cross_entropy(net(batch[0]), batch[1], reduction="none")
"""


@pytest.fixture()
def user_dir(tmp_path, monkeypatch):
    """The working directory holds the user's module (`user_rnn.py`), as beside a project."""
    (tmp_path / "user_rnn.py").write_text(USER_MODULE)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    sys.modules.pop("user_rnn", None)
    if str(tmp_path) in sys.path:
        sys.path.remove(str(tmp_path))


RNN = {
    "dataset": {"factory": "user_rnn:data", "kwargs": {"n_train": 96}},
    "model": {"factory": "user_rnn:model", "kwargs": {"hidden": 6}},
    "loss": {"factory": "user_rnn:loss", "kwargs": {"smoothing": 0.05}},
}
CHAR_LM = {
    "dataset": {"factory": "gradnoise.char_lm:dataset", "kwargs": {"seq_len": 12, "max_train": 64}},
    "model": {
        "factory": "gradnoise.char_lm:model",
        "kwargs": {"seq_len": 12, "d_model": 8, "n_heads": 2, "n_layers": 1},
    },
}


def _config(task: dict, **extra) -> dict:
    exp = {
        **copy.deepcopy(task),
        "optimizers": {"sgdm": {"lr": 0.05}, "adam": {"lr": 0.01}},
        "seeds": [0],
        "batch_size": 16,
        "iterations": 6,
        "checkpoints": [6],
        "eval_every": 3,
        "device": "cpu",
        "threads": 1,
        "noise": {"mode": "sampled", "batch_size": 8, "n_batches": 12, "coords_per_layer": 4},
        "tails": {"bootstrap": 10},
        "sharpness": {"n_batches": 1, "batch_size": 16, "max_iter": 5, "hutchinson_samples": 2},
        **extra,
    }
    return {"experiments": {"e": exp}}


def _through_the_stages(cfg: dict, run_dir: Path) -> tuple[dict, object, object]:
    """Train the adam arm, then sample its noise and its sharpness as the stages do."""
    exp = cfg["experiments"]["e"]
    arm = expand_arms("e", exp)["adam"]
    run = {"experiment": "e", "arm": "adam", "optimizer": "adam", "seed": 0}
    settings = RunSettings(
        run, arm.training, exp["dataset"], exp["model"], 3, "cpu", exp.get("loss")
    )
    assert train_run(settings, run_dir) == "ok"
    ckpt = load_checkpoint(run_dir / "checkpoints" / "step6.pt")
    task = task_from(settings.as_dict(), "experiments.e")
    noise = NoiseSettings(mode="sampled", batch_size=8, n_batches=12, coords_per_layer=4)
    views = {"optimizer": "adam", "hparams": arm.training.hparams}
    samples, stats = sample_checkpoint(ckpt, views, noise, ["train", "test"], task)
    model = task.new_model()
    model.load_state_dict(ckpt["model"])
    batch = [(task.data.x_train[:16], task.data.y_train[:16])]
    params = list(model.parameters())
    top = top_eigenvalue(loss_hvp(model, batch, task.loss), params, max_iter=5, tol=1e-3, seed=0)
    return pq.read_table(run_dir / "history.parquet"), (samples, stats), top


@pytest.mark.parametrize("which", ["rnn", "char_lm"])
def test_a_model_outside_the_zoo_trains_and_is_measured_through_the_factories(user_dir, which):
    cfg = prepare_config(_config(RNN if which == "rnn" else CHAR_LM))
    history, (samples, stats), top = _through_the_stages(cfg, user_dir / "run")
    rows = history.to_pandas()
    final = rows[rows.evaluated].iloc[-1]
    # the accuracy of the outputs the loss saw: per sequence (RNN), per character (transformer)
    assert 0 <= final.train_acc <= 100 and 0 <= final.test_acc <= 100
    assert math.isfinite(final.test_loss)
    assert set(samples.column("split").to_pylist()) == {"train", "test"}
    assert {"raw", "preconditioned", "averaged"} <= set(stats.column("view").to_pylist())
    assert math.isfinite(top.value)  # second derivatives, through attention too
    made = read_settings(user_dir / "run" / "history.parquet")["factories"]
    source = Path(made["model"]["file"])
    assert made["model"]["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert made["model"]["kwargs"] == cfg["experiments"]["e"]["model"]["kwargs"]
    if which == "rnn":  # a file of the working directory is named relative to it
        assert made["model"]["file"] == "user_rnn.py" and made["loss"]["function"] == "loss"
    else:  # the corpus the data came from
        assert made["dataset"]["data"]["corpus"] == "pydoc_data.topics"


def test_the_accuracy_is_counted_only_for_class_scores_against_integer_targets():
    net = nn.Linear(3, 4)
    x = torch.randn(10, 3)
    ce = lambda m, b: nn.functional.cross_entropy(m(b[0]), b[1])  # noqa: E731
    loss, acc = evaluate_any(net, ce, x, torch.randint(0, 4, (10,)), chunk=3)
    assert loss == pytest.approx(ce(net, (x, torch.randint(0, 4, (10,)))).item(), abs=5)
    assert 0 <= acc <= 100 and acc * 10 / 100 == pytest.approx(round(acc * 10 / 100))
    mse = lambda m, b: ((m(b[0]) - b[1]) ** 2).mean()  # noqa: E731
    assert math.isnan(evaluate_any(net, mse, x, torch.randn(10, 4))[1])


BAD = [
    (
        "model",
        {"factory": "user_rnn"},
        r"experiments\.e\.model\.factory: expected 'package\.module:function'.*got 'user_rnn'",
    ),
    ("model", {"factory": "no_such_mod_x:model"}, r"experiments\.e\.model\.factory: cannot import"),
    ("model", {"factory": "user_rnn:nope"}, r"experiments\.e\.model\.factory: .*no attribute"),
    (
        "model",
        {"factory": "user_rnn:not_a_model"},
        r"experiments\.e\.model\.factory: .*returned a str",
    ),
    (
        "model",
        {"factory": "user_rnn:model", "kwargs": {"width": 3}},
        r"experiments\.e\.model: .*failed",
    ),
    (
        "dataset",
        {"factory": "user_rnn:model"},
        r"experiments\.e\.dataset\.factory: .*returned Recurrent",
    ),
    ("loss", {"factory": "user_rnn:per_example_loss"}, r"experiments\.e\.loss: .*scalar mean loss"),
    ("loss", {"factory": "user_rnn:data"}, r"experiments\.e\.loss\.factory: .*returned a dict"),
    (
        "model",
        {"name": "mlp"},
        r"experiments\.e\.model\.name: zoo model 'mlp' needs a zoo data set",
    ),
]


@pytest.mark.parametrize(("role", "entry", "message"), BAD)
def test_a_bad_factory_is_named_by_its_key_before_any_job(user_dir, role, entry, message):
    cfg = _config(RNN)
    cfg["experiments"]["e"][role] = entry
    with pytest.raises(ConfigError, match=message):
        prepare_config(cfg)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"augment": {"shift": 2}}, r"experiments\.e\.augment: needs image batches"),
        (
            {"arms": {"a": {"optimizer": "adam", "ghost_batch_size": 4}}},
            r"arms\.a\.ghost_batch_size",
        ),
    ],
)
def test_what_only_the_zoo_has_is_refused_with_factories(user_dir, extra, message):
    with pytest.raises(ConfigError, match=message):
        prepare_config(_config(RNN, **extra))
    cfg = _config(RNN)
    cfg["escape"] = {"enabled": True}
    with pytest.raises(ConfigError, match=r"escape\.enabled"):
        prepare_config(cfg)


@pytest.mark.workflow
def test_editing_the_users_factory_file_reruns_the_jobs_that_call_it(tmp_path):
    """The workflow on a user's module in its working directory: the train and noise jobs run it,
    their outputs record its checksum, and an edit to it reruns them (and only the runs of it)."""
    project = copy_project(tmp_path / "project")
    (project / "user_rnn.py").write_text(USER_MODULE)
    cfg = _config(RNN)
    (project / "config" / "user.yaml").write_text(json.dumps(cfg))
    target = "results/e/noise/adam/seed0/step6.parquet"
    snakemake(project, "--cores", "1", target, "--configfile", "config/user.yaml")
    meta = read_settings(project / target)
    digest = hashlib.sha256((project / "user_rnn.py").read_bytes()).hexdigest()
    assert meta["factories"]["model"]["sha256"] == digest
    with open(project / "user_rnn.py", "a") as f:
        f.write("\n# an edit\n")
    out = snakemake(project, "-n", "--cores", "1", target, "--configfile", "config/user.yaml")
    text = out.stdout
    assert "rule train:" in text and "rule noise:" in text
    reasons = [line for line in text.splitlines() if line.strip().startswith("reason:")]
    assert any("user_rnn.py" in line for line in reasons)
