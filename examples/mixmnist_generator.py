"""Stroke statistics of MixMNIST's ambiguous digits: real MNIST vs the generator, with and without calibration.

Writes ``<out>/generator.json`` (the ink histograms, inked pixels per image,
candidates decoded per kept image) and ``<out>/../mixmnist_montage.png`` (rows of
real digits, calibrated ambiguous digits, uncalibrated ones, notMNIST letters).

    python examples/mixmnist_generator.py --count 2000 --out docs/results/mixmnist
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

import activelearn as al
from activelearn.datasets import mixmnist as M


def stats(images: torch.Tensor) -> dict[str, object]:
    inked = (images > 0).reshape(len(images), -1).sum(1).float()
    return {"bands": [round(float(v), 4) for v in M.ink_histogram(images)], "inked_per_image": round(float(inked.mean()), 1),
            "inked_per_image_sd": round(float(inked.std()), 1), "images": len(images)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--out", default="docs/results/mixmnist")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    img, lab = M._load_raw_mnist(None, False)[:2]
    letters, _ = al.datasets.notmnist()
    result: dict[str, object] = {"bands": "share of inked pixels (value >= 1) at 1-63 / 64-191 / 192-255", "command": "python examples/mixmnist_generator.py " + " ".join(sys.argv[1:] if argv is None else argv)}
    result["mnist_train"] = stats(img)
    gen = {}
    for cal in ("ink", "none"):
        amb = M.ambiguous_digits(img, lab, args.count, calibrate=cal, seed=0)
        gen[cal] = amb["images"]
        result[f"ambiguous_{cal}"] = {**stats(amb["images"]), "tried": int(amb["tried"])}
        print(cal, result[f"ambiguous_{cal}"], flush=True)
    (out / "generator.json").write_text(json.dumps(result, indent=1) + "\n")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [("MNIST", img[:12]), ("ambiguous (calibrated)", gen["ink"][:12]), ("ambiguous (uncalibrated)", gen["none"][:12]), ("notMNIST", letters[:12])]
    fig, axes = plt.subplots(len(rows), 12, figsize=(9, 3.3))
    for r, (title, ims) in enumerate(rows):
        for c in range(12):
            axes[r, c].imshow(np.asarray(ims[c]), cmap="gray", vmin=0, vmax=255)
            axes[r, c].axis("off")
        axes[r, 0].set_title(title, fontsize=8, loc="left")
    fig.tight_layout()
    fig.savefig(out.parent / "mixmnist_montage.png", dpi=100)


if __name__ == "__main__":
    main()
