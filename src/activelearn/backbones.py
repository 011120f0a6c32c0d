"""Backbone networks following the library's convention.

Every backbone is a plain :class:`torch.nn.Module` with

* ``head``: the final :class:`torch.nn.Linear` producing the outputs; its
  *input* is the penultimate embedding (Core-set, DACS, ... use it);
* ``embedding_dim``: the size of that embedding (``head.in_features``);
* ``stage_names``: names (as in :meth:`~torch.nn.Module.named_modules`) of the
  submodules whose outputs are the intermediate stage features (vectors or
  conv maps), tapped by forward hooks, e.g. by Learning Loss.

Each also offers ``embed(x)``, returning the penultimate embedding.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .exceptions import InvalidParameterError

__all__ = ["MLP", "SmallCNN", "ResNet18", "BasicBlock", "build_backbone", "default_backbone_for", "BACKBONES"]

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "silu": nn.SiLU,
}


def _pos_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise InvalidParameterError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _dropout_p(value: Any) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and 0.0 <= float(value) < 1.0
    if not ok:
        raise InvalidParameterError(f"dropout must be a probability in [0, 1), got {value!r}")
    return float(value)


class MLP(nn.Module):
    """Feed-forward network (the 3-layer net of the Repeated MNIST experiments by default).

    ``Flatten -> [Linear -> activation] * len(hidden) -> head``.

    Parameters
    ----------
    in_features : int
        Number of input features after flattening (e.g. 784 for MNIST).
    num_classes : int
        Number of outputs.
    hidden : sequence of int, default (256, 256)
        Widths of the hidden layers (at least one).
    activation : {"relu", "gelu", "tanh", "leaky_relu", "elu", "silu"}, default "relu"
        Hidden activation.
    dropout : float, default 0.0
        Dropout probability after every hidden activation (modules ``drop1``,
        ``drop2``, ...; none are created at 0, so the default network is
        unchanged).  MC-dropout strategies (BALD, BatchBALD) need it > 0.

    Attributes
    ----------
    head : torch.nn.Linear
        Final layer; its input is the last hidden activation.
    embedding_dim : int
        ``hidden[-1]``.
    stage_names : tuple of str
        ``("act1", "act2", ...)``: the activation modules, so stage features
        are post-activation hidden vectors.

    Notes
    -----
    Inputs of any shape ``(N, ...)`` are flattened to ``(N, in_features)``.
    """

    stage_names: tuple[str, ...]

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden: Sequence[int] = (256, 256),
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.dropout = _dropout_p(dropout)
        in_features = _pos_int("in_features", in_features)
        num_classes = _pos_int("num_classes", num_classes)
        if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence) or len(hidden) == 0:
            raise InvalidParameterError(
                f"hidden must be a non-empty sequence of positive ints such as (256, 256), got {hidden!r}"
            )
        widths = [_pos_int("hidden[i]", h) for h in hidden]
        if activation not in _ACTIVATIONS:
            raise InvalidParameterError(
                f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}"
            )
        self.flatten = nn.Flatten(start_dim=1)
        prev = in_features
        stages = []
        for i, w in enumerate(widths, start=1):
            setattr(self, f"fc{i}", nn.Linear(prev, w))
            setattr(self, f"act{i}", _ACTIVATIONS[activation]())
            if self.dropout > 0:
                setattr(self, f"drop{i}", nn.Dropout(self.dropout))
            stages.append(f"act{i}")
            prev = w
        self.head = nn.Linear(prev, num_classes)
        self.in_features = in_features
        self.num_classes = num_classes
        self.hidden = tuple(widths)
        self.embedding_dim = prev
        self.stage_names = tuple(stages)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Return the penultimate embedding, shape ``(N, embedding_dim)``."""
        h = self.flatten(x)
        if h.shape[1] != self.in_features:
            raise InvalidParameterError(
                f"MLP expects {self.in_features} features per sample after flattening, got {h.shape[1]} "
                f"(input shape {tuple(x.shape)})"
            )
        for i in range(1, len(self.hidden) + 1):
            h = getattr(self, f"act{i}")(getattr(self, f"fc{i}")(h))
            if self.dropout > 0:
                h = getattr(self, f"drop{i}")(h)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the outputs (logits), shape ``(N, num_classes)``."""
        return self.head(self.embed(x))


class SmallCNN(nn.Module):
    """Small convolutional network for MNIST-sized images.

    ``blocks`` convolutional blocks, ``block{i} = Conv3x3(width * 2**(i-1)) ->
    BN -> ReLU -> MaxPool2`` (channels ``width``, ``2 * width``, ``4 * width``,
    ...), then ``fc = Flatten -> Linear(hidden) -> ReLU``, then ``head``.
    ``blocks=3`` is the three-convolutional-layer CNN of Kim, Kim & Hwang's
    MixMNIST comparisons (``"cnn:blocks=3"``); the paper gives no widths, so
    the same width doubling as the default two blocks is our choice.

    Parameters
    ----------
    in_channels : int, default 1
        Input channels.
    num_classes : int, default 10
        Number of outputs.
    image_size : int or (int, int), default 28
        Input height and width (at least ``2**blocks`` each); fixes the size of ``fc``.
    width : int, default 32
        Channels of the first block (each next block doubles them).
    hidden : int, default 128
        Width of the hidden fully connected layer (``embedding_dim``).
    dropout : float, default 0.0
        Dropout probability on the hidden features before ``head`` (module
        ``drop``; none at 0, so the default network is unchanged).  MC-dropout
        strategies need it > 0.
    blocks : int, default 2
        Number of convolutional blocks (at least 1).  The default two give the
        same modules, parameter names and count as before this option existed,
        so older checkpoints load.

    Attributes
    ----------
    head : torch.nn.Linear
        Final layer.
    embedding_dim : int
        ``hidden``.
    stage_names : tuple of str
        ``("block1", ..., "block<blocks>", "fc")`` (an instance attribute).
    """

    stage_names: tuple[str, ...]

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        image_size: int | tuple[int, int] = 28,
        width: int = 32,
        hidden: int = 128,
        dropout: float = 0.0,
        blocks: int = 2,
    ) -> None:
        super().__init__()
        self.dropout = _dropout_p(dropout)
        in_channels = _pos_int("in_channels", in_channels)
        num_classes = _pos_int("num_classes", num_classes)
        width = _pos_int("width", width)
        blocks = _pos_int("blocks", blocks)
        hidden = _pos_int("hidden", hidden)
        if isinstance(image_size, Sequence) and not isinstance(image_size, str):
            if len(image_size) != 2:
                raise InvalidParameterError(f"image_size must be an int or (height, width), got {image_size!r}")
            h, w = (_pos_int("image_size", s) for s in image_size)
        else:
            h = w = _pos_int("image_size", image_size)
        side = 2**blocks
        if h < side or w < side:
            raise InvalidParameterError(
                f"image_size must be at least {side}x{side} ({blocks} 2x2 poolings), got {h}x{w}; "
                f"use fewer blocks or larger images"
            )
        prev = in_channels
        for i in range(1, blocks + 1):
            out = width * 2 ** (i - 1)
            conv = nn.Conv2d(prev, out, 3, padding=1, bias=False)
            setattr(self, f"block{i}", nn.Sequential(conv, nn.BatchNorm2d(out), nn.ReLU(), nn.MaxPool2d(2)))
            prev = out
        flat = prev * (h // side) * (w // side)
        self.fc = nn.Sequential(nn.Flatten(start_dim=1), nn.Linear(flat, hidden), nn.ReLU())
        if self.dropout > 0:
            self.drop = nn.Dropout(self.dropout)
        self.head = nn.Linear(hidden, num_classes)
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.image_size = (h, w)
        self.embedding_dim = hidden
        self.blocks = blocks
        self.stage_names = (*(f"block{i}" for i in range(1, blocks + 1)), "fc")

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Return the penultimate embedding, shape ``(N, embedding_dim)``."""
        if x.ndim != 4 or tuple(x.shape[1:]) != (self.in_channels, *self.image_size):
            raise InvalidParameterError(
                f"SmallCNN expects input of shape (N, {self.in_channels}, {self.image_size[0]}, "
                f"{self.image_size[1]}), got {tuple(x.shape)}"
            )
        for i in range(1, self.blocks + 1):
            x = getattr(self, f"block{i}")(x)
        h = self.fc(x)
        return self.drop(h) if self.dropout > 0 else h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the outputs (logits), shape ``(N, num_classes)``."""
        return self.head(self.embed(x))


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 conv-BN layers with an identity or 1x1 projection shortcut.

    Parameters
    ----------
    in_planes : int
        Input channels.
    planes : int
        Output channels.
    stride : int, default 1
        Stride of the first convolution (and of the projection shortcut).
    """

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18, CIFAR variant (as in the DACS and Learning Loss experiments).

    3x3 convolution stem with stride 1 and no max-pool, four stages of two
    :class:`BasicBlock` each (64, 128, 256, 512 channels; strides 1, 2, 2, 2),
    global average pooling, then ``head = Linear(512, num_classes)``.  On
    32x32 inputs the stage maps are 32x32, 16x16, 8x8 and 4x4.

    Parameters
    ----------
    num_classes : int, default 10
        Number of outputs.
    in_channels : int, default 3
        Input channels.
    dropout : float, default 0.0
        Dropout probability on the pooled features before ``head`` (module
        ``drop``; none at 0, so the default network is unchanged).

    Attributes
    ----------
    head : torch.nn.Linear
        Final layer.
    embedding_dim : int
        512.
    stage_names : tuple of str
        ``("layer1", "layer2", "layer3", "layer4")``.

    Notes
    -----
    Global average pooling is adaptive, so any input of at least 8x8 works.
    """

    stage_names: tuple[str, ...] = ("layer1", "layer2", "layer3", "layer4")
    layer1: nn.Sequential  # set in __init__ with setattr
    layer2: nn.Sequential
    layer3: nn.Sequential
    layer4: nn.Sequential

    def __init__(self, num_classes: int = 10, in_channels: int = 3, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = _dropout_p(dropout)
        num_classes = _pos_int("num_classes", num_classes)
        in_channels = _pos_int("in_channels", in_channels)
        self.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        in_planes = 64
        for i, (planes, stride) in enumerate(((64, 1), (128, 2), (256, 2), (512, 2)), start=1):
            blocks = [BasicBlock(in_planes, planes, stride), BasicBlock(planes, planes, 1)]
            setattr(self, f"layer{i}", nn.Sequential(*blocks))
            in_planes = planes
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(start_dim=1)
        if self.dropout > 0:
            self.drop = nn.Dropout(self.dropout)
        self.head = nn.Linear(512, num_classes)
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.embedding_dim = 512

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Return the pooled 512-d embedding, shape ``(N, 512)``."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise InvalidParameterError(
                f"ResNet18 expects input of shape (N, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        h = self.flatten(self.avgpool(out))
        return self.drop(h) if self.dropout > 0 else h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the outputs (logits), shape ``(N, num_classes)``."""
        return self.head(self.embed(x))


