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

``--plugin FILE`` **executes** the file (it is imported to register its
strategies): name only files you trust.  ``--resume`` never imports what the
checkpoint names unless ``--trust-plugins`` is given.  ``--out`` is locked while
a run or comparison writes into it (:mod:`activelearn.outlock`): a second
writer is refused.

Exit codes: 0 done, 2 bad input or an output folder that cannot be used (message
on stderr, no traceback), 3 waiting for a file oracle's answers, 130 interrupted
(Ctrl-C; the checkpoint keeps the last completed step).
"""

from __future__ import annotations

import argparse
import ast
import inspect
import sys
from pathlib import Path
from typing import Any, Sequence

from . import __version__, datasets, strategies
from . import distributed as D
from .checkpoint import CHECKPOINT_NAME, checkpoint_path, load_checkpoint
from .configs import preset, with_epochs
from .exceptions import ActiveLearnError, AnswersPending, CheckpointError, InvalidParameterError
from .history import History, comparison_table, plot_curves
from .metrics import aubc_table
from .outlock import output_lock
from .strategies.registry import load_plugins, plugin_reference  # load_plugins re-exported: activelearn.cli.load_plugins still works

__all__ = ["main", "build_parser"]

_UNSET: Any = object()  # default of the options `run --resume` checks, to tell "given" from "left out"
#: options that cannot change when a run is resumed (refused when they differ from the checkpointed run)
_FIXED_ON_RESUME = ("strategy", "dataset", "seed", "budget", "initial", "epochs", "backbone", "noise_rate", "param",
                    "oracle", "oracle_dir", "aux_head", "data_root")
#: options that may change when a run is resumed (applied, and said on stderr)
_SAFE_ON_RESUME = ("cycles", "device", "oracle_timeout")


def _positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _nonnegative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text!r}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None


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


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in str(text).split(",") if s.strip()]
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 0:
        raise InvalidParameterError(f"--seeds expects comma-separated non-negative integers such as 0,1,2, got {text!r}")
    return seeds


def _names(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    if not names:
        raise InvalidParameterError(f"--strategies expects comma-separated strategy names such as random,entropy, got {text!r}")
    for name in names:
        if "+" not in name:
            strategies.get_class(name)
    return names


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="digits", help=f"one of {datasets.available()} (default: digits)")
    p.add_argument("--data-root", default=None, help="folder with the dataset files (default: see the loader)")
    p.add_argument("--download", action="store_true", help="download the dataset through torchvision when no folder holds it (mnist, repeated_mnist, mix_mnist's digits, cifar10)")
    p.add_argument("--initial", type=_nonnegative_int, default=None, help="initial labeled set size (default: the dataset preset)")
    p.add_argument("--budget", type=_positive_int, default=None, help="samples queried per cycle (default: preset)")
    p.add_argument("--cycles", type=_positive_int, default=None, help="train/evaluate rounds (default: preset)")
    p.add_argument("--epochs", type=_positive_int, default=None, help="override the preset's epochs per cycle (lr milestones rescale: a drop at 80%% stays at 80%%)")
    p.add_argument("--backbone", default=None, help="mlp, cnn or resnet18 (default: preset)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--noise-rate", type=float, default=0.0, help="label-noise rate of the simulated oracle")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="strategy parameter (repeatable)")
    p.add_argument("--plugin", action="append", default=[], metavar="FILE_OR_MODULE",
                   help="import (that is, execute) a Python file or module that registers strategies; only files you trust")
    p.add_argument("--out", default=None, help="output folder for histories, tables and plots (locked while in use)")
    p.add_argument("--aux-head", action="store_true", help="attach DACS's auxiliary head to the model whatever the strategy")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")


def build_parser() -> argparse.ArgumentParser:
    """The ``activelearn`` argument parser."""
    return _build_parser(track=False)


def _build_parser(track: bool) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="activelearn", description="Deep active learning experiments.")
    parser.add_argument("--version", action="version", version=f"activelearn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run one strategy")
    _common(run)
    run.add_argument("--strategy", default=None, help="a registered name (see `activelearn list`); required unless --resume")
    run.add_argument("--seed", type=_nonnegative_int, default=0)
    run.add_argument("--resume", default=None, metavar="OUT",
                     help="continue the run checkpointed in OUT; --cycles (more), --device, --oracle-timeout may change, other options must match the run")
    run.add_argument("--trust-plugins", action="store_true", help="with --resume: import the plugin files the checkpoint names (executes them)")
    run.add_argument("--oracle", default="simulated", choices=["simulated", "file"], help="who answers: the dataset's labels, or a person through files")
    run.add_argument("--oracle-dir", default=None, help="folder of query/answers files for --oracle file (default: OUT/oracle)")
    run.add_argument("--oracle-timeout", type=float, default=0.0, help="seconds to wait for each answers file before exiting with code 3")
    if track:
        run.set_defaults(**{k: _UNSET for k in (*_FIXED_ON_RESUME, *_SAFE_ON_RESUME) if k != "param"})
    cmp_ = sub.add_parser("compare", help="run several strategies with the same seeds and initial sets")
    _common(cmp_)
    cmp_.add_argument("--strategies", required=True, help="comma-separated names")
    cmp_.add_argument("--seeds", default="0", help="comma-separated seeds, one trial each (default: 0)")
    lst = sub.add_parser("list", help="list registered strategies and datasets")
    lst.add_argument("--plugin", action="append", default=[], metavar="FILE_OR_MODULE")
    return parser


def _given(argv: Sequence[str]) -> set[str]:
    """The options of ``run`` written on the command line (whatever their value)."""
    ns = _build_parser(track=True).parse_args(argv)
    return {k for k, v in vars(ns).items() if v is not _UNSET and v != []}


def _download(dataset: str) -> dict[str, Any]:
    """``{"download": True}`` for a loader that downloads (``--download``), else nothing (said on stderr)."""
    loader = getattr(datasets, dataset, None)
    if loader is not None and "download" in inspect.signature(loader).parameters:
        return {"download": True}
    print(f"activelearn: --download: {dataset} has nothing to download (it ships with a package or is generated); ignored", file=sys.stderr)
    return {}


def _data_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"root": args.data_root} if args.data_root else {}
    return {**kwargs, **_download(args.dataset)} if args.download else kwargs


def _kwargs(args: argparse.Namespace) -> dict[str, Any]:
    config = preset(args.dataset)
    if args.epochs is not None:
        config = with_epochs(config, args.epochs)
    return dict(
        config=config,
        initial=args.initial,
        budget=args.budget,
        cycles=args.cycles,
        backbone=args.backbone,
        device=args.device,
        noise_rate=args.noise_rate,
        strategy_params=_parse_params(args.param),
        data_kwargs=_data_kwargs(args),
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
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.given = _given(argv) if args.command == "run" else set()
    code = 1
    try:
        code = _main(args)
        return code
    finally:
        D.cleanup(wait=code in (0, 3))


def _main(args: argparse.Namespace) -> int:
    """Run the command; library errors become a message on stderr and an exit code, never a traceback."""
    try:
        return _dispatch(args)
    except AnswersPending as exc:
        print(f"activelearn: waiting for answers: {exc}", file=sys.stderr)
        return 3
    except ActiveLearnError as exc:
        print(f"activelearn: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the environment, not the library: a folder or disk that cannot be used
        print(f"activelearn: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        out = getattr(args, "resume", None) or args.out
        where = f"; the checkpoint in {out} keeps the last completed step" if out else ""
        again = f" (continue with `activelearn run --resume {out}`)" if out and args.command == "run" else ""
        print(f"activelearn: interrupted{where}{again}", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    load_plugins(args.plugin)
    if args.command == "list":
        print("strategies:")
        for name in strategies.available():
            print(f"  {name:22s} {strategies.registry.describe(name)}")
        print("datasets:  ", ", ".join(datasets.available()))
        return 0
    D.init_from_env()  # under torchrun: join the process group (no-op otherwise)
    if args.command == "compare":
        return _compare(args)
    return _resume(args) if args.resume else _run(args)


def _summary_metric(history: Any) -> tuple[str, str, float, int]:
    """What a comparison reports: accuracy in % (classification) or the test MSE (regression); name, label, scale, decimals."""
    if "accuracy" in history.records[0].metrics:
        return "accuracy", "accuracy (%)", 100.0, 1
    return "mse", "MSE", 1.0, 3


def _compare(args: argparse.Namespace) -> int:
    from .experiment import check_comparison, compare  # heavy imports only when running

    names, seeds = _names(args.strategies), _seeds(args.seeds)
    kwargs = _kwargs(args)
    check_comparison(names, seeds, kwargs["strategy_params"])  # before the lock creates --out
    out = Path(args.out) if args.out else None
    with output_lock(out):
        held = [checkpoint_path(out / n / f"seed{s}") for n in names for s in seeds] if out is not None else []
        if any(p.exists() for p in held):
            raise InvalidParameterError(
                f"{out} already holds results of a comparison ({next(p for p in held if p.exists())}); choose another --out"
            )
        runs = compare(args.dataset, names, seeds=seeds, out_dir=out, **kwargs)
        if D.is_main_process():  # every rank ran; rank 0 reports and writes
            _report_comparison(args.dataset, runs, seeds, out)
    return 0


def _report_comparison(dataset: str, runs: dict[str, list[History]], seeds: list[int], out: Path | None) -> None:
    for name, hs in runs.items():
        print(f"\n{name} (seed {seeds[0]})")
        print(hs[0].table())
    metric, what, scale, digits = _summary_metric(next(iter(runs.values()))[0])
    table = comparison_table(runs, metric=metric, scale=scale, digits=digits)
    summary = aubc_table(runs, metric=metric, scale=scale)
    print(f"\nTest {what} by labeled-set size, mean ± std over seeds {seeds}:\n{table}")
    print(f"\nArea under the budget curve (AUBC, {what}), mean and 95% confidence half-width over seeds:\n{summary}")
    if out is None:
        return
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.md").write_text(
        f"# {dataset}: {', '.join(runs)} (seeds {seeds})\n\n"
        f"Test {what} by labeled-set size, mean ± std over seeds:\n\n{table}\n\n"
        f"Area under the budget curve (AUBC, {what}), mean and 95% confidence half-width over seeds:\n\n{summary}\n"
    )
    try:
        plot_curves(runs, out / "learning_curves.png")
        print(f"table and plot written to {out / 'comparison.md'} and {out / 'learning_curves.png'}")
    except ImportError as exc:
        print(f"table written to {out / 'comparison.md'}; no plot: {exc}")


def _run(args: argparse.Namespace) -> int:
    from .experiment import make_loop

    if not args.strategy:
        raise InvalidParameterError("activelearn run needs --strategy NAME (or --resume OUT to continue a run)")
    if "+" not in args.strategy:
        strategies.get_class(args.strategy)
    out = Path(args.out) if args.out else None
    _refuse_existing_run(out)  # before any work
    oracle_kwargs = {}
    if args.oracle == "file":
        oracle_kwargs = {"oracle": "file", "oracle_dir": str(Path(args.oracle_dir).resolve()) if args.oracle_dir else None, "oracle_timeout": args.oracle_timeout}
    loop = make_loop(args.dataset, args.strategy, seed=args.seed, out_dir=out, **oracle_kwargs, **_kwargs(args))  # checks everything, writes nothing
    if loop.recipe is not None:
        loop.recipe["plugins"] = [plugin_reference(p) for p in args.plugin]
    with output_lock(out):  # held from the check to the end: a second writer cannot slip in between
        _refuse_existing_run(out)
        D.barrier()  # every rank has checked --out before rank 0 writes into it
        history = loop.run()
    return _report_run(f"{args.strategy} on {args.dataset} (seed {args.seed})", history, out)


def _refuse_existing_run(out: Path | None) -> None:
    if out is not None and checkpoint_path(out).exists():
        raise InvalidParameterError(
            f"{out} already holds the checkpoint of a run; continue it with `activelearn run --resume {out}` "
            "or choose another --out"
        )


def _resume(args: argparse.Namespace) -> int:
    from .experiment import resume, run_settings

    out = Path(args.resume)
    if out.is_file():  # --resume DIR/checkpoint.pt works too
        if out.name != CHECKPOINT_NAME:
            raise CheckpointError(f"--resume expects a run's folder (or its {CHECKPOINT_NAME}), got the file {out}")
        out = out.parent
    if not checkpoint_path(out).is_file():
        load_checkpoint(out)  # raises, saying where it looked (before the lock creates anything)
    with output_lock(out):
        state = load_checkpoint(out)
        if not state.get("recipe"):
            raise CheckpointError(f"the checkpoint in {out} has no recipe (the loop was built by hand); resume it from Python with loop.restore()")
        recipe = state["recipe"]
        saved = run_settings(recipe)
        overrides = _resume_overrides(args, saved, out)
        if args.download:
            overrides["data_kwargs"] = {**(recipe.get("data_kwargs") or {}), **_download(recipe["data"])}
        loop = resume(out, trust_plugins=args.trust_plugins, state=state, **overrides)
        for key in sorted(set(overrides) & set(_SAFE_ON_RESUME)):  # accepted: say what changed
            print(f"activelearn: --resume: {key.replace('_', '-')} changed from {saved[key]!r} to {overrides[key]!r}", file=sys.stderr)
        if args.plugin and loop.recipe is not None:  # the files named now are the ones to record
            loop.recipe["plugins"] = [plugin_reference(p) for p in args.plugin]
        history = loop.run()
    return _report_run(f"{recipe['strategy']} on {recipe['data']} (seed {loop.seed})", history, out)


def _cli_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The command line's values under the names :func:`activelearn.experiment.run_settings` uses."""
    values = {k: getattr(args, k) for k in (*_FIXED_ON_RESUME, *_SAFE_ON_RESUME) if k != "param"}
    values["param"] = _parse_params(args.param)
    if args.oracle_dir:
        values["oracle_dir"] = str(Path(args.oracle_dir).resolve())
    return values


def _resume_overrides(args: argparse.Namespace, saved: dict[str, Any], out: Path) -> dict[str, Any]:
    """What the command line changes in a resumed run: conflicts refused, safe changes returned (and said on stderr)."""
    mine = _cli_settings(args)
    changed = [k for k in (*_FIXED_ON_RESUME, *_SAFE_ON_RESUME) if k in getattr(args, "given", set()) and mine[k] != saved.get(k)]
    conflicts = [f"--{k.replace('_', '-')} {mine[k]!r} (the run has {saved.get(k)!r})" for k in changed if k in _FIXED_ON_RESUME]
    if conflicts:
        raise InvalidParameterError(
            f"--resume {out}: {', '.join(conflicts)} cannot change in a resumed run; drop these options to continue "
            "the run as it was started, or start a new run with another --out"
        )
    overrides: dict[str, Any] = {k: mine[k] for k in changed}
    if args.no_progress:
        overrides["progress"] = False
    return overrides


def _report_run(title: str, history: History, out: Path | None) -> int:
    if not D.is_main_process():
        return 0
    print(title)
    print(history.table())
    if out is not None:
        print(f"history written to {out / 'history.json'} and {out / 'history.csv'}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
