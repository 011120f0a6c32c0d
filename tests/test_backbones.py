"""Tests of activelearn.backbones: the head / embedding_dim / stage_names convention."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from activelearn.backbones import MLP, ResNet18, SmallCNN, build_backbone, default_backbone_for
from activelearn.exceptions import InvalidParameterError


def stage_outputs(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Run ``model`` on ``x`` and capture each stage's output with forward hooks."""
    mods = dict(model.named_modules())
    out: dict[str, torch.Tensor] = {}
    hooks = [
        mods[n].register_forward_hook(lambda m, i, o, n=n: out.__setitem__(n, o.detach()))
        for n in model.stage_names
    ]
    try:
        model(x)
    finally:
        for h in hooks:
            h.remove()
    return out


CASES = [
    (lambda: MLP(784, 10), (3, 784), 256),
    (lambda: MLP(784, 7, hidden=(64, 32, 16), activation="tanh"), (3, 1, 28, 28), 16),
    (lambda: SmallCNN(), (3, 1, 28, 28), 128),
    (lambda: SmallCNN(in_channels=3, num_classes=5, image_size=(32, 20), width=8, hidden=40), (3, 3, 32, 20), 40),
    (lambda: ResNet18(), (2, 3, 32, 32), 512),
]


@pytest.mark.parametrize("factory, shape, emb", CASES)
def test_convention(factory: Callable[[], nn.Module], shape: tuple[int, ...], emb: int) -> None:
    torch.manual_seed(0)
    model = factory().eval()
    x = torch.randn(shape)
    y = model(x)
    assert y.shape == (shape[0], model.head.out_features)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert linears[-1] is model.head
    assert model.head.in_features == model.embedding_dim == emb
    z = model.embed(x)
    assert z.shape == (shape[0], emb)
    assert torch.allclose(model.head(z), y, atol=1e-6)
    names = dict(model.named_modules())
    assert len(model.stage_names) >= 1
    assert all(n in names for n in model.stage_names)
    feats = stage_outputs(model, x)
    assert set(feats) == set(model.stage_names)


def test_mlp_stages_are_post_activation() -> None:
    model = MLP(20, 3, hidden=(8, 6))
    assert model.stage_names == ("act1", "act2")
    feats = stage_outputs(model, torch.randn(5, 20))
    assert feats["act1"].shape == (5, 8) and feats["act2"].shape == (5, 6)
    assert all(bool((f >= 0).all()) for f in feats.values())


def test_smallcnn_stage_shapes() -> None:
    feats = stage_outputs(SmallCNN().eval(), torch.randn(2, 1, 28, 28))
    assert feats["block1"].shape == (2, 32, 14, 14)
    assert feats["block2"].shape == (2, 64, 7, 7)
    assert feats["fc"].shape == (2, 128)


def test_resnet18_stage_shapes_and_structure() -> None:
    model = ResNet18(num_classes=10).eval()
    assert model.stage_names == ("layer1", "layer2", "layer3", "layer4")
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert model.head.in_features == 512 and model.head.out_features == 10
    feats = stage_outputs(model, torch.randn(2, 3, 32, 32))
    shapes = [tuple(feats[n].shape[1:]) for n in model.stage_names]
    assert shapes == [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4)]
    n_params = sum(p.numel() for p in model.parameters())
    assert 11_000_000 < n_params < 11_300_000  # the CIFAR ResNet-18 has ~11.17M parameters


def test_bad_constructor_args() -> None:
    with pytest.raises(InvalidParameterError, match="activation"):
        MLP(4, 2, activation="swishy")
    with pytest.raises(InvalidParameterError, match="hidden"):
        MLP(4, 2, hidden=())
    with pytest.raises(InvalidParameterError, match="num_classes"):
        ResNet18(num_classes=0)
    with pytest.raises(InvalidParameterError, match="image_size"):
        SmallCNN(image_size=2)
    with pytest.raises(InvalidParameterError, match="784"):
        MLP(784, 10)(torch.randn(2, 100))


def test_build_backbone() -> None:
    m = build_backbone("mlp", input_shape=(1, 28, 28), num_classes=10)
    assert isinstance(m, MLP) and m.in_features == 784
    m = build_backbone("MLP", input_shape=(64,), num_classes=3, hidden=(32,))
    assert m.hidden == (32,)
    c = build_backbone("cnn", input_shape=(1, 28, 28), num_classes=10)
    assert isinstance(c, SmallCNN) and c.image_size == (28, 28)
    r = build_backbone("resnet18", input_shape=(3, 32, 32), num_classes=100)
    assert isinstance(r, ResNet18) and r.head.out_features == 100


def test_build_backbone_errors() -> None:
    with pytest.raises(InvalidParameterError, match="resnet18"):
        build_backbone("resnet81", input_shape=(3, 32, 32), num_classes=10)
    with pytest.raises(InvalidParameterError, match=r"\(C, H, W\)"):
        build_backbone("cnn", input_shape=(64,), num_classes=10)
    with pytest.raises(InvalidParameterError, match="input_shape"):
        build_backbone("mlp", input_shape=(), num_classes=10)
    with pytest.raises(InvalidParameterError, match="bad arguments"):
        build_backbone("resnet18", input_shape=(3, 32, 32), num_classes=10, width=3)


def test_default_backbone_for() -> None:
    ns = SimpleNamespace
    assert default_backbone_for(ns(name="digits", input_shape=(64,))) == "mlp"
    assert default_backbone_for(ns(name="repeated_mnist", input_shape=(1, 28, 28))) == "mlp"
    assert default_backbone_for(ns(name="mnist", input_shape=(1, 28, 28))) == "cnn"
    assert default_backbone_for(ns(name="cifar10", input_shape=(3, 32, 32))) == "resnet18"
    with pytest.raises(InvalidParameterError):
        default_backbone_for(object())


def test_default_backbone_for_bundle() -> None:
    from activelearn.datasets import digits

    b = digits()
    name = default_backbone_for(b)
    assert name == "mlp"
    model = build_backbone(name, input_shape=b.input_shape, num_classes=b.num_classes)
    assert model(b.train_x[:4]).shape == (4, 10)


def test_dropout_option_default_off_and_by_name() -> None:
    plain = MLP(4, 2)
    assert not any(isinstance(m, nn.Dropout) for m in plain.modules())
    assert list(plain.state_dict()) == list(MLP(4, 2, dropout=0.5).state_dict())  # dropout adds no parameters
    net = build_backbone("mlp:dropout=0.25", input_shape=(4,), num_classes=2)
    assert [m.p for m in net.modules() if isinstance(m, nn.Dropout)] == [0.25, 0.25]
    cnn = build_backbone("cnn", input_shape=(1, 8, 8), num_classes=2, dropout=0.5)
    assert isinstance(cnn.drop, nn.Dropout)
    cnn.eval()
    x = torch.randn(3, 1, 8, 8)
    torch.testing.assert_close(cnn(x), cnn(x))
    res = build_backbone("resnet18:dropout=0.1", input_shape=(3, 8, 8), num_classes=2)
    assert res.drop.p == 0.1
    for bad in (1.0, -0.1, True):
        with pytest.raises(InvalidParameterError, match="dropout must be a probability"):
            SmallCNN(dropout=bad)
    with pytest.raises(InvalidParameterError, match=r"mlp:dropout=0\.5"):
        build_backbone("mlp:dropout", input_shape=(4,), num_classes=2)
