from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from gradnoise.models import build_model
from gradnoise.noise import layers_of, minibatch_gradients, stored_coordinates
from gradnoise.per_example import chunk_for, per_example_gradients, per_example_loop


def _model(name: str) -> tuple[nn.Module, tuple[int, ...]]:
    torch.manual_seed(0)
    if name == "lenet":
        return build_model({"name": "lenet"}, (1, 28, 28), 10), (1, 28, 28)
    shape = (1, 6, 6)
    model = build_model({"name": "mlp", "hidden": [24, 12], "batchnorm": True}, shape, 10)
    for m in model.modules():  # running statistics away from (0, 1), so that eval mode matters
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
    return model, shape


@pytest.mark.parametrize("name", ["lenet", "mlp_batchnorm"])
def test_chunked_per_example_gradients_match_a_backward_per_example(name: str) -> None:
    model, shape = _model(name)
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(13, *shape, generator=gen), torch.randint(0, 10, (13,), generator=gen)
    # 40 per layer: the small layers (biases of 6, 10, 12 entries) are padded with −1
    coord_index = stored_coordinates(layers_of(model), 40, seed=3)
    model.train()  # the function must switch to eval mode itself, and restore the mode
    fast = per_example_gradients(model, x, y, coord_index, chunk_size=5)
    assert model.training
    slow = per_example_loop(model, x, y, coord_index)
    assert fast.coords.shape == (13, len(fast.layers), 40)
    assert fast.norms.shape == (13, len(fast.layers))
    np.testing.assert_array_equal(
        np.isnan(fast.coords), np.broadcast_to(coord_index < 0, fast.coords.shape)
    )
    np.testing.assert_allclose(fast.coords, slow.coords, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fast.norms, slow.norms, rtol=1e-5, atol=1e-7)
    assert (fast.norms > 0).all()


def test_mean_of_per_example_gradients_is_the_noise_stages_minibatch_gradient() -> None:
    model, shape = _model("mlp_batchnorm")
    gen = torch.Generator().manual_seed(2)
    x, y = torch.randn(20, *shape, generator=gen), torch.randint(0, 10, (20,), generator=gen)
    coord_index = stored_coordinates(layers_of(model), 8, seed=0)
    pe = per_example_gradients(model, x, y, coord_index, chunk_size=7)
    g = torch.cat(next(minibatch_gradients(model, x, y, [torch.arange(20)]))).numpy()
    live = coord_index >= 0
    np.testing.assert_allclose(pe.coords.mean(0)[live], g[coord_index[live]], rtol=1e-4, atol=1e-7)


def test_chunk_size_holds_about_the_requested_memory() -> None:
    assert chunk_for(61_706, 64.0) == 64 * 2**20 // (4 * 61_706)
    assert chunk_for(10**9, 1.0) == 1
