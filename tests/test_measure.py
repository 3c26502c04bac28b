"""gradnoise.measure: the pipeline's numbers on a zoo model, models outside the zoo, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import gradnoise
from gradnoise import char_lm, cli
from gradnoise.data import load_dataset
from gradnoise.io import ALL
from gradnoise.measurement import WHOLE_NETWORK, MeasureError, measure
from gradnoise.models import build_model
from gradnoise.noise import NoiseSettings, sample_checkpoint
from gradnoise.optim import build_optimizer
from gradnoise.tails import TailSettings, analyze
from gradnoise.tasks import zoo_task

TAILS = TailSettings(bootstrap=20, min_effective_draws=5)


def _ce(net: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    x, y = batch
    return nn.functional.cross_entropy(net(x), y)


def _steps(model, loss_fn, opt, data, n: int, batch: int) -> None:
    """`n` optimizer steps on consecutive batches of `data`, so that the optimizer has state."""
    x, y = data
    for k in range(n):
        opt.zero_grad()
        loss_fn(model, (x[k * batch : (k + 1) * batch], y[k * batch : (k + 1) * batch])).backward()
        opt.step()


@pytest.fixture(scope="module")
def lenet_checkpoint():
    data = load_dataset("mnist_embedded", train_size=240, test_size=100)
    torch.manual_seed(1)
    run = {
        "model": {"name": "lenet"},
        "optimizer": "adam",
        "hparams": {"lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-8},
    }
    model = build_model(run["model"], data.input_shape, 10)
    opt = build_optimizer("adam", model.parameters(), run["hparams"])
    _steps(model, _ce, opt, (data.x_train, data.y_train), n=3, batch=40)
    ckpt = {"status": "ok", "model": model.state_dict(), "optimizer": opt.state_dict()}
    return data, run, ckpt


def test_measure_returns_the_pipelines_numbers_on_a_zoo_checkpoint(lenet_checkpoint):
    data, run, ckpt = lenet_checkpoint
    settings = NoiseSettings(
        mode="sampled", batch_size=20, n_batches=40, coords_per_layer=8, seed=5
    )
    samples, stats = sample_checkpoint(ckpt, run, settings, ["train"], zoo_task(data, run["model"]))
    ident = {"experiment": "e", "arm": "adam", "seed": 0, "step": 3, "status": "ok"}
    pipeline = analyze(samples, stats, {**run, **ident}, TAILS).to_pandas()

    model = build_model(run["model"], data.input_shape, 10)
    model.load_state_dict(ckpt["model"])
    opt = build_optimizer("adam", model.parameters(), run["hparams"])
    opt.load_state_dict(ckpt["optimizer"])
    table = measure(
        model,
        _ce,
        (data.x_train, data.y_train),
        batch_size=20,
        n_draws=40,
        views=("raw", "preconditioned", "averaged"),
        optimizer=opt,
        coords_per_layer=8,
        seed=5,
        device="cpu",
        micro_batch=50,
        tails=TAILS,
    )
    alpha = pipeline[pipeline["quantity"] == "alpha"].copy()
    alpha["layer"] = alpha["layer"].replace(ALL, WHOLE_NETWORK)
    keys = ["layer", "view", "estimator"]
    alpha = alpha.rename(columns={c: f"p_{c}" for c in alpha.columns if c not in keys})
    merged = table.merge(alpha, on=["layer", "view", "estimator"], validate="one_to_one")
    assert len(merged) == len(table) == len(alpha) == 3 * 5 * (1 + len(list(model.parameters())))
    for ours, theirs in [
        ("alpha", "value"),
        ("ci_low", "ci_low"),
        ("ci_high", "ci_high"),
        ("null", "null_value"),
        ("null_ci_low", "null_ci_low"),
    ]:
        np.testing.assert_allclose(merged[ours], merged[f"p_{theirs}"], rtol=1e-6, equal_nan=True)
    assert (merged["verdict"] == merged["p_verdict"]).all()
    assert merged["alpha"].notna().sum() > len(merged) / 2
    # the covariance summaries and norms are the noise stage's too
    rank = pipeline[(pipeline["quantity"] == "effective_rank") & (pipeline["layer"] == ALL)]
    whole = table[table["layer"] == WHOLE_NETWORK].groupby("view")["effective_rank"].first()
    np.testing.assert_allclose(whole[rank["view"]].to_numpy(), rank["value"].to_numpy(), rtol=1e-6)
    norms = samples.to_pandas().groupby(["view", "layer"], observed=True)["norm"].mean()
    conv = table[table["layer"] == "features.0.weight"].groupby("view")["noise_norm"].first()
    np.testing.assert_allclose(conv["raw"], norms[("raw", "features.0.weight")], rtol=1e-12)
    assert (table["n_draws"] == 40).all()
    assert (
        table.loc[table["layer"] == WHOLE_NETWORK, "numel"] == stats.column("numel")[0].as_py()
    ).all()


def test_measure_is_exported_lazily():
    assert gradnoise.measure is measure
    out = subprocess.run(
        [sys.executable, "-c", "import gradnoise, sys; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "False"


def _check_table(table: pd.DataFrame, model: nn.Module, p: int) -> None:
    names = [WHOLE_NETWORK] + [n for n, _ in model.named_parameters()]
    assert list(dict.fromkeys(table["layer"])) == names
    assert set(table["estimator"]) == {
        "pooled",
        "pooled_standardized",
        "per_coordinate",
        "mcculloch",
        "hill",
    }
    whole = table[(table["layer"] == WHOLE_NETWORK) & (table["estimator"] == "per_coordinate")]
    assert np.isfinite(whole[["alpha", "ci_low", "ci_high", "null"]].to_numpy()).all()
    assert (whole["ci_low"] <= whole["alpha"]).all() and (whole["alpha"] <= whole["ci_high"]).all()
    assert (table["noise_norm"] > 0).all()
    assert (table["effective_rank"] >= 1).all() and (table["effective_rank"] <= p).all()
    assert ((table["top_share"] > 0) & (table["top_share"] <= 1)).all()
    assert (table["n_draws"] == p).all()


def test_measure_runs_on_a_causal_character_transformer_with_adam_views():
    x, y = char_lm.train_data(seq_len=16, max_train=120)
    torch.manual_seed(0)
    model = char_lm.model(seq_len=16, d_model=16, n_heads=2, n_layers=1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    _steps(model, char_lm.loss, opt, (x, y), n=3, batch=8)
    table = measure(
        model,
        char_lm.loss,
        (x, y),
        batch_size=8,
        n_draws=30,
        views=("raw", "preconditioned"),
        optimizer=opt,
        coords_per_layer=6,
        device="cpu",
        tails=TAILS,
    )
    _check_table(table, model, 30)
    assert set(table["view"]) == {"raw", "preconditioned"}
    assert any("self_attn.in_proj_weight" in name for name in table["layer"])
    assert model.training  # the training flag is restored


class _GRUTagger(nn.Module):
    """A recurrent sequence classifier: embedding → GRU → linear on the last state."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(12, 8)
        self.gru = nn.GRU(8, 10, batch_first=True)
        self.out = nn.Linear(10, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.gru(self.embed(x))
        return self.out(h[:, -1])


class _Sequences(torch.utils.data.Dataset):
    """A map-style Dataset of (sequence, label) pairs: the label is the first token mod 3."""

    def __init__(self, n: int) -> None:
        gen = torch.Generator().manual_seed(0)
        self.x = torch.randint(0, 12, (n, 7), generator=gen)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.x[i, 0] % 3


def test_measure_runs_on_a_recurrent_network_over_a_map_style_dataset():
    torch.manual_seed(0)
    model = _GRUTagger()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.5)
    table = measure(
        model,
        _ce,
        _Sequences(200),
        batch_size=5,
        n_draws=40,
        views=("raw", "averaged"),
        optimizer=opt,
        coords_per_layer=6,
        device="cpu",
        tails=TAILS,
    )
    _check_table(table, model, 40)
    assert set(table["view"]) == {"raw", "averaged"}