BACKBONES: tuple[str, ...] = ("mlp", "cnn", "resnet18")


def build_backbone(
    name: str,
    *,
    input_shape: Sequence[int],
    num_classes: int,
    **kwargs: Any,
) -> nn.Module:
    """Build a backbone by name for inputs of a given shape.

    Parameters
    ----------
    name : {"mlp", "cnn", "resnet18"}
        Backbone name (case-insensitive), optionally followed by numeric
        keyword arguments, e.g. ``"mlp:dropout=0.5"`` (so that a command line
        or a recipe holding only a name can ask for MC dropout).
    input_shape : sequence of int
        Shape of one sample, e.g. ``(784,)`` or ``(1, 28, 28)``; ``"cnn"`` and
        ``"resnet18"`` need ``(C, H, W)``.
    num_classes : int
        Number of outputs (classes, or regression outputs).
    **kwargs
        Extra constructor arguments (``hidden=``, ``activation=`` for MLP;
        ``width=``, ``hidden=``, ``blocks=`` for the CNN, e.g. ``"cnn:blocks=3"``; ``dropout=`` for all three).

    Returns
    -------
    torch.nn.Module
        :class:`MLP`, :class:`SmallCNN` or :class:`ResNet18`.

    Raises
    ------
    InvalidParameterError
        For an unknown name (close matches are suggested), a shape the
        backbone cannot take, or bad constructor arguments.
    """
    if not isinstance(name, str):
        raise InvalidParameterError(f"backbone name must be a str, one of {list(BACKBONES)}; got {name!r}")
    name, kwargs = _split_options(name, kwargs)
    key = name.strip().lower().replace("-", "").replace("_", "")
    key = {"resnet": "resnet18", "convnet": "cnn", "smallcnn": "cnn"}.get(key, key)
    if key not in BACKBONES:
        close = difflib.get_close_matches(name.lower(), BACKBONES, n=2, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise InvalidParameterError(f"unknown backbone {name!r}.{hint} Available: {list(BACKBONES)}")
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence) or len(input_shape) == 0:
        raise InvalidParameterError(f"input_shape must be a non-empty tuple of ints, got {input_shape!r}")
    shape = tuple(_pos_int("input_shape[i]", s) for s in input_shape)
    try:
        if key == "mlp":
            return MLP(math.prod(shape), num_classes, **kwargs)
        if len(shape) != 3:
            raise InvalidParameterError(
                f"backbone {key!r} needs image inputs of shape (C, H, W), got input_shape={shape}; "
                "use 'mlp' for vector inputs"
            )
        if key == "cnn":
            return SmallCNN(shape[0], num_classes, image_size=(shape[1], shape[2]), **kwargs)
        if shape[1] < 8 or shape[2] < 8:
            raise InvalidParameterError(f"resnet18 needs images of at least 8x8, got {shape[1]}x{shape[2]}")
        return ResNet18(num_classes, shape[0], **kwargs)
    except TypeError as exc:
        raise InvalidParameterError(f"bad arguments for backbone {key!r}: {exc}") from exc


