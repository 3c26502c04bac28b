"""Render one set of figures of an experiment (PNG and/or PDF). The sets, the tables each reads and
their entry points come from the registry (gradnoise.studies.FIGURE_SETS)."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
from pathlib import Path

import _cli  # noqa: F401  (puts this repository's src/ first on the path)

import matplotlib.pyplot as plt

from gradnoise import figures
from gradnoise.io import tmp_path
from gradnoise.studies import FIGURE_SETS
from gradnoise.tables import Tables, add_arguments

log = logging.getLogger("figures")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("set", choices=sorted(FIGURE_SETS), help="which figures")
    p.add_argument("--settings", required=True, help="JSON: figures config, data set, arms, roles")
    add_arguments(p)
    p.add_argument("--outdir", required=True)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO)
    s = json.loads(args.settings)
    style = figures.ArmStyle({arm: tuple(v) for arm, v in s["arms"].items()})
    figure_set = FIGURE_SETS[args.set]
    module, function = figure_set.draw.split(":")
    made = getattr(importlib.import_module(module), function)(Tables(args), s, style)
    fs = s["figures"]
    out = Path(args.outdir)
    out.mkdir(parents=True, exist_ok=True)
    for name in figure_set.figures:  # the contract the workflow declares as outputs
        fig = made[name]
        for fmt in fs["formats"]:
            path = out / f"{name}.{fmt}"
            tmp = tmp_path(path)
            fig.savefig(
                tmp,
                dpi=fs["dpi"],
                format=fmt,
                metadata={"Creator": "gradnoise"}
                if fmt == "png"
                else {"Creator": "gradnoise", "CreationDate": None},
            )
            tmp.replace(path)
        plt.close(fig)
        log.info("wrote %s", name)


if __name__ == "__main__":
    main()