def test_a_batch_callable_gives_the_same_table_as_the_tensors_it_indexes():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 2))
    x = torch.randn(100, 4)
    y = (x[:, 0] > 0).long()

    def batch(idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x[idx], y[idx]

    kw = {"batch_size": 4, "n_draws": 30, "coords_per_layer": 4, "device": "cpu", "tails": TAILS}
    a = measure(model, _ce, (x, y), **kw)
    b = measure(model, _ce, (batch, 100), **kw)
    pd.testing.assert_frame_equal(a, b)


def _tiny():
    model = nn.Linear(3, 2)
    return model, (torch.randn(20, 3), torch.randint(0, 2, (20,)))


def _kw(**extra):
    return {"batch_size": 4, "n_draws": 3, "device": "cpu", **extra}


@pytest.mark.parametrize(
    ("loss_fn", "data", "kw", "names"),
    [
        (
            lambda m, b: nn.functional.cross_entropy(m(b[0]), b[1], reduction="none"),
            None,
            {},
            "loss_fn",
        ),
        (lambda m, b: m(b[0]).sum() * float("nan"), None, {}, "loss_fn"),
        (lambda m, b: 1.0, None, {}, "loss_fn"),
        (lambda m, b: torch.tensor(1.0), None, {}, "loss_fn"),
        (_ce, (torch.randn(3, 3), torch.zeros(3, dtype=torch.long)), {}, "data"),
        (_ce, (torch.randn(20, 3), torch.zeros(19, dtype=torch.long)), {}, "data"),
        (_ce, "not data", {}, "data"),
        ("not callable", None, {}, "loss_fn"),
        (_ce, None, {"n_draws": 1}, "n_draws"),
        (_ce, None, {"batch_size": 2.5}, "batch_size"),
        (_ce, None, {"views": ("raw", "fancy")}, "views"),
        (_ce, None, {"views": ("preconditioned",)}, "views"),
        (_ce, None, {"optimizer": "adam"}, "optimizer"),
    ],
)
def test_bad_input_is_named_before_any_work(monkeypatch, loss_fn, data, kw, names):
    import gradnoise.measurement as m

    def no_work(*args, **kwargs):
        raise AssertionError("the sampler ran")

    monkeypatch.setattr(m, "sample_noise", no_work)
    model, default = _tiny()
    with pytest.raises(MeasureError, match=rf"^{names}:"):
        measure(model, loss_fn, default if data is None else data, **_kw(**kw))


def test_an_optimizer_of_other_parameters_or_without_state_is_refused(monkeypatch):
    model, data = _tiny()
    other = torch.optim.Adam(nn.Linear(3, 2).parameters())
    with pytest.raises(MeasureError, match="^optimizer:"):
        measure(model, _ce, data, views=("averaged",), optimizer=other, **_kw())
    fresh = torch.optim.Adam(model.parameters())
    with pytest.raises(MeasureError, match="^optimizer: no second-moment"):
        measure(model, _ce, data, views=("preconditioned",), optimizer=fresh, **_kw())
    with pytest.raises(MeasureError, match="^model:"):
        measure("model", _ce, data, **_kw())


ROOT = Path(__file__).resolve().parents[1]
CHAR_LM = [
    "--model",
    "gradnoise.char_lm:model",
    "--model-kwargs",
    '{"seq_len": 12, "d_model": 8, "n_heads": 2, "n_layers": 1}',
    "--data",
    "gradnoise.char_lm:train_data",
    "--data-kwargs",
    '{"seq_len": 12, "max_train": 100}',
    "--loss",
    "gradnoise.char_lm:loss",
]


def _gradnoise(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, "-m", "gradnoise.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )


def test_the_command_measures_the_char_transformer_from_factories_and_a_checkpoint(tmp_path):
    torch.manual_seed(3)
    weights = char_lm.model(seq_len=12, d_model=8, n_heads=2, n_layers=1).state_dict()
    torch.save({"model": weights, "step": 0}, tmp_path / "ckpt.pt")
    out = _gradnoise(
        "measure",
        *CHAR_LM,
        "--checkpoint",
        "ckpt.pt",
        "--batch-size",
        "4",
        "--draws",
        "20",
        "--coords-per-layer",
        "4",
        "--bootstrap",
        "10",
        "--out",
        "t/table.parquet",
        "--figure",
        "layers.png",
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    table = pd.read_parquet(tmp_path / "t" / "table.parquet")
    assert table["layer"].iloc[0] == WHOLE_NETWORK and (table["n_draws"] == 20).all()
    assert (tmp_path / "layers.png").read_bytes()[:4] == b"\x89PNG"
    # the checkpoint's weights were measured: the same call on them in-process gives the same α̂
    model = char_lm.model(seq_len=12, d_model=8, n_heads=2, n_layers=1)
    model.load_state_dict(weights)
    x, y = char_lm.train_data(seq_len=12, max_train=100)
    direct = measure(
        model,
        char_lm.loss,
        (x, y),
        batch_size=4,
        n_draws=20,
        coords_per_layer=4,
        device="cpu",
        tails=TailSettings(bootstrap=10),
    )
    np.testing.assert_allclose(table["alpha"], direct["alpha"], rtol=1e-6, equal_nan=True)


def test_the_command_gives_the_views_of_a_saved_optimizer_state(tmp_path, monkeypatch):
    """--optimizer: a plain state dict with --optimizer-name, or a pipeline checkpoint that names
    its optimizer; the preconditioned and averaged views come from the state, as in-process."""
    torch.manual_seed(3)
    model = char_lm.model(seq_len=12, d_model=8, n_heads=2, n_layers=1)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    x, y = char_lm.train_data(seq_len=12, max_train=100)
    _steps(model, char_lm.loss, opt, (x, y), n=2, batch=8)
    torch.save(opt.state_dict(), tmp_path / "adam.pt")
    settings = json.dumps({"run": {"optimizer": "adam"}})
    ckpt = {"model": model.state_dict(), "optimizer": opt.state_dict(), "settings": settings}
    torch.save(ckpt, tmp_path / "ckpt.pt")
    common = [*CHAR_LM, "--batch-size", "4", "--draws", "20", "--coords-per-layer", "4"]
    common += ["--bootstrap", "10", "--checkpoint", "ckpt.pt", "--device", "cpu"]
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="--optimizer-name: required"):
        cli.main(["measure", *common, "--optimizer", "adam.pt", "--out", "t.parquet"])
    cli.main(
        ["measure", *common, "--optimizer", "adam.pt", "--optimizer-name", "adam"]
        + ["--out", "a.parquet"]
    )
    cli.main(["measure", *common, "--optimizer", "ckpt.pt", "--out", "b.parquet"])
    a, b = (pd.read_parquet(tmp_path / f) for f in ("a.parquet", "b.parquet"))
    assert set(a["view"]) == {"raw", "preconditioned", "averaged"}
    direct = measure(
        model,
        char_lm.loss,
        (x, y),
        batch_size=4,
        n_draws=20,
        views=("raw", "preconditioned", "averaged"),
        optimizer=opt,
        coords_per_layer=4,
        device="cpu",
        tails=TailSettings(bootstrap=10),
    )
    for table in (a, b):
        np.testing.assert_allclose(table["alpha"], direct["alpha"], rtol=1e-6, equal_nan=True)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("--model", "no_such_module:model"), "--model: cannot import 'no_such_module'"),
        (("--loss", "gradnoise.char_lm:nothing"), "--loss: 'gradnoise.char_lm' has no attribute"),
        (("--data", "gradnoise.char_lm"), "--data: expected 'package.module:function'"),
        (("--model", "gradnoise.char_lm:corpus_provenance"), "--model: the factory failed"),
        (("--model", "builtins:dict"), "--model: builtins:dict returned dict"),
        (("--data-kwargs", "[1]"), "--data-kwargs: expected a JSON object"),
    ],
)
def test_the_command_names_the_bad_factory(tmp_path, change, message):
    args = list(CHAR_LM)
    i = args.index(change[0])
    args[i + 1] = change[1]
    out = _gradnoise(
        "measure", *args, "--batch-size", "4", "--draws", "5", "--out", "t.parquet", cwd=tmp_path
    )
    assert out.returncode != 0
    assert message in out.stderr
    assert not (tmp_path / "t.parquet").exists()


def test_the_command_is_a_console_script():
    import tomllib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["gradnoise"] == "gradnoise.cli:main"


def _readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Measure your own model") :]
    return section[section.index("```python\n") + 10 : section.index("```\n\n")]


@pytest.mark.parametrize("source", ["examples", "README"])
def test_the_examples_run_as_written(tmp_path, source):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    script = ROOT / "examples" / "measure_own_model.py"
    if source == "README":
        script = tmp_path / "readme_example.py"
        script.write_text(_readme_example())
    out = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert "(network)" in out.stdout and "self_attn.in_proj_weight" in out.stdout
