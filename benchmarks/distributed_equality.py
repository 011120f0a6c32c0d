"""Every registered strategy under torchrun vs one process: are the selections the same?

Runs a short digits loop (20 initial labels, one selection of 10, 3 epochs)
for every name in ``activelearn.strategies.available()`` plus ``coreset+entropy``
and writes each strategy's selections (or its error) to a JSON file from rank 0.
Run it once under ``torchrun`` and once without, then compare::

    OMP_NUM_THREADS=1 PYTHONPATH=src python -m torch.distributed.run --nproc_per_node=2 \\
        benchmarks/distributed_equality.py --out /tmp/sel_2proc.json
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/distributed_equality.py --out /tmp/sel_1proc.json
    python benchmarks/distributed_equality.py --compare /tmp/sel_2proc.json /tmp/sel_1proc.json
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace


def run(out: str, epochs: int) -> None:
    import torch

    from activelearn import distributed as D
    from activelearn import strategies
    from activelearn.configs import preset
    from activelearn.experiment import make_loop

    torch.set_num_threads(1)
    D.init_from_env("gloo")
    train = replace(preset("digits").train, epochs=epochs, seed=0)
    result: dict[str, object] = {}
    for name in strategies.available() + ["coreset+entropy"]:
        try:
            loop = make_loop("digits", name, initial=20, budget=10, cycles=2, seed=0, progress=False, train=train)
            result[name] = [r.selected for r in loop.run().records]
        except Exception as exc:  # noqa: BLE001 - reported, not hidden
            result[name] = f"ERROR {type(exc).__name__}: {exc}"
    if D.is_main_process():
        with open(out, "w") as f:
            json.dump(result, f)
    D.cleanup()


def compare(a: str, b: str) -> None:
    with open(a) as f:
        ra = json.load(f)
    with open(b) as f:
        rb = json.load(f)
    for name in sorted(set(ra) | set(rb)):
        same = ra.get(name) == rb.get(name)
        print(f"{name:24s} {'same' if same else 'DIFFERENT'}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="JSON file for this run's selections")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--compare", nargs=2, metavar=("A", "B"), help="compare two JSON files")
    args = p.parse_args()
    if args.compare:
        compare(*args.compare)
    else:
        run(args.out, args.epochs)


if __name__ == "__main__":
    main()
