"""Sharpness (top Hessian eigenvalue; Hutchinson's Hessian trace where `hutchinson_samples` > 0) of a
run's last checkpoint, with the run's final accuracies and outcome: one row per run, the table the
claims read."""

from __future__ import annotations

import _cli

import pyarrow as pa
import torch

from gradnoise.devices import resolve_device
from gradnoise.io import (
    HISTORY_SCHEMA,
    SHARPNESS_SCHEMA,
    load_checkpoint,
    read_parquet,
    read_settings,
    write_parquet,
)
from gradnoise.provenance import check_checkpoint, check_provenance
from gradnoise.sharpness import hutchinson_trace, loss_hvp, top_eigenvalue
from gradnoise.tasks import task_from


def main() -> None:
    p = _cli.parser(__doc__)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--history", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    _cli.setup_logging()
    torch.set_num_threads(max(1, args.threads))
    s = _cli.settings(args.settings)
    hs = s["sharpness"]
    ckpt = load_checkpoint(args.checkpoint)
    check_checkpoint(args.checkpoint, ckpt, s["run"])
    history = read_parquet(args.history, schema=HISTORY_SCHEMA)
    made = read_settings(args.history)
    check_provenance(args.history, made["run"], s["run"])
    last = history.filter(history["evaluated"]).to_pylist()[-1]
    outcome = made["outcome"]
    row = {
        "experiment": s["run"]["experiment"],
        "arm": s["run"]["arm"],
        "optimizer": s["run"]["optimizer"],
        "seed": s["run"]["seed"],
        "step": ckpt["step"],
        "status": ckpt["status"],
        "target_reached": outcome["target_reached"],
        "init_target_reached": (outcome["init"] or {}).get("target_reached"),
    }
    for k in ("train_acc", "test_acc", "train_loss", "test_loss"):
        row[k] = last[k]
    if ckpt["status"] == "ok":
        device = resolve_device(s["device"])
        task = task_from(s, f"experiments.{s['run']['experiment']}")
        data = task.data.to(device)
        model = task.new_model().to(device)
        model.load_state_dict(ckpt["model"])
        b = hs["batch_size"]
        batches = [
            (data.x_train[i * b : (i + 1) * b], data.y_train[i * b : (i + 1) * b])
            for i in range(min(hs["n_batches"], len(data.y_train) // b))
        ]
        hvp = loss_hvp(model, batches, task.loss)
        params = [q for q in model.parameters() if q.requires_grad]
        top = top_eigenvalue(hvp, params, hs["max_iter"], hs["tol"], hs["seed"])
        row["top_eigenvalue"] = top.value
        row["power_iterations"] = top.iterations
        row["converged"] = top.converged
        if hs["hutchinson_samples"]:  # a diagnostic no claim reads: opt-in
            trace, se = hutchinson_trace(hvp, params, hs["hutchinson_samples"], hs["seed"])
            row["trace"], row["trace_se"] = trace, se
        if task.provenance:
            s = {**s, "factories": task.provenance}
    write_parquet(pa.Table.from_pylist([row], schema=SHARPNESS_SCHEMA), args.out, s)


if __name__ == "__main__":
    main()
