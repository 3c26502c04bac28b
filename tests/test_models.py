from __future__ import annotations

import pytest
import torch

from gradnoise.models import MODELS, build_model


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
