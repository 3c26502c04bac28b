"""The schema and the cross-field checks reject bad configs before any job runs, naming key and values."""

from __future__ import annotations

import pytest
import yaml

from gradnoise.cli import main as cli_main
from gradnoise.config import ConfigError, load_config_file, prepare_config

from conftest import snakemake


def _exp(cfg: dict) -> dict:
    return cfg["experiments"]["test"]


BAD = [
    (
        "unknown top-level key",
        lambda c: c.update(bogus=1),
        r"<top level>: unknown key\(s\) 'bogus'; allowed keys: claims, escape, experiments",
    ),
    (
        "unknown experiment key",
        lambda c: _exp(c).update(lrate=0.1),
        r"experiments\.test: unknown key\(s\) 'lrate'",
    ),
    (
        "unknown optimizer",
        lambda c: _exp(c)["optimizers"].update(rmsprop={"lr": 0.1}),
        r"experiments\.test\.optimizers: 'rmsprop' is not allowed; allowed values: sgd, sgdm, adam, adamw, adai, adaiw",
    ),
    (
        "unknown model",
        lambda c: _exp(c)["model"].update(name="transformer"),
        r"experiments\.test\.model\.name: 'transformer' is not allowed; allowed values: mlp, lenet",
    ),
    (
        "unknown dataset",
        lambda c: _exp(c)["dataset"].update(name="imagenet"),
        r"experiments\.test\.dataset\.name: 'imagenet' is not allowed; allowed values: mnist_embedded, mnist",
    ),
    (
        "negative learning rate",
        lambda c: _exp(c)["optimizers"]["sgd"].update(lr=-0.1),
        r"experiments\.test\.optimizers\.sgd\.lr: -0\.1 is less than or equal to the minimum of 0",
    ),
    (
        "zero learning rate",
        lambda c: _exp(c)["optimizers"]["adam"].update(lr=0),
        r"experiments\.test\.optimizers\.adam\.lr",
    ),
    (
        "checkpoint beyond the run",
        lambda c: _exp(c).update(checkpoints=[0, 31]),
        r"experiments\.test\.checkpoints: \[31\] beyond the run; allowed: 0\.\.30",
    ),
    (
        "wrong type",
        lambda c: _exp(c).update(iterations="30"),
        r"experiments\.test\.iterations: '30' is not of type 'integer'",
    ),
    (
        "option of another optimizer",
        lambda c: _exp(c)["optimizers"]["sgd"].update(momentum=0.9),
        r"experiments\.test\.optimizers\.sgd: unknown key\(s\) 'momentum'; allowed keys: lr, weight_decay",
    ),
    (
        "momentum out of range",
        lambda c: _exp(c)["optimizers"]["sgdm"].update(momentum=1.0),
        r"experiments\.test\.optimizers\.sgdm\.momentum",
    ),
    (
        "bad noise mode",
        lambda c: _exp(c)["noise"].update(mode="exact"),
        r"experiments\.test\.noise\.mode: 'exact' is not allowed; allowed values: reference, sampled",
    ),
    (
        "bad basin",
        lambda c: c["simulate"].update(basins=["donut"]),
        r"simulate\.basins\.0: 'donut' is not allowed; allowed values: box, ellipsoid, valley",
    ),
    (
        "32×32 model on digits",
        lambda c: _exp(c)["model"].update(name="vgg11"),
        r"experiments\.test\.model\.name: 'vgg11' needs 32×32 inputs",
    ),
    ("no seeds", lambda c: _exp(c).update(seeds=[]), r"experiments\.test\.seeds"),
    ("bad device", lambda c: _exp(c).update(device="tpu"), r"experiments\.test\.device"),
    (
        "job resources of an unknown stage",
        lambda c: _exp(c).update(resources={"tails": {"mem_mb": 1000}}),
        r"experiments\.test\.resources: unknown key\(s\) 'tails'; allowed keys: noise, sharpness, train",
    ),
    (
        "training batch larger than the training split",
        lambda c: _exp(c).update(batch_size=801),
        r"experiments\.test\.batch_size: 801 is larger than the training split \(800 examples\)",
    ),
    (
        "too little memory for a job",
        lambda c: _exp(c).update(resources={"noise": {"mem_mb": 100}}),
        r"experiments\.test\.resources\.noise\.mem_mb: 100 is less than the minimum of 256",
    ),
]


