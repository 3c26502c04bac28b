"""The tails stage on constructed noise: verdicts against the Gaussian null, and anisotropy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from gradnoise import anisotropy
from gradnoise.noise import NoiseSettings, sample_split, to_tables
from gradnoise.tails import TailSettings, analyze, verdict


class Linear(torch.nn.Module):
    """Logits (⟨w, x⟩, 0, …, 0) at w = 0 with label 0: the cross-entropy gradient of an example is
    (softmax_0 − 1) x = −0.9 x, so the noise of batch k is −0.9 (mean of its rows − overall mean)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(d))

    def forward(self, x):
        return torch.nn.functional.pad((x @ self.w)[:, None], (0, 9))


def _tails_of(rows: np.ndarray, batch: int = 1, boot: int = 100):
    """Run the real sampler and tails stage on data whose per-batch gradients are `rows`-derived."""
    n, d = rows.shape
    model = Linear(d)
    x = torch.tensor(rows / 0.9, dtype=torch.float32)  # undo the −0.9 (the sign does not matter)
    y = torch.zeros(n, dtype=torch.int64)
    res = sample_split(
        model, x, y, NoiseSettings(batch_size=batch, coords_per_layer=d), {"raw": None}, 0
    )
    samples, st = to_tables({"train": res}, d)
    run = {"experiment": "e", "optimizer": "sgd", "seed": 0, "step": 0}
    return analyze(samples, st, run, TailSettings(bootstrap=boot)).to_pandas()


def _alpha(df, estimator):
    return df[
        (df.layer == "__all__") & (df.quantity == "alpha") & (df.estimator == estimator)
    ].iloc[0]


def test_heavy_tailed_noise_is_called_heavy_against_its_null():
    rng = np.random.default_rng(0)
    rows = stats.levy_stable.rvs(1.3, 0, size=(400, 40), random_state=rng)
    df = _tails_of(rows)
    for est in ("pooled", "pooled_standardized", "per_coordinate"):
        r = _alpha(df, est)
        assert r.verdict == "heavy-tailed", (est, r.value, r.null_value)
        assert r.ci_low <= r.value <= r.ci_high


def test_scale_mixed_gaussian_noise_fools_only_the_pooled_estimate():
    rng = np.random.default_rng(1)
    rows = rng.standard_normal((400, 60)) * np.exp(2 * rng.standard_normal(60))
    df = _tails_of(rows)
    pooled = _alpha(df, "pooled")
    assert pooled.value < 1.5  # the reference estimate reads heavy tails here ...
    assert abs(pooled.null_value - pooled.value) < 0.15  # ... and so does its Gaussian null
    assert pooled.verdict != "heavy-tailed"
    for est in ("pooled_standardized", "per_coordinate"):
        assert _alpha(df, est).verdict != "heavy-tailed"
        assert abs(_alpha(df, est).value - 2) < 0.25


def test_reported_spectrum_matches_a_known_covariance():
    rng = np.random.default_rng(2)
    true = np.array([16.0, 4.0, 1.0, 1.0, 0.25])
    rows = rng.standard_normal((1000, 5)) * np.sqrt(true)  # one example per batch: noise = x − mean
    df = _tails_of(rows, boot=10)
    eff = df[(df.layer == "__all__") & (df.quantity == "effective_rank")].iloc[0]
    # sample eigenvalues of P = 1000 draws: relative error ≈ √(2/P) ≈ 0.045 each
    np.testing.assert_allclose(np.asarray(eff.spectrum)[:5], true, rtol=0.15)
    assert np.allclose(np.asarray(eff.spectrum)[5:], 0, atol=1e-9)  # rank 5: the rest is zero
    assert eff.value == pytest.approx(true.sum() ** 2 / np.sum(true**2), rel=0.1)
    top = df[(df.layer == "__all__") & (df.quantity == "top_share")].iloc[0]
    assert top.value == pytest.approx(16 / true.sum(), rel=0.1)
    assert top.ci_low < top.value < top.ci_high


def test_verdict_rules():
    assert verdict(1.2, (1.1, 1.3), 1.9, (1.85, 1.95), 0.05) == "heavy-tailed"
    assert verdict(1.97, (1.93, 2.0), 1.97, (1.9, 2.05), 0.05) == "not heavy-tailed"
    assert verdict(1.7, (1.3, 2.1), 1.9, (1.85, 1.95), 0.05) == "inconclusive"
    assert verdict(math.nan, (1.0, 2.0), 2.0, (1.9, 2.1), 0.05) == "inconclusive"


def test_anisotropy_summaries():
    assert anisotropy.effective_rank(np.ones(7)) == pytest.approx(7)
    assert anisotropy.top_share(np.array([3.0, 1.0])) == pytest.approx(0.75)
    assert anisotropy.effective_rank(np.array([1.0, 0, 0])) == pytest.approx(1)


def test_diverged_noise_file_gives_a_status_row():
    import pyarrow as pa

    from gradnoise.noise import empty_tables

    samples, st = empty_tables(4)
    df = analyze(
        samples,
        st,
        {"experiment": "e", "optimizer": "sgd", "seed": 0, "step": 5, "status": "diverged"},
        TailSettings(),
    ).to_pandas()
    assert df.status.tolist() == ["diverged"] and isinstance(samples, pa.Table)
