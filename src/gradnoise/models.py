"""The networks: small ones for the CPU default, the reference code's models, and CIFAR-sized
VGG/ResNet. Every model maps (N, C, H, W) to (N, n_classes) logits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

MODELS = ("mlp", "lenet", "fc_ref", "alexnet_small", "vgg11", "vgg16", "resnet18")


def _flat_size(features: nn.Module, input_shape: tuple[int, ...]) -> int:
    with torch.no_grad():
        return features(torch.zeros(1, *input_shape)).numel()


def mlp(
    input_shape: tuple[int, ...],
    n_classes: int,
    hidden: list[int] | None = None,
    batchnorm: bool = False,
) -> nn.Module:
    """ReLU MLP; with `batchnorm`, Linear → BatchNorm1d → ReLU in every hidden layer (the MNIST F1
    network of Hoffer et al. 2017 is hidden [512] × 5 with batchnorm)."""
    sizes = [int(torch.tensor(input_shape).prod())] + list(hidden or [128])
    layers: list[nn.Module] = [nn.Flatten()]
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), *([nn.BatchNorm1d(b)] if batchnorm else []), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(sizes[-1], n_classes))


class _Ghost:
    """Ghost Batch Normalization (Hoffer et al. 2017): in training, a batch is normalized in chunks of
    `ghost_batch_size` consecutive examples (the last chunk may be smaller), each with its own mean
    and variance, and the running statistics are updated once per chunk, in order — as the official
    code (eladhoffer/bigBatch, main_gbn.py) does by running each ghost batch through the network on
    its own. In eval mode it is BatchNorm with the running statistics. Parameters and buffers are
    BatchNorm's, so state dicts move freely between the two."""

    ghost_batch_size: int

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or x.shape[0] <= self.ghost_batch_size:
            return super().forward(x)
        return torch.cat([super(_Ghost, self).forward(c) for c in x.split(self.ghost_batch_size)])


class GhostBatchNorm1d(_Ghost, nn.BatchNorm1d):
    def __init__(self, num_features: int, ghost_batch_size: int, **kwargs: Any) -> None:
        super().__init__(num_features, **kwargs)
        self.ghost_batch_size = ghost_batch_size


class GhostBatchNorm2d(_Ghost, nn.BatchNorm2d):
    def __init__(self, num_features: int, ghost_batch_size: int, **kwargs: Any) -> None:
        super().__init__(num_features, **kwargs)
        self.ghost_batch_size = ghost_batch_size


def with_ghost_batchnorm(model: nn.Module, ghost_batch_size: int) -> nn.Module:
    """Replace every BatchNorm1d/2d of `model` in place by its ghost version (same state)."""
    for name, child in model.named_children():
        ghost_cls = {nn.BatchNorm1d: GhostBatchNorm1d, nn.BatchNorm2d: GhostBatchNorm2d}.get(
            type(child)
        )
        if ghost_cls is None:
            with_ghost_batchnorm(child, ghost_batch_size)
            continue
        ghost = ghost_cls(
            child.num_features,
            ghost_batch_size,
            eps=child.eps,
            momentum=child.momentum,
            affine=child.affine,
            track_running_stats=child.track_running_stats,
        ).to(next(child.buffers(), torch.empty(0)).device)
        ghost.load_state_dict(child.state_dict())
        setattr(model, name, ghost)
    return model


def fc_ref(
    input_shape: tuple[int, ...], n_classes: int, width: int = 50, depth: int = 3
) -> nn.Module:
    """The reference code's bias-free ReLU MLP: `depth` linear layers of `width` units."""
    d_in = int(torch.tensor(input_shape).prod())
    dims = [d_in] + [width] * (depth - 1)
    layers: list[nn.Module] = [nn.Flatten()]
    for a, b in zip(dims[:-1], dims[1:], strict=True):
        layers += [nn.Linear(a, b, bias=False), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(dims[-1], n_classes, bias=False))