def _arms(c: dict) -> dict:
    """Turn the test experiment into one with arms: a small-batch reference and a large batch."""
    e = _exp(c)
    e["model"] = {"name": "mlp", "hidden": [24], "batchnorm": True}
    e["arms"] = {
        "sb": {"optimizer": "sgdm"},
        "lb": {"optimizer": "sgdm", "batch_size": 200, "reference": "sb", "lr_scaling": "sqrt"},
    }
    return e["arms"]


BAD += [
    (
        "ghost batch larger than the batch",
        lambda c: _arms(c)["lb"].update(ghost_batch_size=400),
        r"experiments\.test\.arms\.lb\.ghost_batch_size: 400 is larger than the arm's batch_size \(200\)",
    ),
    (
        "fewer than two updates per epoch",
        lambda c: _arms(c)["lb"].update(batch_size=500),
        r"experiments\.test\.arms\.lb\.batch_size: 500 leaves 1 update\(s\) per epoch of 800 examples",
    ),
    (
        "regime adaptation without a reference",
        lambda c: _arms(c).update(ra={"optimizer": "sgdm", "regime_adaptation": True}),
        r"experiments\.test\.arms\.ra\.regime_adaptation: needs a small-batch `reference` arm",
    ),
    (
        "ghost batch normalization without batch normalization",
        lambda c: (_arms(c)["lb"].update(ghost_batch_size=32), _exp(c)["model"].pop("batchnorm")),
        r"experiments\.test\.arms\.lb\.ghost_batch_size: model 'mlp' has no BatchNorm layer",
    ),
    (
        "initialization from an arm that does not exist",
        lambda c: _arms(c).update(ft={"optimizer": "sgd", "init_from": "pretrain"}),
        r"experiments\.test\.arms\.ft\.init_from: 'pretrain' is not an arm of this experiment; allowed: sb, lb, ft",
    ),
    (
        "arms initialized from each other",
        lambda c: _arms(c).update(
            a={"optimizer": "sgd", "init_from": "b"}, b={"optimizer": "sgd", "init_from": "a"}
        ),
        r"experiments\.test\.arms\.a: arms depend on each other in a cycle \(a → b → a\)",
    ),
    (
        "zero-out fraction of 1",
        lambda c: _arms(c).update(
            pre={"optimizer": "sgd", "random_labels": {"zero_fraction": 1.0}}
        ),
        r"experiments\.test\.arms\.pre\.random_labels\.zero_fraction: 1\.0 is greater than or equal to the maximum of 1",
    ),
    (
        "no copies of the images",
        lambda c: _arms(c).update(pre={"optimizer": "sgd", "random_labels": {"copies": 0}}),
        r"experiments\.test\.arms\.pre\.random_labels\.copies: 0 is less than the minimum of 1",
    ),
    (
        "accuracy target above 100",
        lambda c: _arms(c).update(pre={"optimizer": "sgd", "until_train_acc": 101}),
        r"experiments\.test\.arms\.pre\.until_train_acc: 101 is greater than the maximum of 100",
    ),
    (
        "accuracy target of 0",
        lambda c: _arms(c).update(pre={"optimizer": "sgd", "until_train_acc": 0}),
        r"experiments\.test\.arms\.pre\.until_train_acc: 0 is less than or equal to the minimum of 0",
    ),
    (
        "an option of another optimizer in an arm",
        lambda c: _arms(c).update(x={"optimizer": "sgd", "hparams": {"momentum": 0.9}}),
        r"experiments\.test\.arms\.x\.hparams: unknown key\(s\) 'momentum'; allowed keys: lr, weight_decay",
    ),
]


def _lb(c: dict) -> dict:
    return c["experiments"]["test_lb"]


