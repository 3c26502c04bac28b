"""The ``gradnoise`` command. ``gradnoise measure``: the gradient noise of a model given by factories
(``pkg.mod:function``), as a Parquet table and a per-layer figure (``gradnoise.measure``).
``gradnoise check-config FILE``: a config file checked as the workflow checks it, every error naming
the file (Snakemake's own ``--configfile`` loader does not name it for broken YAML or a file without a
mapping, and stops before the workflow can)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

FIGURE_ESTIMATOR = "per_coordinate"  # a controlled estimator (DESIGN.md §3), one value per layer


def resolve(spec: str, arg: str) -> Callable[..., Any]:
    """The callable named by ``pkg.mod:attr`` (the attribute may be dotted; the module importable
    from the working directory too, as in the workflow config); errors name `arg`."""
    from gradnoise.errors import ConfigError
    from gradnoise.factories import resolve as resolve_factory

    try:
        return resolve_factory(spec, arg)
    except ConfigError as err:
        raise SystemExit(str(err)) from None


def _kwargs(text: str, arg: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise SystemExit(f"{arg}: not JSON: {err}") from err
    if not isinstance(value, dict):
        raise SystemExit(f"{arg}: expected a JSON object, got {text!r}")
    return value


def _call(factory: Callable[..., Any], kwargs: dict[str, Any], arg: str) -> Any:
    """The factory's product; a failure names `arg`."""
    try:
        return factory(**kwargs)
    except Exception as err:
        raise SystemExit(f"{arg}: the factory failed: {err!r}") from err


def load_weights(model: Any, path: str) -> None:
    """A state dict, or a pipeline checkpoint (its ``model`` entry), into `model`."""
    import torch

    state = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as err:
        raise SystemExit(f"--checkpoint: {path} does not fit the model: {err}") from err


def load_optimizer(model: Any, path: str, name: str | None) -> Any:
    """The optimizer of `model` with the state saved at `path`: an optimizer's state dict
    (``torch.save(opt.state_dict())``, `name` saying which optimizer) or a pipeline checkpoint,
    whose settings name it."""
    import torch

    from gradnoise.optim import build_optimizer

    state = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(state, dict) and "optimizer" in state and "settings" in state:
        name = name or json.loads(state["settings"])["run"]["optimizer"]
        state = state["optimizer"]
    if not isinstance(state, dict) or not state.get("param_groups"):
        raise SystemExit(f"--optimizer: {path} holds no optimizer state dict (param_groups)")
    if name is None:
        raise SystemExit(
            f"--optimizer-name: required with the plain state dict {path} (which optimizer made it)"
        )
    hparams = {k: v for k, v in state["param_groups"][0].items() if k != "params"}
    try:
        optimizer = build_optimizer(name, model.parameters(), hparams)
    except ValueError as err:
        raise SystemExit(f"--optimizer-name: {err}") from None
    try:
        optimizer.load_state_dict(state)
    except (ValueError, KeyError, RuntimeError) as err:
        raise SystemExit(f"--optimizer: {path} does not fit the model: {err}") from err
    return optimizer


def default_views(optimizer: Any) -> tuple[str, ...]:
    """Raw, and with an optimizer every view its update has: preconditioned (Adam/AdamW) and
    averaged (an optimizer with momentum)."""
    if optimizer is None:
        return ("raw",)
    from gradnoise.measurement import optimizer_name
    from gradnoise.views import momentum_of

    name, hparams = optimizer_name(optimizer)
    views = ["raw"] + (["preconditioned"] if name in ("adam", "adamw") else [])
    return (*views, *(["averaged"] if momentum_of(name, hparams) else []))


