"""The streaming sampler against the materialized reference, and the Parquet contract."""

from __future__ import annotations

import math

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from gradnoise.estimators import (
    EPS,
    IQR_PER_STD,
    alpha_from_log_means,
    alpha_pooled_reference,
    ref_k1,
)
from gradnoise.io import InputError, read_parquet, write_parquet
from gradnoise.models import build_model
from gradnoise.noise import (
    ALL,
    MICRO_BATCH,
    NULL_TILE,
    GaussianColumns,
    NoiseSettings,
    PooledStream,
    minibatch_gradients,
    minibatches,
    sample_checkpoint,
    sample_split,
)
from gradnoise.seeds import hash_seed
from gradnoise.tails import pooled_from_rows
from gradnoise.tasks import zoo_task
from gradnoise.views import averaging_matrix


def _setup(hidden: int, d_in: int, n: int, seed: int = 0):
    torch.manual_seed(seed)
    model = build_model({"name": "mlp", "hidden": [hidden]}, (1, 1, d_in), 10)
    x = torch.randn(n, 1, 1, d_in)
    y = torch.randint(0, 10, (n,))
    return model, x, y


def _materialized(model, x, y, batch_size):
    batches = minibatches(len(y), batch_size, None, "reference", 0)
    g = torch.stack([torch.cat(pieces) for pieces in minibatch_gradients(model, x, y, batches)])
    g = g.double().numpy()
    return g - g.mean(axis=0)


def _is_prime(n: int) -> bool:
    return n > 1 and all(n % k for k in range(2, int(n**0.5) + 1))


def _assert_stream_matches(stream, m: np.ndarray) -> None:
    """The stream's per-row sums equal those of the reference layout of m: Σ log(|x|+eps) per row (the
    logs in the dtype of m), and the block sums Y (K1 consecutive entries of the row-major flattening,
    in float64) up to the rounding of a sum taken in another order, |ΔY| ≤ 1e-12 Σ|x| over the
    block, hence Σ log(|Y|+eps) and the count of the blocks completed in each row."""
    p, n = m.shape
    flat = m.reshape(-1).astype(np.float64)
    k1 = ref_k1(flat.size)
    y = flat.reshape(-1, k1).sum(axis=1)
    tol_y = 1e-12 * np.abs(flat).reshape(-1, k1).sum(axis=1)
    rows = ((np.arange(y.size) + 1) * k1 - 1) // n
    assert stream.k1 == k1
    assert np.all(np.abs(stream.y.numpy() - y) <= tol_y)
    np.testing.assert_array_equal(stream.n_y, np.bincount(rows, minlength=p))
    log_x = np.log(np.abs(m) + m.dtype.type(EPS)).sum(axis=1, dtype=np.float64)
    np.testing.assert_allclose(stream.log_x, log_x, rtol=1e-9)
    log_y = np.bincount(rows, weights=np.log(np.abs(y) + EPS), minlength=p)
    with np.errstate(divide="ignore"):
        tol_log_y = 1e-12 + np.bincount(rows, tol_y / np.abs(y), p)  # |Δ log|Y|| ≤ |ΔY|/|Y|
    assert np.all(np.abs(stream.log_y - log_y) <= tol_log_y)


def _streamed_alpha(stream, p: int, n: int) -> float:
    return alpha_from_log_means(
        stream.log_y.sum() / stream.n_y.sum(), stream.log_x.sum() / (p * n), stream.k1
    )


# (hidden, d_in, n examples, batch): D = hidden·(d_in + 11) + 10; the last case has P = 7 and D prime,
# so N = 7·D has only the divisors 1, 7, D, N and K1 = 7.
SHAPES = [(13, 5, 300, 20), (8, 7, 250, 10), (3, 20, 70, 10)]
# blocks of one column, of a few columns (narrower and wider than K1), and of whole layers
CHUNK_MB = [1e-4, 0.01, 64.0]
# the Gram's float32 products: relative rounding of a block's sum, against ‖m_i‖‖m_j‖
GRAM_ROUNDING = 2e-6


@pytest.fixture(params=[1, 3], ids=["1 worker", "3 workers"])
def workers(request):
    """The column pass runs one worker per torch thread: one, and three (uneven column splits)."""
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