class LeNet(nn.Module):
    """LeNet-5 style: two conv/pool stages and three fully connected layers."""

    def __init__(self, input_shape: tuple[int, ...], n_classes: int) -> None:
        super().__init__()
        pad = 2 if input_shape[-1] < 32 else 0  # 28×28 digits are padded to LeNet's 32×32
        self.features = nn.Sequential(
            nn.Conv2d(input_shape[0], 6, 5, padding=pad),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.classifier = nn.Sequential(
            nn.Linear(_flat_size(self.features, input_shape), 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class AlexNetSmall(nn.Module):
    """The reference code's small CIFAR AlexNet: five convs with `ch` channels, then two hidden
    layers of width size·⌊1 + log2(size)⌋ where size is the flattened feature size."""

    def __init__(self, input_shape: tuple[int, ...], n_classes: int, ch: int = 64) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(input_shape[0], ch, kernel_size=4, stride=2, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(ch, ch, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            *[
                m
                for _ in range(3)
                for m in (nn.Conv2d(ch, ch, 3, padding=1), nn.ReLU(inplace=True))
            ],
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Flatten(),
        )
        size = _flat_size(self.features, input_shape)
        width = size * int(1 + torch.log2(torch.tensor(float(size))))
        self.classifier = nn.Sequential(
            nn.Dropout(),
            nn.Linear(size, width),
            nn.ReLU(inplace=True),
            nn.Dropout(),
            nn.Linear(width, width),
            nn.ReLU(inplace=True),
            nn.Linear(width, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


_VGG_CFG = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [
        64,
        64,
        "M",
        128,
        128,
        "M",
        256,
        256,
        256,
        "M",
        512,
        512,
        512,
        "M",
        512,
        512,
        512,
        "M",
    ],
}


def vgg(name: str, input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    """VGG with batch norm for 32×32 inputs: five 2× poolings leave 1×1×512."""
    if min(input_shape[1:]) < 32:
        raise ValueError(
            f"{name} needs inputs of at least 32×32 (got {input_shape}); use a CIFAR data set"
        )
    layers: list[nn.Module] = []
    c = input_shape[0]
    for v in _VGG_CFG[name]:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
            c = v
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, n_classes))


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 adapted to 32×32 inputs: a 3×3 stem with stride 1 and no max pooling."""

    def __init__(self, input_shape: tuple[int, ...], n_classes: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(input_shape[0], 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU()
        )
        blocks, c = [], 64
        for c_out, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [BasicBlock(c, c_out, stride), BasicBlock(c_out, c_out, 1)]
            c = c_out
        self.layers = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(self.stem(x)))


_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "mlp": mlp,
    "lenet": LeNet,
    "fc_ref": fc_ref,
    "alexnet_small": AlexNetSmall,
    "vgg11": lambda s, n: vgg("vgg11", s, n),
    "vgg16": lambda s, n: vgg("vgg16", s, n),
    "resnet18": ResNet18,
}


def build_model(spec: dict[str, Any], input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    """`spec` is the experiment's `model` entry: its `name` and that model's keyword arguments."""
    kwargs = {k: v for k, v in spec.items() if k != "name"}
    name = spec["name"]
    if name not in _BUILDERS:
        raise ValueError(f"unknown model {name!r}; allowed: {', '.join(MODELS)}")
    return _BUILDERS[name](tuple(input_shape), n_classes, **kwargs)


def fastest_memory_format(model: nn.Module, device: torch.device) -> torch.memory_format:
    """Channels-last for a network that max-pools, on the CPU: torch's NCHW max pooling is slow there
    (a quarter of the small AlexNet's gradient pass), its channels-last one is not, and the
    convolutions follow the weights' layout whatever the inputs' (measured in benchmarks/README.md).
    ResNet-18, which does not max-pool, keeps NCHW, which is not slower for it at every batch size.
    A rule on the model, not a timing, so that the choice, and with it every rounding, is the same
    on every run."""
    max_pools = any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    if torch.device(device).type == "cpu" and max_pools:
        return torch.channels_last
    return torch.contiguous_format
