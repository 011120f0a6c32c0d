"""Draw the seeded sample of mutants whose score docs/reliability.md reports (issue 13).

Every function of ``ops/`` and ``strategies/`` makes about 8,000 mutants; on a shared 2-core machine
mutmut tested 10-20 of them a minute with the focused tests, i.e. many hours for all.  The score
is therefore measured on a seeded random sample: ``--per-ops`` mutants of each ``ops/`` module and
``--per-strategies`` of each ``strategies/`` module, the latter drawn from the selection functions
only (``--strategy-globs``: ``select`` / ``score`` and their helpers; validators, ``__init__``,
``state_dict`` and the registry are left out).  ``ops/jenks.py`` is excluded (it was run whole).

Needs a mutmut folder in which the mutants were generated (``benchmarks/mutation.sh`` makes one;
``mutmut run`` with a name that matches nothing generates them and stops).  Writes the names, one
per line, and a JSON with the population per module.  Run the sample with
``benchmarks/mutation.sh REV $(cat NAMES)``.

The committed sample: seed 13, 40 / 20 per module, then a seeded 20 (seed 14) of each ops
module's 40 once the machine's rate was measured; strategies/cluster.py's names were re-drawn
with seed 1317 after that file changed (see docs/results/mutation/sample.json)::

    python benchmarks/mutation_sample.py /tmp/mut/ops --out /tmp/mut/sample
"""

from __future__ import annotations

import argparse
import fnmatch
import json
from pathlib import Path

import numpy as np

#: the selection functions of strategies/ that are sampled (mutmut name globs)
STRATEGY_GLOBS = [
    "activelearn.strategies.badge.xǁBADGEǁselect__*",
    "activelearn.strategies.bald.xǁBatchBALDǁselect__*",
    "activelearn.strategies.bald.x_mc_log_probs__*",
    "activelearn.strategies.bald.x__chunked_bald__*",
    "activelearn.strategies.bald.xǁBALDǁscore__*",
    "activelearn.strategies.bald.xǁBatchBALDǁscore__*",
    "activelearn.strategies.base.xǁScoreStrategyǁselect__*",
    "activelearn.strategies.base.xǁScoreStrategyǁcandidates__*",
    "activelearn.strategies.base.x_predicted_in_task__*",
    "activelearn.strategies.base.x_top_k__*",
    "activelearn.strategies.base.xǁStrategyǁrng__*",
    "activelearn.strategies.baselines.*",
    "activelearn.strategies.cdal.xǁCDALǁselect__*",
    "activelearn.strategies.cluster.xǁClusterAnnotationǁselect__*",
    "activelearn.strategies.cluster.xǁClusterAnnotationǁ_clusters_then_samples__*",
    "activelearn.strategies.cluster.x_propose_clusters__*",
    "activelearn.strategies.cluster.xǁClusterAnnotationǁ_all_clusters__*",
    "activelearn.strategies.cluster.xǁClusterAnnotationǁphase_budgets__*",
    "activelearn.strategies.combine.xǁExpandSqueezeǁselect__*",
    "activelearn.strategies.contrastive.x_cluster_quotas__*",
    "activelearn.strategies.contrastive.xǁ_ContrastiveClustersǁ_plan__*",
    "activelearn.strategies.contrastive.xǁContrastiveDistanceǁselect__*",
    "activelearn.strategies.contrastive.xǁContrastiveRandomǁselect__*",
    "activelearn.strategies.contrastive.x_radius_order__*",
    "activelearn.strategies.contrastive.xǁ_ContrastiveClustersǁpredict__*",
    "activelearn.strategies.coreset.xǁCoreSetǁselect__*",
    "activelearn.strategies.dacs.x_dacs_select__*",
    "activelearn.strategies.dacs.x_group_budgets__*",
    "activelearn.strategies.dacs.x__group_kcenter__*",
    "activelearn.strategies.dacs.xǁDACSǁselect__*",
    "activelearn.strategies.dacs.x__vectors__*",
    "activelearn.strategies.dacs.x_density_groups__*",
    "activelearn.strategies.ibal.xǁIBALǁibal__*",
    "activelearn.strategies.ibal.xǁ_DistanceMixinǁdistance__*",
    "activelearn.strategies.ibal.xǁ_DistanceMixinǁlatents__*",
    "activelearn.strategies.ibal.xǁIBALDǁscore__*",
    "activelearn.strategies.ibal.xǁIBALǁscore__*",
    "activelearn.strategies.learning_loss.xǁLearningLossǁscore__*",
    "activelearn.strategies.ncenet.xǁNCENetǁscore__*",
    "activelearn.strategies.typiclust.x_typiclust_select__*",
    "activelearn.strategies.typiclust.xǁTypiClustǁselect__*",
    "activelearn.strategies.typiclust.x_cluster_embeddings__*",
    "activelearn.strategies.typiclust.x_cluster_order__*",
    "activelearn.strategies.vaal.xǁVAALǁscore__*",
]


