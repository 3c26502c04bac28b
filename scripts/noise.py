"""Sample the gradient noise of one checkpoint and write the samples and stats Parquet files."""

from __future__ import annotations

import logging

import _cli

import torch

from gradnoise.devices import resolve_device
from gradnoise.io import load_checkpoint, write_parquet
from gradnoise.noise import NoiseSettings, checkpoint_noise, scratch_cleanup
from gradnoise.provenance import check_checkpoint
from gradnoise.tasks import task_from

log = logging.getLogger("noise")


def main() -> None:
    p = _cli.parser(__doc__)
    p.add_argument("--checkpoint", required=True, help="checkpoint .pt written by the train stage")
    p.add_argument("--out", required=True, help="samples Parquet file")
    p.add_argument("--out-stats", required=True, help="companion stats Parquet file")
    args = p.parse_args()
    _cli.setup_logging()
    torch.set_num_threads(max(1, args.threads))
    s = _cli.settings(args.settings)
    ns = s["noise"]
    noise = NoiseSettings(
        mode=ns["mode"],
        batch_size=ns["batch_size"],
        n_batches=ns.get("n_batches"),
        coords_per_layer=ns["coords_per_layer"],
        seed=ns["seed"],
        chunk_mb=ns["chunk_mb"],
    )
    checkpoint = load_checkpoint(args.checkpoint)
    check_checkpoint(args.checkpoint, checkpoint, s["run"], s.get("step"))
    task = task_from(s, f"experiments.{s['run']['experiment']}")
    task = task.with_data(task.data.to(resolve_device(s["device"])))
    model_run = {"optimizer": s["run"]["optimizer"], "hparams": s["hparams"]}
    with scratch_cleanup():
        samples, stats, status = checkpoint_noise(checkpoint, model_run, noise, ns["splits"], task)
    meta = dict(s)
    meta["status"] = status
    if task.provenance:
        meta["factories"] = task.provenance
    meta["checkpoint"] = args.checkpoint
    write_parquet(stats, args.out_stats, meta)
    write_parquet(samples, args.out, meta)
    log.info(
        "wrote %d sample rows, %d stats rows (%s)", samples.num_rows, stats.num_rows, meta["status"]
    )


if __name__ == "__main__":
    main()