# configs that ran, or failed late inside a job, before these checks
BAD += [
    (
        "NaN learning rate",
        lambda c: _exp(c)["optimizers"]["sgd"].update(lr=float("nan")),
        r"experiments\.test\.optimizers\.sgd\.lr: nan is not allowed; allowed: a finite number",
    ),
    (
        "infinite learning rate",
        lambda c: _arms(c).update(x={"optimizer": "adam", "hparams": {"lr": float("inf")}}),
        r"experiments\.test\.arms\.x\.hparams\.lr: inf is not allowed; allowed: a finite number",
    ),
    (
        "empty results folder",
        lambda c: c.update(results=""),
        r"config key results: '' should be non-empty",
    ),
    (
        "blank results folder",
        lambda c: c.update(results="  "),
        r"config key results: '  ' does not match",
    ),
    (
        "integer-valued float seed",
        lambda c: _exp(c).update(seeds=[3.0]),
        r"experiments\.test\.seeds\.0: 3\.0 is not of type 'integer'",
    ),
    (
        "integer-valued float batch size",
        lambda c: _exp(c).update(batch_size=32.0),
        r"experiments\.test\.batch_size: 32\.0 is not of type 'integer'",
    ),
    (
        "seed beyond numpy and torch",
        lambda c: _exp(c).update(seeds=[2**70]),
        r"experiments\.test\.seeds\.0: 1180591620717411303424 is greater than the maximum of 4294967295",
    ),
    (
        "seed of 2**32",
        lambda c: _exp(c)["noise"].update(seed=2**32),
        r"experiments\.test\.noise\.seed: 4294967296 is greater than the maximum of 4294967295",
    ),
    (
        "experiment name that reads as an option",
        lambda c: c["experiments"].update({"-x": c["experiments"].pop("test")}),
        r"config key experiments: '-x' does not match '\^\[A-Za-z0-9_\]\[A-Za-z0-9_-\]\*\$'",
    ),
    (
        "sampled noise batches as large as the split",
        lambda c: _exp(c)["noise"].update(batch_size=800),
        r"experiments\.test\.noise\.batch_size: 800 is not smaller than the smaller split \(800 "
        r"examples\).*allowed: 1 … 799",
    ),
    (
        "sampled noise batches larger than the split",
        lambda c: _exp(c)["noise"].update(batch_size=1000),
        r"experiments\.test\.noise\.batch_size: 1000 is not smaller",
    ),
    (
        "reversed exit-ratio band",
        lambda c: c.setdefault("claims", {}).update(exit_ratio_band=[1.25, 0.8]),
        r"claims\.exit_ratio_band: \[1\.25, 0\.8\] is reversed; allowed: \[low, high\] with low ≤ high",
    ),
    (
        "reversed alpha window",
        lambda c: c.setdefault("claims", {}).update(alpha_window=[30, 10]),
        r"claims\.alpha_window: \[30, 10\] is reversed",
    ),
    (
        "ghost batches leaving a one-example chunk",
        lambda c: _lb(c)["arms"]["lb_lr_gbn"].update(ghost_batch_size=127),
        r"test_lb\.arms\.lb_lr_gbn\.ghost_batch_size: 127 leaves a ghost batch of 1 example "
        r"\(batch_size 128 = 1 × 127 \+ 1\).*allowed: sizes g ≤ 128 with 128 mod g ≠ 1",
    ),
]


@pytest.mark.parametrize(("case", "mutate", "message"), BAD, ids=[b[0] for b in BAD])
def test_malformed_config_is_rejected_naming_the_key(test_config, case, mutate, message):
    mutate(test_config)
    with pytest.raises(ConfigError, match=message):
        prepare_config(test_config)


@pytest.mark.parametrize("name", ["config.yaml", "test.yaml", "paper.yaml", "char_lm.yaml"])
def test_shipped_configs_are_valid(root, name):
    cfg = load_config_file(root / "config" / name)
    assert cfg["experiments"]


def test_defaults_are_filled_through_schema_references(test_config):
    cfg = prepare_config(test_config)
    exp = _exp(cfg)
    assert exp["optimizers"]["adam"]["betas"] == [0.9, 0.999]
    assert exp["optimizers"]["sgd"]["weight_decay"] == 0.0
    assert exp["tails"]["ci_level"] == 0.95
    assert cfg["claims"]["alpha_margin"] == 0.05
    assert exp["resources"]["noise"] == {"mem_mb": 4000, "runtime": 120}


def test_snakemake_rejects_a_bad_config_before_any_job(root, tmp_path, test_config):
    _exp(test_config)["optimizers"]["sgd"]["lr"] = -1
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(test_config))
    out = snakemake(
        root,
        "-n",
        "--cores",
        "1",
        "--configfile",
        str(path),
        "-d",
        str(tmp_path / "wd"),
        check=False,
    )
    assert out.returncode != 0
    assert "experiments.test.optimizers.sgd.lr" in out.stderr + out.stdout
    assert not (tmp_path / "wd" / "results").exists()