@pytest.mark.parametrize("chunk_mb", CHUNK_MB)
@pytest.mark.parametrize(("hidden", "d_in", "n", "batch"), SHAPES)
def test_streamed_statistics_equal_the_materialized_noise(
    hidden, d_in, n, batch, chunk_mb, workers
):
    """Every statistic of every view, streamed in column blocks of any width by any number of
    workers, equals the one computed from the materialized P × D noise of that view (and, for the
    null, from the materialized draws)."""
    model, x, y = _setup(hidden, d_in, n)
    u = _materialized(model, x, y, batch)
    w = torch.rand(u.shape[1], dtype=torch.float64) + 0.5
    views = {"raw": None, "preconditioned": ("preconditioned", w), "averaged": ("averaged", 0.9)}
    settings = NoiseSettings(batch_size=batch, coords_per_layer=4, chunk_mb=chunk_mb)
    res = sample_split(model, x, y, settings, views, 0)
    p, d = u.shape
    materialized = {
        "raw": u,
        "preconditioned": u * w.numpy(),
        "averaged": averaging_matrix(p, 0.9) @ u,
    }
    for view, m in materialized.items():
        st = res["views"][view]
        # the pooled reference estimate, and its layout row by row, whole network and per layer
        assert _streamed_alpha(st["pooled"][ALL], p, d) == pytest.approx(
            alpha_pooled_reference(m), rel=1e-9
        )
        _assert_stream_matches(st["pooled"][ALL], m)
        for layer in res["layers"]:
            _assert_stream_matches(st["pooled"][layer.name], m[:, layer.start : layer.stop])
        # the Gram matrix and the nonzero covariance spectrum, whole network and per layer, to the
        # rounding of float32 products: |ΔG_ij| ≤ GRAM_ROUNDING ‖m_i‖‖m_j‖/(P−1), hence (Weyl)
        # |Δλ| ≤ ‖ΔG‖_F ≤ GRAM_ROUNDING tr G
        row_norms = np.linalg.norm(m, axis=1)
        tol = GRAM_ROUNDING * np.outer(row_norms, row_norms) / (p - 1)
        assert np.all(np.abs(st["gram_all"] - m @ m.T / (p - 1)) <= tol)
        for name, cols in [(ALL, slice(0, d))] + [
            (lay.name, slice(lay.start, lay.stop)) for lay in res["layers"]
        ]:
            ev = np.linalg.eigvalsh(m[:, cols] @ m[:, cols].T / (p - 1))[::-1]
            np.testing.assert_allclose(
                st["spectra"][name], np.clip(ev, 0, None), rtol=0, atol=GRAM_ROUNDING * ev.sum()
            )
        # layer norms of every sample
        norms = np.stack(
            [np.linalg.norm(m[:, lay.start : lay.stop], axis=1) for lay in res["layers"]], axis=1
        )
        np.testing.assert_allclose(st["norms"], norms, rtol=GRAM_ROUNDING)
        # per-coordinate variance and the null's robust scale, IQR/1.349, of this view's noise
        var = m.var(axis=0, ddof=1)
        np.testing.assert_allclose(st["var"], var, rtol=1e-5)
        q25, q75 = np.quantile(m, [0.25, 0.75], axis=0)
        scale = (q75 - q25) / IQR_PER_STD
        np.testing.assert_allclose(st["null_scale"], scale, rtol=1e-6, atol=1e-7)
        # the Gaussian null: the same layout on the view's draws times its scale, in float32
        draws = GaussianColumns(p, hash_seed(0, view), torch.device("cpu")).columns(0, d)
        null = (draws * st["null_scale"]).numpy()
        _assert_stream_matches(st["null"][ALL], null)
        for layer in res["layers"]:
            _assert_stream_matches(st["null"][layer.name], null[:, layer.start : layer.stop])
        # stored coordinates are the noise itself
        idx = res["coord_index"].reshape(-1)
        np.testing.assert_allclose(
            st["coords"][:, idx >= 0], m[:, idx[idx >= 0]], rtol=1e-5, atol=1e-7
        )
        assert np.isnan(st["coords"][:, idx < 0]).all()


def test_a_failing_read_in_the_column_pass_stops_it_and_raises(monkeypatch, workers):
    """An error in one worker (here a read of the scratch file) ends the pass with that error, without
    reading the rest of the file, instead of hanging or returning partial statistics."""
    import gradnoise.noise.column_pass as column_pass

    real, calls, fail_at = column_pass._read_block, [], [math.inf]

    def read(*args):
        calls.append(args)
        if len(calls) == fail_at[0]:
            raise OSError("read failed")
        return real(*args)

    monkeypatch.setattr(column_pass, "_read_block", read)
    model, x, y = _setup(13, 5, 300)
    settings = NoiseSettings(batch_size=20, coords_per_layer=4, chunk_mb=1e-3)
    sample_split(model, x, y, settings, {"raw": None}, 0)
    every = len(calls)
    calls.clear()
    fail_at[0] = 3
    with pytest.raises(OSError, match="read failed"):
        sample_split(model, x, y, settings, {"raw": None}, 0)
    assert len(calls) < every / 2


