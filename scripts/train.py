"""Train one (experiment, arm, seed) run: checkpoints and history.parquet."""

from __future__ import annotations

import _cli

from gradnoise.train import RunSettings, train_run


def main() -> None:
    p = _cli.parser(__doc__)
    p.add_argument("--run-dir", required=True, help="output folder of the run")
    p.add_argument("--init", default="", help="checkpoint whose weights start the run (init_from)")
    args = p.parse_args()
    _cli.setup_logging()
    settings = RunSettings.from_json(_cli.settings(args.settings))
    status = train_run(settings, args.run_dir, threads=args.threads, init=args.init)
    print(f"run finished: {status}")


if __name__ == "__main__":
    main()
