"""Train one (experiment, optimizer, seed) run: checkpoints and history.parquet."""

from __future__ import annotations

from gradnoise.train import RunSettings, train_run

import _cli


def main() -> None:
    p = _cli.parser(__doc__)
    p.add_argument("--run-dir", required=True, help="output folder of the run")
    args = p.parse_args()
    _cli.setup_logging()
    status = train_run(
        RunSettings(**_cli.settings(args.settings)), args.run_dir, threads=args.threads
    )
    print(f"run finished: {status}")


if __name__ == "__main__":
    main()
