"""Command line: ``activelearn run``, ``activelearn compare``, ``activelearn list``.

Examples
--------
::

    activelearn run --dataset digits --strategy entropy --initial 20 --budget 20 --cycles 5 --seed 0 --out results/
    activelearn compare --dataset digits --strategies random,entropy,coreset --seeds 0,1,2 --out results/
    activelearn run --plugin my_strategies.py --strategy my_method ...   # user strategies
    activelearn run --resume results/            # continue an interrupted run (checkpoint in results/)
    activelearn run --dataset digits --strategy entropy --oracle file --oracle-dir queries/ --out results/
        # a person answers queries/query_*.json in queries/answers_*.csv; then: activelearn run --resume results/
    torchrun --nproc_per_node=2 -m activelearn.cli run --dataset digits --strategy coreset --out results/
        # several processes (docs/distributed.md); rank 0 prints and writes

Exit codes: 0 done, 2 bad input (message on stderr), 3 waiting for a file oracle's answers.
"""

from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from . import __version__, datasets, strategies
from . import distributed as D
from .checkpoint import checkpoint_path
from .configs import preset
from .exceptions import ActiveLearnError, AnswersPending, InvalidParameterError
from .history import comparison_table, plot_curves
from .metrics import aubc_table
from .strategies.registry import load_plugins  # re-exported: activelearn.cli.load_plugins still works

__all__ = ["main", "build_parser"]


def _parse_params(items: Sequence[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise InvalidParameterError(f"--param expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        try:
            params[key.strip()] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            params[key.strip()] = raw
    return params


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="digits", help=f"one of {datasets.available()} (default: digits)")
    p.add_argument("--data-root", default=None, help="folder with the dataset files (default: see the loader)")
    p.add_argument("--initial", type=int, default=None, help="initial labeled set size (default: the dataset preset)")
    p.add_argument("--budget", type=int, default=None, help="samples queried per cycle (default: preset)")
    p.add_argument("--cycles", type=int, default=None, help="train/evaluate rounds (default: preset)")
    p.add_argument("--epochs", type=int, default=None, help="override the preset's epochs per cycle")
    p.add_argument("--backbone", default=None, help="mlp, cnn or resnet18 (default: preset)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--noise-rate", type=float, default=0.0, help="label-noise rate of the simulated oracle")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="strategy parameter (repeatable)")
    p.add_argument("--plugin", action="append", default=[], metavar="FILE_OR_MODULE", help="import a module that registers strategies")
    p.add_argument("--out", default=None, help="output folder for histories, tables and plots")
    p.add_argument("--aux-head", action="store_true", help="attach DACS's auxiliary head to the model whatever the strategy")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="activelearn", description="Deep active learning experiments.")
    parser.add_argument("--version", action="version", version=f"activelearn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run one strategy")
    _common(run)
    run.add_argument("--strategy", default=None, help="a registered name (see `activelearn list`); required unless --resume")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--resume", default=None, metavar="OUT", help="continue the run checkpointed in OUT (needs no other option)")
    run.add_argument("--oracle", default="simulated", choices=["simulated", "file"], help="who answers: the dataset's labels, or a person through files")
    run.add_argument("--oracle-dir", default=None, help="folder of query/answers files for --oracle file (default: OUT/oracle)")
    run.add_argument("--oracle-timeout", type=float, default=0.0, help="seconds to wait for each answers file before exiting with code 3")
    cmp_ = sub.add_parser("compare", help="run several strategies with the same seeds and initial sets")
    _common(cmp_)
    cmp_.add_argument("--strategies", required=True, help="comma-separated names")
    cmp_.add_argument("--seeds", default="0", help="comma-separated seeds, one trial each (default: 0)")
    lst = sub.add_parser("list", help="list registered strategies and datasets")
    lst.add_argument("--plugin", action="append", default=[], metavar="FILE_OR_MODULE")
    return parser