def population(mutmut_dir: Path) -> dict[str, list[str]]:
    """Module (``ops.kcenter``) -> its sortable mutant names, from mutmut's ``.meta`` files."""
    pop: dict[str, list[str]] = {}
    base = mutmut_dir / "mutants" / "src" / "activelearn"
    for meta in sorted([*base.glob("ops/*.py.meta"), *base.glob("strategies/*.py.meta")]):
        module = f"{meta.parent.name}.{meta.name.removesuffix('.py.meta')}"
        if module == "ops.jenks":
            continue
        keys = sorted(json.loads(meta.read_text())["exit_code_by_key"])
        if module.startswith("strategies."):
            keys = [k for k in keys if any(fnmatch.fnmatch(k, g) for g in STRATEGY_GLOBS)]
        if keys:
            pop[module] = keys
    return pop


def draw(pop: dict[str, list[str]], seed: int, per_ops: int, per_strategies: int) -> list[str]:
    """``per_*`` names per module (all when fewer), one Generator over the modules in sorted order."""
    rng = np.random.default_rng(seed)
    out: list[str] = []
    for module, keys in pop.items():
        n = min(per_ops if module.startswith("ops.") else per_strategies, len(keys))
        out += [keys[i] for i in sorted(rng.choice(len(keys), size=n, replace=False).tolist())]
    return out


def keep(sample: list[str], seed: int, per_ops: int) -> list[str]:
    """A seeded ``per_ops`` of each ops module's drawn names (the committed sample's second step)."""
    rng = np.random.default_rng(seed)
    by_module: dict[str, list[str]] = {}
    for name in sample:
        by_module.setdefault(".".join(name.split(".")[1:3]), []).append(name)
    out: list[str] = []
    for module, names in by_module.items():
        if module.startswith("ops.") and len(names) > per_ops:
            names = [names[i] for i in sorted(rng.choice(len(names), size=per_ops, replace=False).tolist())]
        out += names
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mutmut_dir", type=Path)
    ap.add_argument("--out", type=Path, required=True, help="writes OUT.txt (names) and OUT.json (population, sample)")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--per-ops", type=int, default=40)
    ap.add_argument("--per-strategies", type=int, default=20)
    ap.add_argument("--keep-ops", type=int, default=20, help="then keep this many of each ops module's names (0: all)")
    ap.add_argument("--keep-seed", type=int, default=14)
    args = ap.parse_args(argv)
    pop = population(args.mutmut_dir)
    sample = draw(pop, args.seed, args.per_ops, args.per_strategies)
    if args.keep_ops:
        sample = keep(sample, args.keep_seed, args.keep_ops)
    args.out.with_suffix(".txt").write_text("\n".join(sample) + "\n")
    meta = {"seed": args.seed, "per_module": {"ops": args.per_ops, "strategies": args.per_strategies},
            "population": {m: len(k) for m, k in pop.items()}, "sample": sample}
    args.out.with_suffix(".json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(sample)} mutants from {sum(map(len, pop.values()))} in {len(pop)} modules -> {args.out}.txt")


if __name__ == "__main__":
    main()
