"""The α-stable study's stage (DESIGN.md §11): per-example gradients of a run's checkpoints (torch.func,
at the noise stage's stored coordinates, with per-layer norms), reduced to what claims S1–S3 and the
figures read; one Parquet table per run (gradnoise.clt.table)."""

from __future__ import annotations

import logging
from pathlib import Path

import _cli

import numpy as np
import pyarrow as pa
import torch

from gradnoise.clt.pool import Pool, PoolSettings, analyze
from gradnoise.clt.table import SCHEMA
from gradnoise.data import dataset_from
from gradnoise.devices import resolve_device
from gradnoise.io import ALL, load_checkpoint, write_parquet
from gradnoise.models import build_model
from gradnoise.noise import layers_of, stored_coordinates
from gradnoise.per_example import chunk_for, per_example_gradients
from gradnoise.provenance import check_checkpoint

log = logging.getLogger("alpha_stable")


def main() -> None:
    p = _cli.parser(__doc__)
    p.add_argument(
        "--checkpoints", required=True, help="the run's checkpoints folder (train stage)"
    )
    p.add_argument("--out", required=True, help="the run's table (Parquet)")
    args = p.parse_args()
    _cli.setup_logging()
    torch.set_num_threads(max(1, args.threads))
    s = _cli.settings(args.settings)
    st = s["alpha_stable"]
    settings = PoolSettings(
        batch_sizes=tuple(st["batch_sizes"]),
        n_draws=st["n_draws"],
        coordinates=st["coordinates"],
        n_pools=st["n_pools"],
        bootstrap=st["bootstrap"],
        seed=st["seed"],
    )
    device = resolve_device(s["device"])
    data = dataset_from(s["dataset"]).to(device)
    x, y = data.split("train")
    n = st.get("pool_size") or len(y)
    x, y = x[:n], y[:n]
    rows = []
    for step in s["steps"]:
        path = Path(args.checkpoints) / f"step{step}.pt"
        ckpt = load_checkpoint(path)
        check_checkpoint(path, ckpt, s["run"], step)
        key = {**s["run"], "step": step, "status": ckpt["status"]}
        if ckpt["status"] == "ok":
            torch.manual_seed(0)
            model = build_model(s["model"], data.input_shape, data.n_classes).to(device)
            model.load_state_dict(ckpt["model"])
            layers = layers_of(model)
            coord_index = stored_coordinates(
                layers, s["coordinates"]["per_layer"], s["coordinates"]["seed"]
            )
            chunk = chunk_for(layers[-1].stop, st["chunk_mb"])
            pe = per_example_gradients(model, x, y, coord_index, chunk)
            live = np.broadcast_to(coord_index >= 0, pe.coords.shape)
            if np.isfinite(pe.coords[live]).all() and np.isfinite(pe.norms).all():
                pool = Pool.of(pe.coords, coord_index, pe.norms, [la.name for la in layers])
                rows += [key | r for r in analyze(pool, s["training_batch_size"], settings)]
                log.info("step %d: N = %d, %d coordinates", step, n, pool.noise.shape[1])
                continue
            key["status"] = "diverged"  # gradients overflow at these weights
            log.warning("step %d: per-example gradients not finite; recorded as diverged", step)
        rows.append(key | {"layer": ALL, "quantity": "status", "law": "", "n": 0})
    write_parquet(pa.Table.from_pylist(rows, schema=SCHEMA), args.out, s)


if __name__ == "__main__":
    main()
