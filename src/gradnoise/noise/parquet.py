"""The noise files' tables (the Parquet contract of ``gradnoise.io``), assembled from the sampler's
per-split results."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradnoise.io import ALL, NOISE_SAMPLES_SCHEMA, NOISE_STATS_SCHEMA


def to_tables(splits: dict[str, dict[str, Any]], per_layer: int) -> tuple[Any, Any]:
    """The samples table and the stats table of the Parquet contract (see ``gradnoise.io``)."""
    import pyarrow as pa

    dict_str = pa.dictionary(pa.int32(), pa.string())
    samples, stats = [], []
    for split, res in splits.items():
        p, d, layers = res["P"], res["D"], res["layers"]
        coord_index = res["coord_index"]
        for view, st in res["views"].items():
            n_layers = len(layers)
            samples.append(
                pa.table(
                    {
                        "split": pa.array([split] * (p * n_layers)).cast(dict_str),
                        "view": pa.array([view] * (p * n_layers)).cast(dict_str),
                        "layer": pa.array([lay.name for lay in layers] * p).cast(dict_str),
                        "sample": pa.array(np.repeat(np.arange(p, dtype=np.int32), n_layers)),
                        "norm": pa.array(st["norms"].reshape(-1)),
                        "coords": pa.FixedSizeListArray.from_arrays(
                            pa.array(st["coords"].reshape(-1), pa.float32()), per_layer
                        ),
                    }
                )
            )
            var = st["var"].cpu().numpy()
            for name, numel, cidx, sl in [(ALL, d, coord_index.reshape(-1), slice(0, d))] + [
                (lay.name, lay.numel, coord_index[i], slice(lay.start, lay.stop))
                for i, lay in enumerate(layers)
            ]:
                pooled, null = st["pooled"][name], st["null"][name]
                live = var[sl][
                    var[sl] > 0
                ]  # coordinates with no noise at all (dead inputs) excluded
                q01, q50, q99 = np.quantile(live, [0.01, 0.5, 0.99]) if live.size else (0.0,) * 3
                stats.append(
                    {
                        "split": split,
                        "view": view,
                        "layer": name,
                        "P": p,
                        "numel": numel,
                        "k1": pooled.k1,
                        "row_log_x": pooled.log_x.tolist(),
                        "row_log_y": pooled.log_y.tolist(),
                        "row_n_y": pooled.n_y.tolist(),
                        "null_row_log_x": null.log_x.tolist(),
                        "null_row_log_y": null.log_y.tolist(),
                        "eigenvalues": st["spectra"][name].tolist(),
                        "gram": st["gram_all"].reshape(-1).tolist() if name == ALL else None,
                        "coord_index": cidx.tolist(),
                        "var_q01": float(q01),
                        "var_q50": float(q50),
                        "var_q99": float(q99),
                        "var_mean": float(var[sl].mean()),
                        "var_zero_fraction": float(np.mean(var[sl] == 0)),
                    }
                )
    if not samples:
        return empty_tables(per_layer)
    stats_table = pa.Table.from_pylist(stats, schema=NOISE_STATS_SCHEMA)
    return pa.concat_tables(samples), stats_table


def empty_tables(per_layer: int) -> tuple[Any, Any]:
    """Tables with no rows (a diverged run): the file exists and says why in its metadata."""
    import pyarrow as pa

    coords = NOISE_SAMPLES_SCHEMA.get_field_index("coords")
    schema = NOISE_SAMPLES_SCHEMA.set(coords, pa.field("coords", pa.list_(pa.float32(), per_layer)))
    return schema.empty_table(), NOISE_STATS_SCHEMA.empty_table()
