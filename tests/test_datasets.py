"""Tests of activelearn.datasets: bundle validation, idx reader, loaders, root resolution."""

from __future__ import annotations

import gzip
import math
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from activelearn import datasets as D
from activelearn.datasets import base as dbase
from activelearn.datasets.mnist import MNIST_FILES
from activelearn.exceptions import DatasetNotFoundError, InvalidInputError, InvalidParameterError

SHARED = Path(os.environ.get("ACTIVELEARN_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")
MNIST_DIR = SHARED / "mnist"
NOTMNIST_DIR = SHARED / "notmnist"
HAS_MNIST = all((MNIST_DIR / f).is_file() for f in MNIST_FILES)
needs_mnist = pytest.mark.skipif(not HAS_MNIST, reason=f"MNIST files not in {MNIST_DIR}")


# --------------------------------------------------------------------------- helpers
def write_idx(path: Path, arr: np.ndarray, *, gz: bool, code: int = 0x08) -> Path:
    """Write ``arr`` as an idx file (big-endian header), optionally gzip-compressed."""
    dt = {0x08: ">u1", 0x0C: ">i4", 0x0D: ">f4"}[code]
    header = struct.pack(">I", (code << 8) | arr.ndim) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    payload = header + np.ascontiguousarray(arr, dtype=dt).tobytes()
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


def make_fake_mnist(folder: Path, n_train: int = 20, n_test: int = 10, *, gz: bool = True) -> Path:
    """A tiny MNIST-layout folder with random images and cyclic labels."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    sfx = ".gz" if gz else ""
    write_idx(folder / f"train-images-idx3-ubyte{sfx}", rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8), gz=gz)
    write_idx(folder / f"train-labels-idx1-ubyte{sfx}", (np.arange(n_train) % 10).astype(np.uint8), gz=gz)
    write_idx(folder / f"t10k-images-idx3-ubyte{sfx}", rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8), gz=gz)
    write_idx(folder / f"t10k-labels-idx1-ubyte{sfx}", (np.arange(n_test) % 10).astype(np.uint8), gz=gz)
    return folder


@pytest.fixture(scope="module")
def real_mnist() -> D.DatasetBundle:
    if not HAS_MNIST:
        pytest.skip("MNIST files absent")
    return D.mnist(MNIST_DIR)


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No env var, cwd and repo root moved to an empty tmp tree: default search finds nothing."""
    monkeypatch.delenv("ACTIVELEARN_DATA", raising=False)
    work = tmp_path / "ws" / "main"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    monkeypatch.setattr(dbase, "_REPO_ROOT", work)
    return work


# --------------------------------------------------------------------------- DatasetBundle
def _bundle(**over: object) -> D.DatasetBundle:
    kw: dict[str, object] = dict(
        name="toy",
        train_x=torch.zeros(6, 3),
        train_y=torch.tensor([0, 1, 2, 0, 1, 2]),
        test_x=torch.zeros(2, 3),
        test_y=torch.tensor([0, 1]),
        num_classes=3,
    )
    kw.update(over)
    return D.DatasetBundle(**kw)  # type: ignore[arg-type]


def test_bundle_valid_and_summary() -> None:
    b = _bundle(train_x=torch.zeros(6, 3, dtype=torch.float64), train_y=torch.tensor([0, 1, 2, 0, 1, 2], dtype=torch.int32))
    assert b.train_x.dtype == torch.float32 and b.train_y.dtype == torch.int64
    assert b.input_shape == (3,) and b.num_train == 6 and b.num_test == 2
    s = repr(b)
    assert "\n" not in s and "toy" in s and "train=6" in s and s == b.summary()
    with pytest.raises(AttributeError):  # dataclasses.FrozenInstanceError
        b.name = "other"  # type: ignore[misc]


def test_bundle_regression() -> None:
    b = _bundle(train_y=torch.randn(6, dtype=torch.float64), test_y=torch.randn(2), num_classes=1, task="regression")
    assert b.train_y.dtype == torch.float32 and b.task == "regression"


@pytest.mark.parametrize(
    "over, err, text",
    [
        (dict(train_y=torch.tensor([0, 1, 2])), InvalidInputError, "6 samples"),
        (dict(train_y=torch.tensor([0, 1, 2, 0, 1, 3])), InvalidInputError, "0..2"),
        (dict(test_y=torch.tensor([-1, 0])), InvalidInputError, "0..2"),
        (dict(train_x=torch.tensor([[float("nan")] * 3] * 6)), InvalidInputError, "NaN"),
        (dict(test_x=torch.zeros(2, 4)), InvalidInputError, "shape"),
        (dict(input_shape=(4,)), InvalidInputError, "input_shape"),
        (dict(task="ranking"), InvalidParameterError, "task"),
        (dict(num_classes=0), InvalidParameterError, "num_classes"),
        (dict(train_y=torch.tensor([0.5] * 6)), InvalidInputError, "regression"),
        (dict(train_transform=3), InvalidParameterError, "callable"),
        (dict(train_x=[[0.0]] * 6), InvalidInputError, "torch.Tensor"),
    ],
)
def test_bundle_rejects(over: dict, err: type, text: str) -> None:
    with pytest.raises(err, match=text):
        _bundle(**over)


# --------------------------------------------------------------------------- digits
def test_digits_shapes_and_range() -> None:
    b = D.digits()
    assert b.name == "digits" and b.task == "classification" and b.num_classes == 10
    assert b.train_x.shape == (1437, 64) and b.test_x.shape == (360, 64)
    assert b.input_shape == (64,) and b.train_transform is None
    assert b.train_x.dtype == torch.float32 and b.train_y.dtype == torch.int64
    assert float(b.train_x.min()) >= 0.0 and float(b.train_x.max()) <= 1.0
    assert float(b.train_x.max()) == 1.0


def test_digits_stratified_and_disjoint() -> None:
    b = D.digits(test_size=0.2, seed=3)
    tr, te = b.meta["train_index"], b.meta["test_index"]
    assert len(set(tr) & set(te)) == 0 and len(tr) + len(te) == 1797
    n_tr = torch.bincount(b.train_y, minlength=10).double()
    n_te = torch.bincount(b.test_y, minlength=10).double()
    frac = n_te / (n_tr + n_te)
    assert bool(((frac - 0.2).abs() < 0.02).all()), frac


def test_digits_seed_determinism() -> None:
    a, b, c = D.digits(seed=0), D.digits(seed=0), D.digits(seed=1)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    assert not torch.equal(a.train_x, c.train_x)


def test_digits_count_and_bad_args() -> None:
    assert D.digits(test_size=100).num_test == 100
    for bad in (0.0, 1.0, -0.1, 5, 1797, "0.2", True):
        with pytest.raises(InvalidParameterError, match="test_size"):
            D.digits(test_size=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="seed"):
        D.digits(seed=-1)


# --------------------------------------------------------------------------- read_idx
@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_roundtrip(tmp_path: Path, gz: bool) -> None:
    imgs = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    labels = np.array([7, 0, 255], dtype=np.uint8)
    a = D.read_idx(write_idx(tmp_path / "imgs", imgs, gz=gz))
    b = D.read_idx(write_idx(tmp_path / "labels", labels, gz=gz))
    assert a.dtype == np.uint8 and a.shape == (3, 4, 5) and np.array_equal(a, imgs)
    assert np.array_equal(b, labels)
    a[0, 0, 0] = 1  # writable


def test_read_idx_other_dtypes(tmp_path: Path) -> None:
    ints = np.array([[-5, 70000], [1, 2]], dtype=np.int32)
    out = D.read_idx(write_idx(tmp_path / "i.gz", ints, gz=True, code=0x0C))
    assert out.dtype == np.int32 and np.array_equal(out, ints)
    fl = np.array([0.5, -1.25], dtype=np.float32)
    assert np.array_equal(D.read_idx(write_idx(tmp_path / "f", fl, gz=False, code=0x0D)), fl)


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_bad_magic(tmp_path: Path, gz: bool) -> None:
    payload = struct.pack(">IIII", 0x12340803, 1, 2, 2) + bytes(4)
    p = tmp_path / "bad"
    p.write_bytes(gzip.compress(payload) if gz else payload)
    with pytest.raises(InvalidInputError, match="magic"):
        D.read_idx(p)
    p.write_bytes(struct.pack(">I", 0x00000F01) + struct.pack(">I", 1) + bytes(1))  # bad type code
    with pytest.raises(InvalidInputError, match="0x00000F01"):
        D.read_idx(p)


def test_read_idx_truncated_and_missing(tmp_path: Path) -> None:
    p = tmp_path / "t"
    p.write_bytes(struct.pack(">III", 0x00000802, 3, 3) + bytes(5))
    with pytest.raises(InvalidInputError, match="truncated"):
        D.read_idx(p)
    p.write_bytes(b"\x1f\x8b\x08garbage")
    with pytest.raises(InvalidInputError, match="gzip"):
        D.read_idx(p)
    with pytest.raises(DatasetNotFoundError):
        D.read_idx(tmp_path / "nope.gz")


# --------------------------------------------------------------------------- mnist (real files)
@needs_mnist
def test_mnist_real(real_mnist: D.DatasetBundle) -> None:
    b = real_mnist
    assert b.train_x.shape == (60000, 1, 28, 28) and b.test_x.shape == (10000, 1, 28, 28)
    assert b.input_shape == (1, 28, 28) and b.num_classes == 10
    assert b.train_y[:5].tolist() == [5, 0, 4, 1, 9]
    assert b.test_y[:5].tolist() == [7, 2, 1, 0, 4]
    counts = torch.bincount(b.train_y, minlength=10).tolist()
    assert counts == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert torch.bincount(b.test_y, minlength=10).sum() == 10000
    # normalisation: (p/255 - 0.1307)/0.3081
    assert math.isclose(float(b.train_x.min()), -0.1307 / 0.3081, rel_tol=1e-5)
    assert math.isclose(float(b.train_x.max()), (1 - 0.1307) / 0.3081, rel_tol=1e-5)
    assert abs(float(b.train_x.mean())) < 0.01 and abs(float(b.train_x.std()) - 1.0) < 0.01
    assert b.meta["root"] == str(MNIST_DIR)


@needs_mnist
def test_repeated_mnist_real(real_mnist: D.DatasetBundle) -> None:
    r = D.repeated_mnist(MNIST_DIR)
    n = 60000
    assert r.name == "repeated_mnist" and r.train_x.shape == (3 * n, 784) and r.input_shape == (784,)
    assert r.num_train == 180000
    assert torch.equal(r.train_y, real_mnist.train_y.repeat(3))
    assert r.meta["copies"] == 3 and r.meta["noise_std"] == 0.1 and r.meta["seed"] == 0
    rows = torch.tensor([0, 1, 2, 12345, 59999])
    clean = real_mnist.train_x[rows].reshape(len(rows), -1)
    c0, c1, c2 = (r.train_x[rows + k * n] for k in range(3))
    for a, b in ((c0, c1), (c1, c2), (c0, c2)):
        assert abs(float((a - b).std()) - math.sqrt(2) * 0.1) < 0.01
    for c in (c0, c1, c2):
        assert abs(float((c - clean).std()) - 0.1) < 0.007 and abs(float((c - clean).mean())) < 0.01
    # test set clean, not repeated
    assert r.test_x.shape == (10000, 784)
    assert torch.equal(r.test_x, real_mnist.test_x.reshape(10000, -1))
    assert torch.equal(r.test_y, real_mnist.test_y)


@needs_mnist
def test_notmnist_real() -> None:
    if not all((NOTMNIST_DIR / f).is_file() for f in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")):
        pytest.skip("notMNIST absent")
    x, y = D.notmnist(NOTMNIST_DIR)
    assert x.shape == (10000, 28, 28) and x.dtype == torch.uint8
    assert y.dtype == torch.int64 and torch.bincount(y).tolist() == [1000] * 10


# --------------------------------------------------------------------------- mnist (fake files)
@pytest.mark.parametrize("gz", [True, False])
def test_mnist_fake_root_and_flatten(tmp_path: Path, gz: bool) -> None:
    make_fake_mnist(tmp_path / "mnist", gz=gz)
    for root in (tmp_path, tmp_path / "mnist"):  # root itself or root/mnist
        b = D.mnist(root, flatten=True)
        assert b.train_x.shape == (20, 784) and b.test_x.shape == (10, 784) and b.input_shape == (784,)
    assert b.train_y.tolist() == [i % 10 for i in range(20)]


def test_mnist_env_var_and_torchvision_layout(isolated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "mydata"
    make_fake_mnist(data / "mnist" / "MNIST" / "raw", n_train=12)
    monkeypatch.setenv("ACTIVELEARN_DATA", str(data))
    b = D.mnist()
    assert b.num_train == 12 and "MNIST" in b.meta["root"]


def test_mnist_cwd_data_folder(isolated: Path) -> None:
    make_fake_mnist(isolated / "data" / "mnist", n_train=14)
    assert D.mnist().num_train == 14


def test_mnist_missing_root_message(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as ei:
        D.mnist(tmp_path / "nowhere")
    msg = str(ei.value)
    for f in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert f in msg
    assert str(tmp_path / "nowhere") in msg and "ACTIVELEARN_DATA" in msg and "download=True" in msg
    assert isinstance(ei.value, FileNotFoundError)


def test_mnist_default_search_lists_paths(isolated: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as ei:
        D.mnist()
    msg = str(ei.value)
    assert str(isolated / "data" / "mnist") in msg
    assert str(isolated.parent / "shared" / "data" / "mnist") in msg


def test_mnist_partial_files_not_found(tmp_path: Path) -> None:
    make_fake_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError, match="t10k-labels"):
        D.mnist(tmp_path)


def test_mnist_download_path_uses_torchvision(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets as tvd

    calls: list[tuple[str, bool, bool]] = []

    class FakeMNIST:
        def __init__(self, root: str, train: bool = True, download: bool = False) -> None:
            calls.append((root, train, download))
            n = 8 if train else 4
            self.data = torch.full((n, 28, 28), 255, dtype=torch.uint8)
            self.targets = torch.arange(n) % 10

    monkeypatch.setattr(tvd, "MNIST", FakeMNIST)
    b = D.mnist(download=True)
    assert b.num_train == 8 and b.num_test == 4
    assert math.isclose(float(b.train_x.max()), (1 - 0.1307) / 0.3081, rel_tol=1e-6)
    assert calls and all(c[2] for c in calls) and calls[0][0] == str(isolated / "data" / "mnist")


def test_repeated_mnist_fake_determinism(tmp_path: Path) -> None:
    make_fake_mnist(tmp_path, n_train=30)
    a = D.repeated_mnist(tmp_path, copies=4, noise_std=0.2, seed=5)
    b = D.repeated_mnist(tmp_path, copies=4, noise_std=0.2, seed=5)
    c = D.repeated_mnist(tmp_path, copies=4, noise_std=0.2, seed=6)
    assert a.train_x.shape == (120, 784) and torch.equal(a.train_x, b.train_x)
    assert not torch.equal(a.train_x, c.train_x)
    assert torch.equal(a.meta["base_index"][:31], torch.tensor(list(range(30)) + [0]))
    z = D.repeated_mnist(tmp_path, copies=2, noise_std=0.0, flatten=False)
    assert z.input_shape == (1, 28, 28) and torch.equal(z.train_x[:30], z.train_x[30:])
    for bad in (dict(copies=0), dict(noise_std=-1.0), dict(seed=-2), dict(noise_std=float("nan"))):
        with pytest.raises(InvalidParameterError):
            D.repeated_mnist(tmp_path, **bad)  # type: ignore[arg-type]


def test_notmnist_missing(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"t10k-images-idx3-ubyte\.gz"):
        D.notmnist(tmp_path)


# --------------------------------------------------------------------------- cifar10
def make_fake_cifar(folder: Path, n: int = 4) -> Path:
    d = folder / "cifar-10-batches-py"
    d.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        entry = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": list(rng.integers(0, 10, n))}
        with open(d / name, "wb") as fh:
            pickle.dump(entry, fh)
    with open(d / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, fh)
    return d


def test_cifar10_fake(tmp_path: Path) -> None:
    d = make_fake_cifar(tmp_path)
    for root in (tmp_path, d):
        b = D.cifar10(root)
        assert b.train_x.shape == (20, 3, 32, 32) and b.test_x.shape == (4, 3, 32, 32)
        assert b.input_shape == (3, 32, 32) and isinstance(b.train_transform, D.RandomCropFlip)
    assert b.meta["classes"] == [f"c{i}" for i in range(10)]
    with open(d / "data_batch_1", "rb") as fh:
        raw = pickle.load(fh)["data"][0].reshape(3, 32, 32)
    expect = (torch.from_numpy(raw).float() / 255 - torch.tensor(D.CIFAR10_MEAN).view(3, 1, 1)) / torch.tensor(D.CIFAR10_STD).view(3, 1, 1)
    assert torch.allclose(b.train_x[0], expect, atol=1e-5)
    assert D.cifar10(tmp_path, augment=False).train_transform is None


def test_cifar10_missing(isolated: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="data_batch_1"):
        D.cifar10()


def test_random_crop_flip() -> None:
    x = torch.arange(3 * 32 * 32, dtype=torch.float32).reshape(3, 32, 32)
    assert torch.equal(D.RandomCropFlip(padding=0, flip_p=0.0)(x), x)
    assert torch.equal(D.RandomCropFlip(padding=0, flip_p=1.0)(x), x.flip(-1))
    t = D.RandomCropFlip(32, 4, 0.5, fill=(-1.0, -2.0, -3.0))
    global_state = torch.get_rng_state()
    g = torch.Generator().manual_seed(0)
    outs = [t(x, generator=g) for _ in range(20)]
    g = torch.Generator().manual_seed(0)
    again = [t(x, generator=g) for _ in range(20)]
    assert all(torch.equal(a, b) for a, b in zip(outs, again))
    assert torch.equal(torch.get_rng_state(), global_state)  # the global RNG was neither read nor advanced
    other = [t(x, generator=torch.Generator().manual_seed(1)) for _ in range(20)]
    assert any(not torch.equal(a, b) for a, b in zip(outs, other))
    assert all(o.shape == (3, 32, 32) for o in outs)
    assert len({o.sum().item() for o in outs}) > 1  # random shifts happen
    # every output is a padded, shifted (maybe flipped) window of the input
    padded = torch.tensor([-1.0, -2.0, -3.0]).view(3, 1, 1).expand(3, 40, 40).clone()
    padded[:, 4:36, 4:36] = x
    for o in outs[:5]:
        ok = any(
            torch.equal(o, w) or torch.equal(o.flip(-1), w)
            for i in range(9)
            for j in range(9)
            for w in [padded[:, i : i + 32, j : j + 32]]
        )
        assert ok
    assert t(torch.zeros(2, 3, 32, 32)).shape == (2, 3, 32, 32)
    x2 = x.clone()
    D.RandomCropFlip(padding=0, flip_p=0.0)(x2).add_(1)
    assert torch.equal(x2, x)  # never aliases the input
    with pytest.raises(InvalidInputError):
        t(torch.zeros(32, 32))
    with pytest.raises(InvalidParameterError):
        D.RandomCropFlip(padding=-1)


# --------------------------------------------------------------------------- load / available
def test_available_and_load() -> None:
    assert D.available() == ["cifar10", "diabetes", "digits", "imbalanced_blobs", "mix_mnist", "mnist", "repeated_mnist"]
    b = D.load("digits", seed=2)
    assert b.name == "digits" and torch.equal(b.train_y, D.digits(seed=2).train_y)
    assert D.load("Digits").name == "digits"


def test_load_unknown_name_suggests() -> None:
    with pytest.raises(InvalidParameterError) as ei:
        D.load("mnsit")
    msg = str(ei.value)
    assert "'mnist'" in msg and "repeated_mnist" in msg and "cifar10" in msg
    with pytest.raises(InvalidParameterError, match="Available"):
        D.load("imagenet")


def test_load_bad_kwarg() -> None:
    with pytest.raises(InvalidParameterError, match="flatten"):
        D.load("digits", flatten=True)
