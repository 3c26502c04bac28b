"""A1: Adai generalizes at least as well as SGD-M and better than Adam (final test accuracy,
runs paired by seed)."""

from __future__ import annotations

import pandas as pd

from gradnoise.claims import ClaimSettings, Row
from gradnoise.readings import diverged_note, run_values
from gradnoise.stats import Rule, SeedTest, paired_differences
from gradnoise.studies.escape_law.definitions import (
    ADAI_FAMILY,
    ADAM_FAMILY,
    CLAIMS,
    SGDM_FAMILY,
    EscapeLawSettings,
    _members,
    _missing,
)


def _a1(runs: pd.DataFrame, es: EscapeLawSettings, cs: ClaimSettings) -> list[Row]:
    arms = runs.drop_duplicates("arm")
    adais = _members(arms.optimizer, arms.arm, ADAI_FAMILY)

    def acc(arm: str) -> dict[int, float]:
        return run_values(runs, arm, "test_acc")

    rows = []
    m = es.accuracy_margin
    for adai in adais:
        for sgdm in _members(arms.optimizer, arms.arm, SGDM_FAMILY):
            d = paired_differences(acc(sgdm), acc(adai))
            rows.append(
                Row(
                    "A1",
                    CLAIMS["A1"],
                    pair=f"{sgdm} − {adai}",
                    measured=f"test accuracy {adai} {cs.interval(acc(adai).values())} vs {sgdm} {cs.interval(acc(sgdm).values())}; {sgdm} − {adai} = {cs.interval(d.values())} points{diverged_note(runs, adai, sgdm)}",
                    control="runs paired by seed; the same data, model and number of iterations",
                    rule=f"at least as well: SGD-M − Adai below accuracy_margin ({m} points)",
                    test=SeedTest(d, Rule("below", m)),
                )
            )
        for adam in _members(arms.optimizer, arms.arm, ADAM_FAMILY):
            d = paired_differences(acc(adai), acc(adam))
            rows.append(
                Row(
                    "A1",
                    CLAIMS["A1"],
                    pair=f"{adai} − {adam}",
                    measured=f"test accuracy {adai} − {adam} = {cs.interval(d.values())} points{diverged_note(runs, adai, adam)}",
                    control="runs paired by seed; the same data, model and number of iterations",
                    rule=f"better: Adai − Adam above accuracy_margin ({m} points)",
                    test=SeedTest(d, Rule("above", m)),
                )
            )
    return rows or [_missing("A1", "Adai arm with an SGD-M or Adam arm")]
