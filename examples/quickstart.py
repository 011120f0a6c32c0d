"""Quick start: three strategies on scikit-learn's digits, same seeds and initial set.

Run::

    python examples/quickstart.py --seeds 0,1,2 --out results/quickstart

Prints each run's per-cycle table and a comparison; writes histories, a
markdown table and a learning-curve PNG to ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import activelearn as al


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategies", default="random,entropy,margin,coreset")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", default="results/quickstart")
    args = parser.parse_args()
    names = args.strategies.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    runs = al.experiment.compare("digits", names, seeds=seeds, device=args.device, out_dir=args.out, progress=False)
    for name, histories in runs.items():
        print(f"\n{name} (seed {seeds[0]})\n{histories[0].table()}")
    table = al.comparison_table(runs)
    print(f"\nTest accuracy (%), mean over seeds {seeds}\n{table}")
    out = Path(args.out)
    (out / "comparison.md").write_text(table + "\n")
    al.plot_curves(runs, out / "learning_curves.png")


if __name__ == "__main__":
    main()