def layer_figure(table: Any, path: str | Path, view: str = "raw") -> None:
    """α̂ per layer (the controlled per-coordinate estimator) with its interval, and its Gaussian
    null with the null's interval: a layer is heavy-tailed where its interval lies below the null."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = table[(table["view"] == view) & (table["estimator"] == FIGURE_ESTIMATOR)]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.35 * len(rows) + 2), 4))
    alpha, null = rows["alpha"].to_numpy(), rows["null"].to_numpy()
    ax.errorbar(
        x - 0.1,
        alpha,
        yerr=_bars(alpha, rows["ci_low"], rows["ci_high"]),
        fmt="o",
        label="α̂ (per coordinate), 95 % interval",
    )
    ax.errorbar(
        x + 0.1,
        null,
        yerr=_bars(null, rows["null_ci_low"], rows["null_ci_high"]),
        fmt="s",
        color="grey",
        label="Gaussian null",
    )
    ax.axhline(2.0, color="k", lw=0.5, ls=":")
    ax.set_xticks(x, rows["layer"], rotation=75, ha="right", fontsize=7)
    ax.set_ylabel("tail index α")
    ax.set_title(f"gradient noise per layer ({view} view, P = {int(rows['n_draws'].max())})")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _bars(value: Any, low: Any, high: Any) -> list[Any]:
    """Error bars from an interval (a percentile bootstrap interval need not hold the estimate: its
    bar on that side is 0; a missing interval draws none)."""
    import numpy as np

    lo = np.nan_to_num(np.asarray(value) - np.asarray(low), nan=0.0)
    hi = np.nan_to_num(np.asarray(high) - np.asarray(value), nan=0.0)
    return [np.clip(lo, 0, None), np.clip(hi, 0, None)]


def measure_command(args: argparse.Namespace) -> None:
    build = resolve(args.model, "--model")
    make_data = resolve(args.data, "--data")
    loss_fn = resolve(args.loss, "--loss")
    model_kwargs = _kwargs(args.model_kwargs, "--model-kwargs")
    data_kwargs = _kwargs(args.data_kwargs, "--data-kwargs")
    import torch
    from tqdm import tqdm

    from gradnoise.measurement import MeasureError, measure
    from gradnoise.tails import TailSettings

    model = _call(build, model_kwargs, "--model")
    if not isinstance(model, torch.nn.Module):
        raise SystemExit(
            f"--model: {args.model} returned {type(model).__name__}, not a torch.nn.Module"
        )
    if args.checkpoint:
        load_weights(model, args.checkpoint)
    optimizer = (
        load_optimizer(model, args.optimizer, args.optimizer_name) if args.optimizer else None
    )
    data = _call(make_data, data_kwargs, "--data")
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tqdm(total=args.draws, desc="minibatch gradients", unit="draw", disable=None) as bar:
        try:
            table = measure(
                model,
                loss_fn,
                data,
                batch_size=args.batch_size,
                n_draws=args.draws,
                views=args.views or default_views(optimizer),
                optimizer=optimizer,
                coords_per_layer=args.coords_per_layer,
                seed=args.seed,
                device=args.device,
                micro_batch=args.micro_batch,
                tails=TailSettings(bootstrap=args.bootstrap),
                progress=lambda k: bar.update(k - bar.n),
            )
        except MeasureError as err:
            raise SystemExit(str(err)) from err
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    table.to_parquet(args.out, index=False)
    if args.figure:
        layer_figure(table, args.figure)
    whole = table[(table["layer"] == table["layer"].iloc[0]) & (table["view"] == "raw")]
    print(
        whole[["estimator", "alpha", "ci_low", "ci_high", "null", "verdict"]].to_string(index=False)
    )


def check_config_command(args: argparse.Namespace) -> None:
    from gradnoise.config import prepare_config, read_config_file
    from gradnoise.errors import ConfigError

    try:
        cfg = prepare_config(read_config_file(args.file))
    except ConfigError as err:
        text = str(err)  # the file's own errors name it; a key's error names the key
        prefix = f"config file {args.file}"
        raise SystemExit(text if text.startswith(prefix) else f"{prefix}: {text}") from None
    experiments = ", ".join(f"{n} ({e['study']['kind']})" for n, e in cfg["experiments"].items())
    print(
        f"config file {args.file}: valid; experiments {experiments}; results in {cfg['results']}/"
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gradnoise", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure", help="the gradient noise of your model, per layer")
    m.add_argument("--model", required=True, help="pkg.mod:factory returning a torch.nn.Module")
    m.add_argument("--model-kwargs", default="{}", help="JSON object: the model factory's kwargs")
    m.add_argument("--checkpoint", help="a state dict or a pipeline checkpoint (.pt) to load")
    m.add_argument("--data", required=True, help="pkg.mod:factory returning the data")
    m.add_argument("--data-kwargs", default="{}", help="JSON object: the data factory's kwargs")
    m.add_argument("--loss", required=True, help="pkg.mod:fn, loss_fn(model, batch) → mean loss")
    m.add_argument("--batch-size", type=int, required=True)
    m.add_argument("--draws", type=int, required=True, help="P, minibatches drawn")
    m.add_argument(
        "--optimizer",
        help="an optimizer's state dict (torch.save(opt.state_dict())) or a pipeline checkpoint: "
        "the preconditioned (Adam/AdamW) and averaged (momentum) views",
    )
    m.add_argument(
        "--optimizer-name",
        help="which optimizer made --optimizer's state: sgd, sgdm, adam, adamw, adai or adaiw (a "
        "pipeline checkpoint names its own)",
    )
    m.add_argument(
        "--views",
        nargs="+",
        help="raw, preconditioned, averaged; default: raw, and with --optimizer every view the "
        "optimizer has",
    )
    m.add_argument("--coords-per-layer", type=int, default=32)
    m.add_argument("--micro-batch", type=int, default=None, help="examples per forward pass")
    m.add_argument("--bootstrap", type=int, default=200, help="bootstrap replicates per interval")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--device", default="auto")
    m.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    m.add_argument("--out", required=True, help="the table, Parquet")
    m.add_argument("--figure", help="α̂ per layer with its interval and null (png, pdf)")
    m.set_defaults(run=measure_command)
    c = sub.add_parser(
        "check-config",
        help="check a config file as `snakemake --configfile FILE` would run it, naming the file",
    )
    c.add_argument("file", help="the YAML (or JSON) config file")
    c.set_defaults(run=check_config_command)
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    sys.exit(main())