def test_few_divisor_case_is_exercised():
    hidden, d_in, n, batch = SHAPES[-1]
    d = hidden * (d_in + 11) + 10
    assert _is_prime(d) and n // batch == 7 and ref_k1(7 * d) == 7


@pytest.mark.parametrize(
    ("p", "row_len", "width"), [(50, 3, 1), (7, 11, 4), (12, 40, 40), (9, 1, 1)]
)
def test_pooled_stream_block_sums_match_the_flattened_rows(p, row_len, width):
    """Blocks that span several rows, straddle two, or fit inside one are all summed as in the
    reference's row-major flattening, whatever the width of the column blocks fed in (k1 = 10 > 3
    rows of 3 in the first case)."""
    x = torch.randn(p, row_len, dtype=torch.float64, generator=torch.Generator().manual_seed(p))
    stream = PooledStream(p, row_len, torch.device("cpu"))
    for s in range(0, row_len, width):
        block = x[:, s : s + width]
        layout = stream.layout(p, block.shape[1], s, torch.device("cpu"))
        stream.add(block.cumsum(dim=1), layout, block.abs().add(EPS).log().sum(dim=1))
    _assert_stream_matches(stream, x.numpy())


@pytest.mark.parametrize("name", ["mlp", "lenet", "vgg11"])
def test_the_gradient_pass_gives_the_gradients_of_the_model_as_given(name, workers):
    """The gradient pass (max-pooling nets channels-last, VGG-11 with batch norm too; minibatches of
    MICRO_BATCH + 8 examples in two micro-batches; one worker or three side by side) gives, in order
    and flattened in the parameters' logical order, the gradients of loss.backward() on whole
    minibatches of the caller's (untouched) model."""
    torch.manual_seed(0)
    shape = (1, 28, 28) if name != "vgg11" else (3, 32, 32)
    model = build_model({"name": name}, shape, 10).eval()
    batch = MICRO_BATCH + 8
    x, y = torch.randn(4 * batch, *shape), torch.randint(0, 10, (4 * batch,))
    batches = minibatches(len(y), batch, None, "reference", 0)
    streamed = [torch.cat(pieces) for pieces in minibatch_gradients(model, x, y, batches)]
    expected = []
    for idx in batches:
        model.zero_grad()
        torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
        expected.append(torch.cat([q.grad.reshape(-1) for q in model.parameters()]))
    streamed, expected = torch.stack(streamed), torch.stack(expected)
    assert all(q.is_contiguous() for q in model.parameters())
    # float32 rounding (measured ≤ 1e-6 for the MLP and LeNet); in VGG-11 a rounding can move a max
    # pool's argmax, which reroutes a few gradients (measured ≤ 2e-3); a wrong weighting or order of
    # the micro-batches or parameters is off by O(1)
    relative = (streamed - expected).norm(dim=1) / expected.norm(dim=1)
    assert torch.all(relative <= (5e-3 if name == "vgg11" else 1e-5))