def test_arms_inherit_and_scale_from_their_reference(test_config):
    from gradnoise.arms import expand_arms

    arms = _arms(test_config)
    arms["ra"] = {
        "optimizer": "sgdm",
        "batch_size": 200,
        "reference": "sb",
        "lr_scaling": "sqrt",
        "regime_adaptation": True,
        "ghost_batch_size": 32,
    }
    _exp(test_config)["epochs"] = 2
    del _exp(test_config)["iterations"]
    _exp(test_config)["lr_schedule"] = {"milestones": [0.5]}
    cfg = prepare_config(test_config)
    out = expand_arms("test", _exp(cfg))
    sb, lb, ra = (out[a].training for a in ("sb", "lb", "ra"))
    assert sb.hparams == {"lr": 0.05, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0}
    assert sb.iterations == 2 * (800 // 32) == 50  # epochs × updates per epoch
    assert lb.iterations == 2 * (800 // 200) == 8  # same epochs, fewer updates
    assert lb.hparams["lr"] == pytest.approx(0.05 * (200 / 32) ** 0.5)  # √(B/B_ref)
    # regime adaptation: epochs × ⌈B/B_ref⌉, i.e. at least as many updates as the reference
    assert ra.iterations == 2 * 7 * (800 // 200) == 56 and ra.ghost_batch_size == 32
    assert (sb.lr_milestones, lb.lr_milestones, ra.lr_milestones) == ([25], [4], [28])
    # checkpoints: those inside each run, plus its end
    assert (
        sb.checkpoints == [10, 30, 50] and lb.checkpoints == [8] and ra.checkpoints == [10, 30, 56]
    )


BAD_FILES = [
    ("empty mapping", "{}\n", r"empty mapping \{\}; allowed: a mapping"),
    ("empty file", "", r"holds nothing; allowed: a mapping"),
    ("a list", "- experiments\n", r"holds list; allowed: a mapping"),
    ("broken YAML", "experiments: {test: [\n", r"not valid YAML"),
    (
        "duplicate key",
        "results: a\nresults: b\n",
        r"not valid YAML .*key 'results' given twice \(first at line 1\)",
    ),
]


@pytest.mark.parametrize(("case", "text", "message"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_a_bad_config_file_is_rejected_naming_it(tmp_path, case, text, message):
    path = tmp_path / "my.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"config file {path}: {message}"):
        load_config_file(path)
    with pytest.raises(ConfigError, match=rf"config file {path}"):
        prepare_config({"experiments": {}}, files=[path])


@pytest.mark.parametrize(
    ("case", "text", "message"),
    [*BAD_FILES, ("bad bytes", "results: \xc3\x28\n", r"not valid YAML")],
    ids=[*(b[0] for b in BAD_FILES), "bad bytes"],
)
def test_check_config_names_the_file_snakemake_would_not(tmp_path, case, text, message):
    """Snakemake's own --configfile loader stops on an empty, non-mapping or broken file before the
    workflow runs, without naming it (snakemake issue #2439): `gradnoise check-config` names it."""
    path = tmp_path / "my.yaml"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(SystemExit, match=rf"^config file {path}: {message}"):
        cli_main(["check-config", str(path)])


def test_check_config_names_the_file_and_the_key_and_passes_a_valid_file(tmp_path, root, capsys):
    cfg = yaml.safe_load((root / "config" / "test.yaml").read_text())
    cfg["experiments"]["test"]["optimizers"]["sgd"]["lr"] = float("nan")
    path = tmp_path / "nan.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(
        SystemExit, match=rf"^config file {path}: config key experiments\.test\.optimizers\.sgd\.lr"
    ):
        cli_main(["check-config", str(path)])
    broken = tmp_path / "broken.yaml"
    broken.write_text("results: r\nexperiments: {test: [\n")
    with pytest.raises(SystemExit, match=rf'in "{broken}", line 3'):  # the line, in the file
        cli_main(["check-config", str(broken)])
    cli_main(["check-config", str(root / "config" / "test.yaml")])
    out = capsys.readouterr().out
    assert out.startswith(f"config file {root / 'config' / 'test.yaml'}: valid; experiments test ")


def test_a_duplicate_key_deep_in_an_experiment_is_rejected(tmp_path, root):
    text = (root / "config" / "test.yaml").read_text()
    path = tmp_path / "dup.yaml"
    path.write_text(text.replace("    seeds: [3, 7]\n", "    seeds: [3, 7]\n    seeds: [1]\n", 1))
    with pytest.raises(ConfigError, match=r"key 'seeds' given twice"):
        load_config_file(path)


def test_snakemake_refuses_an_empty_configfile_instead_of_running_the_default(root, tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("{}\n")
    out = snakemake(
        root,
        "-n",
        "--cores",
        "1",
        "--configfile",
        str(path),
        "-d",
        str(tmp_path / "wd"),
        check=False,
    )
    assert out.returncode != 0
    assert f"config file {path}: empty mapping" in out.stderr + out.stdout