def _kwargs(args: argparse.Namespace) -> dict[str, Any]:
    config = preset(args.dataset)
    if args.epochs is not None:
        config = replace(config, train=config.train.replace(epochs=args.epochs))
    data_kwargs = {"root": args.data_root} if args.data_root else {}
    return dict(
        config=config,
        initial=args.initial,
        budget=args.budget,
        cycles=args.cycles,
        backbone=args.backbone,
        device=args.device,
        noise_rate=args.noise_rate,
        strategy_params=_parse_params(args.param),
        data_kwargs=data_kwargs,
        progress=not args.no_progress,
        aux_head=args.aux_head,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``activelearn`` command; returns the exit code.

    Under ``torchrun`` the process group is destroyed before returning, after
    a barrier when every rank ends the same way (exit code 0, or 3 when every
    rank stops to wait for answers) and without one otherwise (an error may
    have stopped one rank only), so no gloo thread is left to be torn down at
    interpreter exit (``docs/distributed.md``, "Process-group teardown").
    """
    args = build_parser().parse_args(argv)
    code = 1
    try:
        code = _main(args)
        return code
    finally:
        D.cleanup(wait=code in (0, 3))


def _main(args: argparse.Namespace) -> int:
    try:
        load_plugins(args.plugin)
        if args.command == "list":
            print("strategies:")
            for name in strategies.available():
                print(f"  {name:22s} {strategies.registry.describe(name)}")
            print("datasets:  ", ", ".join(datasets.available()))
            return 0
        from .experiment import compare  # heavy imports only when running

        D.init_from_env()  # under torchrun: join the process group (no-op otherwise)
        out = Path(args.out) if args.out else None
        if args.command == "run":
            return _run(args, out)
        names = [s.strip() for s in args.strategies.split(",") if s.strip()]
        for name in names:
            if "+" not in name:
                strategies.get_class(name)
        seeds = [int(s) for s in str(args.seeds).split(",") if s.strip()]
        runs = compare(args.dataset, names, seeds=seeds, out_dir=out, **_kwargs(args))
        if not D.is_main_process():  # every rank ran; rank 0 reports and writes
            return 0
        for name, hs in runs.items():
            print(f"\n{name} (seed {seeds[0]})")
            print(hs[0].table())
        metric, what, scale, digits = _summary_metric(runs[names[0]][0])
        table = comparison_table(runs, metric=metric, scale=scale, digits=digits)
        summary = aubc_table(runs, metric=metric, scale=scale)
        print(f"\nTest {what} by labeled-set size, mean ± std over seeds {seeds}:\n{table}")
        print(f"\nArea under the budget curve (AUBC, {what}), mean and 95% confidence half-width over seeds:\n{summary}")
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            (out / "comparison.md").write_text(
                f"# {args.dataset}: {', '.join(names)} (seeds {seeds})\n\n"
                f"Test {what} by labeled-set size, mean ± std over seeds:\n\n{table}\n\n"
                f"Area under the budget curve (AUBC, {what}), mean and 95% confidence half-width over seeds:\n\n{summary}\n"
            )
            try:
                plot_curves(runs, out / "learning_curves.png")
                print(f"table and plot written to {out / 'comparison.md'} and {out / 'learning_curves.png'}")
            except ImportError as exc:
                print(f"table written to {out / 'comparison.md'}; no plot: {exc}")
        return 0
    except AnswersPending as exc:
        print(f"activelearn: waiting for answers: {exc}", file=sys.stderr)
        return 3
    except ActiveLearnError as exc:
        print(f"activelearn: error: {exc}", file=sys.stderr)
        return 2


def _summary_metric(history: Any) -> tuple[str, str, float, int]:
    """What a comparison reports: accuracy in % (classification) or the test MSE (regression); name, label, scale, decimals."""
    if "accuracy" in history.records[0].metrics:
        return "accuracy", "accuracy (%)", 100.0, 1
    return "mse", "MSE", 1.0, 3


def _run(args: argparse.Namespace, out: Path | None) -> int:
    from .experiment import make_loop, resume

    if args.resume:
        loop = resume(args.resume, **({"progress": False} if args.no_progress else {}))
        out = Path(args.resume)
        name, dataset, seed = loop.recipe["strategy"], loop.recipe["data"], loop.seed  # type: ignore[index]
    else:
        if not args.strategy:
            raise InvalidParameterError("activelearn run needs --strategy NAME (or --resume OUT to continue a run)")
        if "+" not in args.strategy:
            strategies.get_class(args.strategy)
        if out is not None and checkpoint_path(out).exists():
            raise InvalidParameterError(
                f"{out} already holds the checkpoint of a run; continue it with `activelearn run --resume {out}` "
                "or choose another --out"
            )
        D.barrier()  # every rank has checked --out before rank 0 writes into it
        oracle_kwargs = {}
        if args.oracle == "file":
            oracle_kwargs = {"oracle": "file", "oracle_dir": str(Path(args.oracle_dir).resolve()) if args.oracle_dir else None, "oracle_timeout": args.oracle_timeout}
        loop = make_loop(args.dataset, args.strategy, seed=args.seed, out_dir=out, **oracle_kwargs, **_kwargs(args))
        if loop.recipe is not None:
            loop.recipe["plugins"] = list(args.plugin)
        name, dataset, seed = args.strategy, args.dataset, args.seed
    history = loop.run()
    if not D.is_main_process():
        return 0
    print(f"{name} on {dataset} (seed {seed})")
    print(history.table())
    if out is not None:
        print(f"history written to {out / 'history.json'} and {out / 'history.csv'}")
    return 0

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
