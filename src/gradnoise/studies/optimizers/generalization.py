"""C8: SGD's test accuracy against Adam's, runs paired by seed."""

from __future__ import annotations

import pandas as pd

from gradnoise.claims import ClaimSettings, Row
from gradnoise.readings import (
    combine,
    diverged_note,
    run_values,
)
from gradnoise.stats import (
    Rule,
    SeedTest,
    paired_differences,
)
from gradnoise.studies.optimizers.definitions import CLAIMS, _pair


def _c8(runs: pd.DataFrame, sgd: str, adam: str, cs: ClaimSettings) -> Row:
    def col(arm: str, c: str) -> dict[int, float]:
        return run_values(runs, arm, c)

    acc = paired_differences(col(sgd, "test_acc"), col(adam, "test_acc"))
    gap = cs.interval(
        paired_differences(
            combine(col(adam, "train_acc"), col(adam, "test_acc"), lambda a, b: a - b),
            combine(col(sgd, "train_acc"), col(sgd, "test_acc"), lambda a, b: a - b),
        ).values()
    )
    return Row(
        "C8",
        CLAIMS["C8"],
        pair=_pair(sgd, adam),
        measured=f"test accuracy {sgd} − {adam} = {cs.interval(acc.values())} points; generalization gap (train − test) {adam} − {sgd} = {gap} points{diverged_note(runs, sgd, adam)}",
        control="runs paired by seed; the same data, model and number of iterations",
        rule=f"the seed-paired test-accuracy difference against accuracy_margin ({cs.accuracy_margin} points)",
        test=SeedTest(acc, Rule("above", cs.accuracy_margin)),
    )
