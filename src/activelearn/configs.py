"""The papers' setups and our defaults, as data.

Each :class:`ExperimentConfig` says which backbone and schedule a dataset uses
and the initial set / budget / cycles of its protocol.  The CLI and the
examples read these; override any field with ``dataclasses.replace``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .exceptions import InvalidParameterError
from .trainer import TrainConfig

__all__ = ["ExperimentConfig", "PRESETS", "preset", "with_epochs"]


@dataclass(frozen=True)
class ExperimentConfig:
    """A dataset's protocol: backbone, schedule, and acquisition sizes."""

    dataset: str  # name in activelearn.datasets.available()
    backbone: str  # name for activelearn.backbones.build_backbone
    train: TrainConfig  # the training schedule of every cycle
    initial: int  # size of the random initial labeled set
    budget: int  # samples queried per cycle
    cycles: int  # train/evaluate rounds (cycles - 1 queries)
    source: str = ""  # where the setup comes from
    dataset_kwargs: dict = field(default_factory=dict)  # passed to the dataset loader


PRESETS: dict[str, ExperimentConfig] = {
    # Our default, small enough for a laptop CPU: a 2-hidden-layer MLP on sklearn digits.
    "digits": ExperimentConfig(
        dataset="digits",
        backbone="mlp",
        train=TrainConfig(epochs=60, batch_size=32, optimizer="adam", lr=1e-3, weight_decay=1e-4),
        initial=20,
        budget=20,
        cycles=5,
        source="activelearn default",
    ),
    # IBAL synthetic (Pezeshkpour, Zhao & Singh): 2-D, 2,000 / 500 / 50 points; schedule ours
    # (examples/ibal_synthetic.py passes the paper's two-linear-layer net 2 -> 32 -> 3).
    "imbalanced_blobs": ExperimentConfig(
        dataset="imbalanced_blobs",
        backbone="mlp",
        train=TrainConfig(epochs=100, batch_size=32, optimizer="adam", lr=1e-2, weight_decay=1e-3),
        initial=10,
        budget=10,
        cycles=10,
        source="IBAL paper's synthetic set; activelearn schedule",
    ),
    # Regression (scikit-learn's bundled diabetes, standardised target): MSE chosen by the task (loss="auto"); schedule ours.
    "diabetes": ExperimentConfig(
        dataset="diabetes",
        backbone="mlp:dropout=0.5",  # without dropout the 256-256 MLP overfits: test MSE rose with more labels
        train=TrainConfig(epochs=50, batch_size=32, optimizer="adam", lr=3e-4, weight_decay=1e-4),
        initial=20,
        budget=20,
        cycles=8,
        source="activelearn default",
    ),
    "mnist": ExperimentConfig(
        dataset="mnist",
        backbone="cnn",
        train=TrainConfig(epochs=30, batch_size=64, optimizer="adam", lr=1e-3),
        initial=100,
        budget=100,
        cycles=10,
        source="activelearn default",
    ),
    # DACS (Kim & Shin, KDD 2022), RMNIST: 3-layer FFN, 500 + 500 x 9, SGD lr 0.1 m 0.4, /10 at 160 of 200.
    "repeated_mnist": ExperimentConfig(
        dataset="repeated_mnist",
        backbone="mlp",
        train=TrainConfig(epochs=200, batch_size=128, optimizer="sgd", lr=0.1, momentum=0.4, milestones=(160,), gamma=0.1),
        initial=500,
        budget=500,
        cycles=10,
        source="DACS paper, RMNIST setup (METHODS.md)",
    ),
    # DACS / NCE-Net CIFAR-10: ResNet-18, 1,000 + 1,000 x 9, 200 epochs, SGD lr 0.1 m 0.4, /10 at 160.
    "cifar10": ExperimentConfig(
        dataset="cifar10",
        backbone="resnet18",
        train=TrainConfig(epochs=200, batch_size=128, optimizer="sgd", lr=0.1, momentum=0.4, weight_decay=5e-4, milestones=(160,), gamma=0.1),
        initial=1000,
        budget=1000,
        cycles=10,
        source="DACS paper, CIFAR-10 setup (METHODS.md)",
    ),
}


def preset(name: str) -> ExperimentConfig:
    """The preset of a dataset, or an error listing the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise InvalidParameterError(f"no preset for dataset {name!r}; known: {sorted(PRESETS)}") from None



def with_epochs(config: ExperimentConfig, epochs: int) -> ExperimentConfig:
    """``config`` trained for ``epochs`` per cycle, its lr milestones rescaled to keep their place in the schedule.

    Each milestone ``m`` of an ``E``-epoch schedule becomes
    ``max(1, round(m * epochs / E))``, as the example scripts do (the DACS
    presets' drop at 160 of 200 epochs, 80%, becomes 40 of 50): reducing the
    epochs keeps the same shape of learning-rate schedule instead of never
    dropping the rate.  A schedule without milestones is unchanged.

    Raises
    ------
    InvalidParameterError
        If ``epochs`` is not a positive integer.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise InvalidParameterError(f"epochs must be a positive integer, got {epochs!r}")
    old = config.train
    milestones = tuple(sorted({max(1, round(m * epochs / old.epochs)) for m in old.milestones}))
    return replace(config, train=old.replace(epochs=epochs, milestones=milestones))
