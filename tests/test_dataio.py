"""Dataset pools: batched reads through DataLoaders, reproducible augmentation, deterministic scoring."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import activelearn as al
from activelearn.augment import RandomCropFlip
from activelearn.dataio import SeededItems, iter_batches, read_items
from activelearn.pools import Answer

G = torch.Generator().manual_seed(0)
X = torch.rand(96, 1, 6, 6, generator=G)
Y = (X.mean((1, 2, 3)) > X.mean()).long()


class Plain(torch.utils.data.Dataset):  # type: ignore[type-arg]
    def __len__(self) -> int:
        return len(X)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return X[i], int(Y[i])


class Jitter(Plain):
    """Adds global-RNG noise on every read, like a user's random augmentation."""

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return X[i] + 0.1 * torch.randn(X[i].shape), int(Y[i])


def _pools(data: torch.Tensor | torch.utils.data.Dataset, **kw: int) -> al.Pools:
    pools = al.Pools(data, num_classes=2, **kw)
    pools.record([Answer(int(i), int(Y[i])) for i in range(40)])
    return pools


def _model() -> al.ALModel:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(36, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    return al.ALModel(net, num_classes=2, device="cpu", seed=0)


def test_reads_equal_the_tensor_and_do_not_depend_on_workers() -> None:
    idx = np.array([5, 3, 90, 3, 0])
    assert torch.equal(read_items(Plain(), idx), X[idx])
    batches = [np.arange(0, 40), np.arange(40, 96)]
    for workers in (0, 2):
        got = list(iter_batches(Plain(), batches, num_workers=workers))
        assert [g.shape[0] for g in got] == [40, 56] and torch.equal(torch.cat(got), X)
    noisy0 = torch.cat(list(iter_batches(Jitter(), batches, seed=3, num_workers=0)))
    noisy2 = torch.cat(list(iter_batches(Jitter(), batches, seed=3, num_workers=2)))
    assert torch.equal(noisy0, noisy2)  # seeded per item, not per worker
    assert not torch.equal(noisy0, torch.cat(list(iter_batches(Jitter(), batches, seed=4))))


def test_seeded_reads_leave_the_global_rngs_alone() -> None:
    torch.manual_seed(11)
    np.random.seed(11)
    expected_t, expected_np = torch.rand(3), np.random.rand(3)
    torch.manual_seed(11)
    np.random.seed(11)
    SeededItems(Jitter(), 0)[7]
    assert torch.equal(torch.rand(3), expected_t) and np.array_equal(np.random.rand(3), expected_np)


def test_scoring_a_randomly_augmenting_dataset_is_deterministic() -> None:
    ds = Jitter()
    assert not torch.equal(ds[0][0], ds[0][0])  # the dataset itself is random
    model = _model()
    ent = al.strategies.get("entropy")
    idx = np.arange(40, 96)
    first = ent.score(model, _pools(ds), idx)
    second = ent.score(model, _pools(ds), idx)  # fresh pools: no cached outputs
    assert np.array_equal(first, second)


@pytest.mark.parametrize("workers", [0, 2])
def test_training_from_a_dataset_equals_the_tensor_path(workers: int) -> None:
    cfg = al.TrainConfig(epochs=3, batch_size=16, lr=0.1, seed=0)
    weights = []
    for data, kw in ((X, {}), (Plain(), {"num_workers": workers})):
        model = _model()
        al.Trainer(cfg, progress=False).fit(model, _pools(data, **kw))
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.equal(weights[0], weights[1])


def test_dataset_augmentation_is_reproducible_and_varies_by_epoch() -> None:
    cfg = al.TrainConfig(epochs=2, batch_size=16, lr=0.1, seed=0)

    def train(workers: int, seed: int = 0) -> torch.Tensor:
        model = _model()
        al.Trainer(al.TrainConfig(**{**cfg.__dict__, "seed": seed}), progress=False).fit(model, _pools(Jitter(), num_workers=workers))
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    assert torch.equal(train(0), train(0))
    assert torch.equal(train(0), train(2))
    assert not torch.equal(train(0), train(0, seed=1))


def test_random_crop_flip_batch_equals_a_per_sample_reference() -> None:
    x = torch.arange(3 * 2 * 5 * 4, dtype=torch.float32).reshape(3, 2, 5, 4)
    aug = RandomCropFlip(size=4, padding=2, flip_p=0.5, fill=(-1.0, -2.0))
    out = aug(x, generator=torch.Generator().manual_seed(5))
    gen = torch.Generator().manual_seed(5)
    for i in range(3):  # draws per sample, in order: top, left, flip
        top = int(torch.randint(0, 9 - 4 + 1, (1,), generator=gen))  # padded 9 x 8
        left = int(torch.randint(0, 8 - 4 + 1, (1,), generator=gen))
        flip = float(torch.rand((), generator=gen)) < 0.5
        padded = torch.stack([torch.full((9, 8), -1.0), torch.full((9, 8), -2.0)])
        padded[:, 2:7, 2:6] = x[i]
        ref = padded[:, top : top + 4, left : left + 4]
        assert torch.equal(out[i], ref.flip(-1) if flip else ref)
    # one sample alone, from the same generator state, gives the same crop
    assert torch.equal(aug(x[0], generator=torch.Generator().manual_seed(5)), out[0])
    assert torch.equal(RandomCropFlip(size=4, padding=0, flip_p=1.0)(x[:, :, :4]), x[:, :, :4].flip(-1))
    with pytest.raises(al.exceptions.InvalidInputError, match="tensor"):
        aug(x[0, 0])


def test_a_test_set_given_as_a_dataset_is_read_once_deterministically() -> None:
    from activelearn._validation import as_test_set

    x1, y1 = as_test_set(Jitter(), task="classification", num_classes=2)
    x2, _ = as_test_set(Jitter(), task="classification", num_classes=2)
    assert torch.equal(x1, x2) and torch.equal(y1, Y) and x1.shape == X.shape
    assert not torch.equal(x1, X)  # the Dataset's own noise is there, seeded per item
    with pytest.raises(al.exceptions.InvalidInputError, match=r"\(input, target\) items"):
        as_test_set(torch.utils.data.TensorDataset(X), task="classification", num_classes=2)


def test_make_loop_refuses_a_raw_dataset_with_the_way_to_go() -> None:
    with pytest.raises(al.exceptions.InvalidParameterError, match="DatasetBundle, got Plain"):
        al.experiment.make_loop(Plain(), "entropy")  # type: ignore[arg-type]
