"""SmallCNN(blocks=...): the paper's three-convolutional-layer CNN next to the default two blocks."""

from __future__ import annotations

import pytest
import torch

import activelearn as al
from activelearn.backbones import SmallCNN, build_backbone
from activelearn.exceptions import InvalidParameterError

# the default network as it was before ``blocks`` existed, counted by hand (28x28, 1 channel, 10 classes):
# conv 1*32*9 + BN 2*32 + conv 32*64*9 + BN 2*64 + fc (64*7*7)*128 + 128 + head 128*10 + 10
_DEFAULT_PARAMS = 288 + 64 + 18432 + 128 + 401408 + 128 + 1290  # = 421738
_DEFAULT_NAMES = [
    "block1.0.weight", "block1.1.weight", "block1.1.bias", "block1.1.running_mean", "block1.1.running_var",
    "block1.1.num_batches_tracked", "block2.0.weight", "block2.1.weight", "block2.1.bias", "block2.1.running_mean",
    "block2.1.running_var", "block2.1.num_batches_tracked", "fc.1.weight", "fc.1.bias", "head.weight", "head.bias",
]


def test_default_is_the_old_two_block_network() -> None:
    net = SmallCNN()
    assert sum(p.numel() for p in net.parameters()) == _DEFAULT_PARAMS == 421738
    assert list(net.state_dict()) == _DEFAULT_NAMES
    assert net.stage_names == ("block1", "block2", "fc") and net.blocks == 2
    assert SmallCNN().load_state_dict(SmallCNN(blocks=2).state_dict())  # a default checkpoint loads


@pytest.mark.parametrize(
    ("blocks", "flat", "channels"),
    [(1, 32 * 14 * 14, (32,)), (2, 64 * 7 * 7, (32, 64)), (3, 128 * 3 * 3, (32, 64, 128))],
)
def test_shapes_and_stages(blocks: int, flat: int, channels: tuple[int, ...]) -> None:
    net = SmallCNN(1, 11, image_size=28, width=32, hidden=16, blocks=blocks)
    x = torch.randn(5, 1, 28, 28)
    assert net(x).shape == (5, 11) and net.embed(x).shape == (5, 16)
    assert net.stage_names == (*(f"block{i}" for i in range(1, blocks + 1)), "fc")
    assert tuple(getattr(net, f"block{i}")[0].out_channels for i in range(1, blocks + 1)) == channels
    assert net.fc[1].in_features == flat
    model = al.ALModel(net, num_classes=11, device="cpu")  # the stage hooks find every block
    out = model.predict(x, ("probs", *(f"stage{i}" for i in range(blocks + 1))))
    assert [tuple(out[f"stage{i}"].shape) for i in range(blocks)] == [(5, c) for c in channels]  # conv maps, pooled by predict
    assert out[f"stage{blocks}"].shape == (5, 16)


def test_three_blocks_parameter_count_by_hand() -> None:
    net = SmallCNN(1, 11, blocks=3)
    # convs 1*32*9, 32*64*9, 64*128*9; BNs 2*(32+64+128); fc 128*3*3*128 + 128; head 128*11 + 11
    assert sum(p.numel() for p in net.parameters()) == 288 + 18432 + 73728 + 448 + 147456 + 128 + 1419


def test_spec_string_builds_three_blocks() -> None:
    net = build_backbone("cnn:blocks=3", input_shape=(1, 28, 28), num_classes=11)
    assert isinstance(net, SmallCNN) and net.blocks == 3
    assert net.stage_names == ("block1", "block2", "block3", "fc")
    assert build_backbone("cnn", input_shape=(1, 28, 28), num_classes=10).stage_names == ("block1", "block2", "fc")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"blocks": 0}, "blocks must be a positive int, got 0"),
        ({"blocks": 2.5}, "blocks must be a positive int, got 2.5"),
        ({"blocks": True}, "blocks must be a positive int, got True"),
        ({"blocks": 3, "image_size": 7}, r"image_size must be at least 8x8 \(3 2x2 poolings\), got 7x7"),
        ({"blocks": 2, "image_size": (4, 3)}, r"image_size must be at least 4x4 \(2 2x2 poolings\), got 4x3"),
    ],
)
def test_bad_blocks_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        SmallCNN(1, 10, **kwargs)


def test_spec_string_refuses_too_many_blocks_for_the_image() -> None:
    with pytest.raises(InvalidParameterError, match=r"at least 32x32 \(5 2x2 poolings\), got 28x28"):
        build_backbone("cnn:blocks=5", input_shape=(1, 28, 28), num_classes=10)
