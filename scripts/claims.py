"""Decide the claims of an experiment's study from its measurements: claims.md and claims.parquet.
Zhou et al.'s C1–C8 (study `optimizers`, then A1–A5 where the escape-law stage ran), or a neighbouring
paper's (gradnoise.studies)."""

from __future__ import annotations

from pathlib import Path

import _cli

import pandas as pd

from gradnoise.claims import evaluate_claims
from gradnoise.claims_table import ClaimSettings, Row, decide_rows, to_arrow, to_markdown
from gradnoise.io import (
    ESCAPE_MINIMA_SCHEMA,
    ESCAPE_SCHEMA,
    ESCAPE_SLOPES_SCHEMA,
    ESCAPE_SWEEP_SCHEMA,
    SHARPNESS_SCHEMA,
    read_histories,
    read_parquet,
    tmp_path,
    write_parquet,
)
from gradnoise.provenance import check_unique_runs
from gradnoise.tails import TAILS_SCHEMA

TITLES = {
    "optimizers": "Claims of Zhou et al. (2020)",
    "large_batch": "Claims of Hoffer, Hubara & Soudry (2017) — large batches",
    "random_labels": "Claims of Liu, Papailiopoulos & Achlioptas (2020) — random-label pretraining",
}


def evaluate(study: str, s: dict, args, cs: ClaimSettings) -> list[Row]:
    """The study's claims rows from the inputs given on the command line."""
    sharpness = {f: read_parquet(f, schema=SHARPNESS_SCHEMA) for f in args.sharpness}
    check_unique_runs(sharpness, ["experiment", "arm", "seed"])
    runs = pd.concat([t.to_pandas() for t in sharpness.values()], ignore_index=True)
    tails = read_parquet(args.tails, schema=TAILS_SCHEMA).to_pandas()
    if study == "optimizers":
        escape = read_parquet(args.escape, schema=ESCAPE_SCHEMA).to_pandas()
        claims = evaluate_claims(tails, escape, runs, cs, s.get("hparams"))
        if args.escape_slopes:
            claims += escape_law_claims(s, args, runs, tails, escape, cs)
        return claims
    history, run_settings = read_histories(args.histories)
    runs = runs.merge(
        run_settings[["arm", "seed", "batch_size", "iterations", "phase_end"]], on=["arm", "seed"]
    )
    if study == "large_batch":
        from gradnoise.studies import large_batch

        fits = read_parquet(args.fits).to_pandas()
        ls = large_batch.LargeBatchSettings(**s["claims"]["large_batch"])
        return large_batch.evaluate(runs, history, fits, tails, s["roles"], ls, cs)
    from gradnoise.studies import random_labels

    rs = random_labels.RandomLabelSettings(**s["claims"]["random_labels"])
    return random_labels.evaluate(runs, history, run_settings, tails, s["roles"], rs, cs)


def escape_law_claims(
    s: dict, args, runs: pd.DataFrame, tails: pd.DataFrame, simulated: pd.DataFrame, cs
) -> list[Row]:
    """A1–A5 from the escape-law stage's tables."""
    from gradnoise.studies import escape_law

    def table(paths: list[str], schema) -> pd.DataFrame:
        return pd.concat(
            [read_parquet(f, schema=schema).to_pandas() for f in paths], ignore_index=True
        )

    return escape_law.evaluate(
        runs,
        tails,
        table(args.escape_sweeps, ESCAPE_SWEEP_SCHEMA),
        table([args.escape_slopes], ESCAPE_SLOPES_SCHEMA),
        table([args.escape_minima], ESCAPE_MINIMA_SCHEMA),
        escape_law.EscapeLawSettings(**s["claims"]["escape"]),
        cs,
        simulated,
    )


def main() -> None:
    p = _cli.parser(__doc__)
    p.add_argument("--experiment", required=True)
    p.add_argument("--tails", required=True)
    p.add_argument("--sharpness", nargs="+", required=True)
    p.add_argument("--escape", help="escape table (study optimizers)")
    p.add_argument("--histories", nargs="*", default=[], help="training histories (studies)")
    p.add_argument("--fits", help="distance fits (study large_batch)")
    p.add_argument("--escape_sweeps", nargs="*", default=[], help="escape-law sharpness sweeps")
    p.add_argument("--escape_slopes", help="escape-law fits (then A1–A5 follow C1–C8)")
    p.add_argument("--escape_minima", help="escapes from the trained minima")
    p.add_argument("--out-md", required=True)
    p.add_argument("--out-parquet", required=True)
    args = p.parse_args()
    _cli.setup_logging()
    s = _cli.settings(args.settings)
    cs = ClaimSettings(**{k: v for k, v in s["claims"].items() if not isinstance(v, dict)})
    claims = decide_rows(evaluate(s["study"], s, args, cs), cs)
    write_parquet(to_arrow(claims), args.out_parquet, s)
    text = to_markdown(claims, f"{TITLES[s['study']]} — experiment `{args.experiment}`")
    tmp = tmp_path(Path(args.out_md))
    tmp.write_text(text)
    tmp.replace(args.out_md)
    print(text)


if __name__ == "__main__":
    main()