def test_null_draws_do_not_depend_on_the_column_blocks():
    whole = GaussianColumns(6, 1, torch.device("cpu")).columns(0, 3 * NULL_TILE)
    gen = GaussianColumns(6, 1, torch.device("cpu"))
    cuts = [0, 5, NULL_TILE - 1, NULL_TILE + 2, 2 * NULL_TILE + 7, 3 * NULL_TILE]
    pieces = [gen.columns(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    assert torch.equal(torch.cat(pieces, dim=1), whole)
    assert not torch.equal(
        whole, GaussianColumns(6, 2, torch.device("cpu")).columns(0, 3 * NULL_TILE)
    )


def test_bootstrap_weights_of_one_reproduce_the_point_estimate():
    model, x, y = _setup(13, 5, 300)
    res = sample_split(
        model, x, y, NoiseSettings(batch_size=20, coords_per_layer=4), {"raw": None}, 0
    )
    s = res["views"]["raw"]["pooled"][ALL]
    point = pooled_from_rows(s.log_x, s.log_y, s.n_y, res["D"], s.k1)
    ones = np.ones((1, res["P"]))
    assert pooled_from_rows(s.log_x, s.log_y, s.n_y, res["D"], s.k1, ones)[0] == pytest.approx(
        point, rel=1e-12
    )


def test_sampled_mode_draws_seeded_batches():
    a = minibatches(100, 10, 5, "sampled", seed=1)
    b = minibatches(100, 10, 5, "sampled", seed=1)
    assert len(a) == 5 and all(torch.equal(i, j) for i, j in zip(a, b, strict=True))
    assert not torch.equal(a[0], minibatches(100, 10, 5, "sampled", seed=2)[0])
    assert [int(i[0]) for i in minibatches(100, 10, None, "reference", 0)] == list(
        range(0, 100, 10)
    )


@pytest.fixture(scope="module")
def noise_tables():
    from gradnoise.data import load_dataset
    from gradnoise.optim import build_optimizer

    data = load_dataset("mnist_embedded", train_size=300, test_size=200)
    torch.manual_seed(0)
    run = {
        "model": {"name": "mlp", "hidden": [8]},
        "optimizer": "adam",
        "hparams": {"lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-8},
    }
    model = build_model(run["model"], data.input_shape, 10)
    opt = build_optimizer("adam", model.parameters(), run["hparams"])
    for k in range(3):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(
            model(data.x_train[k * 50 : (k + 1) * 50]), data.y_train[k * 50 : (k + 1) * 50]
        ).backward()
        opt.step()
    ckpt = {"status": "ok", "model": model.state_dict(), "optimizer": opt.state_dict()}
    return sample_checkpoint(
        ckpt,
        run,
        NoiseSettings(batch_size=25, coords_per_layer=6),
        ["train", "test"],
        zoo_task(data, run["model"]),
    )


def test_adam_noise_has_all_three_views_and_both_splits(noise_tables):
    samples, stats = noise_tables
    assert set(samples.column("view").to_pylist()) == {"raw", "preconditioned", "averaged"}
    assert set(samples.column("split").to_pylist()) == {"train", "test"}
    assert samples.schema.field("coords").type.list_size == 6
    assert str(samples.schema.field("layer").type).startswith("dictionary")
    # one row per (sample, layer, view, split): 12 train + 8 test samples, 4 layers, 3 views
    assert samples.num_rows == (12 + 8) * 4 * 3
    gram = [
        r
        for r in stats.to_pylist()
        if r["layer"] == ALL and r["view"] == "raw" and r["split"] == "train"
    ][0]
    assert len(gram["gram"]) == 12 * 12 and len(gram["row_log_x"]) == 12


def test_parquet_is_readable_by_pandas_and_duckdb(noise_tables, tmp_path):
    import duckdb

    samples, _ = noise_tables
    path = tmp_path / "noise.parquet"
    write_parquet(samples, path, {"experiment": "t", "optimizer": "adam", "seed": 0, "step": 3})
    df = pq.read_table(path).to_pandas()
    con = duckdb.connect()
    n_duck = con.execute(
        f"select count(*) from read_parquet('{path}') where view = 'raw'"
    ).fetchone()[0]
    assert n_duck == (df.view == "raw").sum() == samples.num_rows // 3
    norms = con.execute(f"select avg(norm) from read_parquet('{path}')").fetchone()[0]
    assert norms == pytest.approx(df.norm.mean())
    meta = pq.read_schema(path).metadata
    assert b"torch" in meta[b"gradnoise.provenance"] and b'"step": 3' in meta[b"gradnoise.settings"]


def test_truncated_or_foreign_parquet_names_the_file(noise_tables, tmp_path):
    samples, _ = noise_tables
    good = tmp_path / "good.parquet"
    write_parquet(samples, good, {})
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(InputError, match="cut.parquet"):
        read_parquet(cut)
    foreign = tmp_path / "foreign.parquet"
    pq.write_table(samples, foreign)
    with pytest.raises(InputError, match="foreign.parquet.*gradnoise metadata"):
        read_parquet(foreign)
    with pytest.raises(InputError, match="missing.parquet"):
        read_parquet(tmp_path / "missing.parquet")


def test_diverged_checkpoint_gives_empty_tables():
    samples, stats = sample_checkpoint(
        {"status": "diverged"}, {}, NoiseSettings(coords_per_layer=4), ["train"], None
    )
    assert samples.num_rows == 0 and stats.num_rows == 0
