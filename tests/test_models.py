from __future__ import annotations

import pytest
import torch

from gradnoise.models import MODELS, build_model, fastest_memory_format


@pytest.mark.parametrize("name", MODELS)
def test_every_model_maps_cifar_images_to_logits(name):
    torch.manual_seed(0)
    model = build_model({"name": name}, (3, 32, 32), 10).eval()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("name", ["mlp", "lenet", "fc_ref", "resnet18"])
def test_digit_models_accept_28x28(name):
    assert build_model({"name": name}, (1, 28, 28), 10)(torch.randn(3, 1, 28, 28)).shape == (3, 10)


def test_reference_mlp_is_bias_free_with_given_width_and_depth():
    model = build_model({"name": "fc_ref", "width": 50, "depth": 3}, (1, 28, 28), 10)
    shapes = [p.shape for p in model.parameters()]
    assert shapes == [(50, 784), (50, 50), (10, 50)]


def test_small_alexnet_has_the_reference_width():
    model = build_model({"name": "alexnet_small", "ch": 64}, (3, 32, 32), 10)
    linear = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    # 64 features after the convolutions, width 64·⌊1 + log2 64⌋ = 448
    assert [(m.in_features, m.out_features) for m in linear] == [(64, 448), (448, 448), (448, 10)]


def test_vgg_rejects_digits():
    with pytest.raises(ValueError, match="32×32"):
        build_model({"name": "vgg11"}, (1, 28, 28), 10)


@pytest.mark.parametrize(
    ("cls", "plain", "shape"),
    [
        ("GhostBatchNorm1d", torch.nn.BatchNorm1d, (10, 5)),  # 10 = 4 + 4 + 2: not a multiple
        ("GhostBatchNorm2d", torch.nn.BatchNorm2d, (12, 3, 4, 4)),
    ],
)
def test_ghost_batchnorm_is_batchnorm_on_each_chunk(cls, plain, shape):
    from gradnoise import models

    torch.manual_seed(0)
    ghost, bn = getattr(models, cls)(shape[1], 4), plain(shape[1])
    x = torch.randn(*shape) * 3 + 1
    expected = torch.cat([bn(c) for c in x.split(4)])  # each chunk alone, in order
    torch.testing.assert_close(ghost(x), expected)
    # the running statistics were updated once per chunk, in order
    torch.testing.assert_close(ghost.running_mean, bn.running_mean)
    torch.testing.assert_close(ghost.running_var, bn.running_var)
    assert int(ghost.num_batches_tracked) == len(x.split(4))
    # eval mode: BatchNorm with the running statistics; the state dicts are interchangeable
    ghost.eval(), bn.eval()
    torch.testing.assert_close(ghost(x), bn(x))
    assert ghost.state_dict().keys() == bn.state_dict().keys()


def test_with_ghost_batchnorm_replaces_every_batchnorm_and_keeps_the_state():
    from gradnoise.models import GhostBatchNorm1d, build_model, with_ghost_batchnorm

    torch.manual_seed(0)
    model = build_model({"name": "mlp", "hidden": [8, 8], "batchnorm": True}, (1, 28, 28), 10)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with_ghost_batchnorm(model, 4)
    assert sum(isinstance(m, GhostBatchNorm1d) for m in model.modules()) == 2
    assert not any(type(m) is torch.nn.BatchNorm1d for m in model.modules())
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k])


@pytest.mark.parametrize(
    ("name", "device", "layout"),
    [
        ("lenet", "cpu", torch.channels_last),
        ("alexnet_small", "cpu", torch.channels_last),
        ("vgg11", "cpu", torch.channels_last),
        ("resnet18", "cpu", torch.contiguous_format),
        ("mlp", "cpu", torch.contiguous_format),
        ("lenet", "cuda", torch.contiguous_format),
    ],
)
def test_networks_that_max_pool_run_channels_last_on_the_cpu(name, device, layout):
    shape = (1, 28, 28) if name in ("lenet", "mlp") else (3, 32, 32)
    assert fastest_memory_format(build_model({"name": name}, shape, 10), device) is layout