def _split_options(name: str, kwargs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``"mlp:dropout=0.5,hidden=..."`` -> ``("mlp", {"dropout": 0.5})`` merged over ``kwargs`` (numbers only)."""
    if ":" not in name:
        return name, kwargs
    base, _, opts = name.partition(":")
    parsed: dict[str, Any] = {}
    for item in filter(None, (o.strip() for o in opts.split(","))):
        k, eq, v = item.partition("=")
        try:
            parsed[k.strip()] = int(v) if v.strip().lstrip("-").isdigit() else float(v)
        except ValueError:
            eq = ""
        if not eq or not k.strip():
            raise InvalidParameterError(f"backbone options must read 'name:key=number,...', e.g. 'mlp:dropout=0.5'; got {name!r}")
    return base, {**kwargs, **parsed}


def default_backbone_for(bundle: Any) -> str:
    """Choose the default backbone name for a dataset.

    Parameters
    ----------
    bundle : DatasetBundle
        Any object with ``input_shape`` (and optionally ``name``).

    Returns
    -------
    str
        ``"mlp"`` for vector inputs and for Repeated MNIST (the paper's
        feed-forward net, whatever the sample shape), ``"resnet18"`` for
        3-channel images, ``"cnn"`` for other images (1 channel, ...).

    Raises
    ------
    InvalidParameterError
        If ``bundle`` has no usable ``input_shape``.
    """
    shape = getattr(bundle, "input_shape", None)
    if not isinstance(shape, Sequence) or len(shape) == 0:
        raise InvalidParameterError(
            f"default_backbone_for needs an object with a non-empty input_shape, got {type(bundle).__name__}"
        )
    name = str(getattr(bundle, "name", "")).lower()
    if name.startswith("repeated_mnist") or len(shape) == 1:
        return "mlp"
    if len(shape) == 3 and shape[0] == 3:
        return "resnet18"
    if len(shape) == 3:
        return "cnn"
    return "mlp"
