"""The model side: one wrapper around any backbone, and the extension point for heads.

:class:`ALModel` wraps any ``torch.nn.Module`` whose forward returns outputs
(logits for classification, values for regression).  Forward hooks capture

* ``embeddings``: the input of the backbone's final linear layer (``head``),
* ``stage{i}``: the outputs of the named intermediate modules (conv maps are
  global-average-pooled into vectors when served to strategies),

so strategies can ask, in one batched pass over any pool indices, for
``"logits"``, ``"probs"``, ``"embeddings"``, ``"stage0"``, ... and for anything an
attached extension provides.  Results are cached until the model changes
(training, reset, attach): two strategies asking for the same outputs in one
cycle compute them once.

**Extension point.**  A strategy that changes the model (an auxiliary head, a
loss-prediction module, a prototype head replacing the softmax) subclasses
:class:`ModelExtension` and returns instances from
``Strategy.model_extensions()``; the loop attaches them with
:meth:`ALModel.attach`.  An extension

1. is built lazily by :meth:`ModelExtension.build` once the feature sizes are
   known (so it works with any backbone),
2. adds a term to the training loss through :meth:`ModelExtension.training_loss`
   (it receives the :class:`ForwardOutput` with gradients and the training
   progress in [0, 1], e.g. to detach features after 60% of the epochs),
3. serves named outputs to strategies through :meth:`ModelExtension.infer`, and
4. may replace the classification head (``replaces_head = True``): then its
   :meth:`ModelExtension.head_loss` is the main loss and its
   :meth:`ModelExtension.head_probs` are the model's class scores.

The wider hooks (see ``docs/extensions.md``): :meth:`ModelExtension.build_from`
receives a :class:`BuildContext` (feature sizes plus the input shape and the
model), :meth:`ModelExtension.step_loss` a :class:`StepContext` (the batch
inputs, targets, the model and, for an extension with ``uses_unlabeled = True``,
a seeded random batch of unlabeled inputs), and :meth:`ModelExtension.infer_with`
the inputs as well as the forward pass.  Their defaults call the narrow
methods, so extensions written against those keep working.
:meth:`ALModel.mc_outputs` serves seeded MC-dropout passes
(:mod:`activelearn.mc_dropout`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import distributed as dist_helpers
from ._validation import resolve_device
from .exceptions import InvalidParameterError

__all__ = ["ForwardOutput", "BuildContext", "StepContext", "ModelExtension", "ALModel"]

BASE_OUTPUTS = ("logits", "probs", "embeddings")


@dataclass
class ForwardOutput:
    """What one forward pass of :class:`ALModel` yields (tensors keep their graph in training).

    Attributes
    ----------
    logits : torch.Tensor
        The backbone's outputs, B x C.
    embeddings : torch.Tensor
        The penultimate features (input of ``head``), B x d.
    stages : list of torch.Tensor
        Raw outputs of the stage modules (conv maps stay B x C x H x W).
    """

    logits: torch.Tensor
    embeddings: torch.Tensor
    stages: list[torch.Tensor] = field(default_factory=list)


@dataclass
class BuildContext:
    """What :meth:`ModelExtension.build_from` receives.

    Attributes
    ----------
    embedding_dim : int
        Size of the penultimate embedding.
    stage_shapes : list of tuple of int
        Per-sample shapes of the stage outputs.
    num_classes : int
        Outputs of the head (``num_classes + 1`` with ``open_set``).
    input_shape : tuple of int
        Shape of one input sample (e.g. ``(784,)`` or ``(3, 32, 32)``).
    model : ALModel
        The model being extended (read it; do not keep it as an attribute of
        the extension, which would register the model inside itself).
    """

    embedding_dim: int
    stage_shapes: list[tuple[int, ...]]
    num_classes: int
    input_shape: tuple[int, ...]
    model: "ALModel"


@dataclass
class StepContext:
    """What :meth:`ModelExtension.step_loss` receives at each training step.

    Attributes
    ----------
    out : ForwardOutput
        The model's forward pass on ``inputs`` (with its graph).
    targets : torch.Tensor
        Labels of the batch.
    progress : float
        ``epoch / epochs`` in [0, 1).
    inputs : torch.Tensor
        The labeled batch, as fed to the model (after the training transform).
    model : ALModel
        The model being trained.
    indices : numpy.ndarray
        Pool indices of the labeled batch.
    unlabeled_inputs : torch.Tensor or None
        A batch of unlabeled inputs (same transform) when an attached extension
        sets ``uses_unlabeled = True`` and the unlabeled pool is not empty; the
        trainer walks a seeded permutation of the unlabeled pool (seed from
        ``TrainConfig.seed`` and the cycle), ``batch_size`` samples per step.
    unlabeled_indices : numpy.ndarray or None
        Their pool indices.
    step : int
        Steps taken so far in this call of ``Trainer.fit`` (0 at the first).
    epoch : int
        Current epoch.
    """

    out: ForwardOutput
    targets: torch.Tensor
    progress: float
    inputs: torch.Tensor
    model: "ALModel"
    indices: np.ndarray
    unlabeled_inputs: torch.Tensor | None = None
    unlabeled_indices: np.ndarray | None = None
    step: int = 0
    epoch: int = 0


class ModelExtension(nn.Module):
    """Base class of everything a strategy plugs into the model.

    Subclasses set ``name`` (unique per model), ``provides`` (output names served
    to strategies), and override what they need among :meth:`build`,
    :meth:`training_loss`, :meth:`infer`; a head replacement sets
    ``replaces_head = True`` and overrides :meth:`head_loss` and
    :meth:`head_probs`.  Parameters created in :meth:`build` are trained jointly
    with the backbone and saved with it.
    """

    name: str = "extension"
    provides: tuple[str, ...] = ()
    replaces_head: bool = False
    #: True when ``head_probs`` (if any) sum to one over classes.
    probs_sum_to_one: bool = True
    #: Global gradient-norm clip this extension's loss needs to train stably
    #: (None: none).  The trainer applies the smallest requested clip, and
    #: ``TrainConfig.grad_clip`` if set, to every step while it is attached.
    max_grad_norm: float | None = None
    #: True when :meth:`step_loss` needs ``StepContext.unlabeled_inputs``: the
    #: trainer then also draws a seeded unlabeled batch at every step.
    uses_unlabeled: bool = False
    #: True when :meth:`step_loss` updates this extension's parameters with its
    #: own optimisers (e.g. VAAL): data-parallel training then keeps them out of
    #: DistributedDataParallel (see ``docs/distributed.md``).
    trains_itself: bool = False

    def build_from(self, ctx: BuildContext) -> None:
        """Create the parameters from a :class:`BuildContext` (default: calls :meth:`build`)."""
        self.build(ctx.embedding_dim, ctx.stage_shapes, ctx.num_classes)

    def step_loss(self, ctx: StepContext) -> torch.Tensor | None:
        """Extra loss of one training step (default: :meth:`training_loss` on the context's fields).

        An extension that trains its own sub-networks adversarially (e.g. VAAL)
        may instead step its own optimisers here and return None; the trainer
        clears all gradients before the main backward pass, so its parameters
        then get no gradient from the main loss and the main optimiser skips them.
        """
        return self.training_loss(ctx.out, ctx.targets, ctx.progress)

    def infer_with(self, out: ForwardOutput, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named outputs given the forward pass and the batch inputs (default: :meth:`infer`)."""
        return self.infer(out)

    def build(self, embedding_dim: int, stage_shapes: list[tuple[int, ...]], num_classes: int) -> None:
        """Create the parameters once the backbone's feature sizes are known."""

    def training_loss(self, out: ForwardOutput, targets: torch.Tensor, progress: float) -> torch.Tensor | None:
        """Extra loss term added to the main loss (already weighted), or None."""
        return None

    def infer(self, out: ForwardOutput) -> dict[str, torch.Tensor]:
        """Named outputs (first dimension = batch) served to strategies in evaluation mode."""
        return {}

    def head_loss(self, out: ForwardOutput, targets: torch.Tensor, progress: float) -> torch.Tensor:
        """Main loss when this extension replaces the head."""
        raise InvalidParameterError(f"extension {self.name!r} does not replace the head")

    def head_probs(self, out: ForwardOutput) -> torch.Tensor:
        """Class scores in [0, 1] when this extension replaces the head."""
        raise InvalidParameterError(f"extension {self.name!r} does not replace the head")


def _last_linear_name(module: nn.Module) -> str:
    names = [n for n, m in module.named_modules() if isinstance(m, nn.Linear)]
    if not names:
        raise InvalidParameterError(
            f"{type(module).__name__} has no nn.Linear; pass head='<name of the final layer>'"
        )
    return names[-1]


class ALModel(nn.Module):
    """A backbone plus its extensions, with cached batched inference over pools.

    Parameters
    ----------
    backbone : nn.Module
        Any module mapping a batch of inputs to B x C outputs.
    num_classes : int
        Number of classes (outputs for regression).
    task : {"classification", "regression"}
    head : str, optional
        Name (as in ``named_modules()``) of the final linear layer whose input is
        the penultimate embedding.  Default: ``backbone.head`` if present, else
        the last ``nn.Linear``.
    stages : sequence of str, optional
        Names of modules whose outputs are the intermediate stage features.
        Default: ``backbone.stage_names`` if present, else none.
    device : str or torch.device, optional
        Default: CUDA when available, else CPU.
    eval_batch_size : int
        Batch size of inference passes.
    seed : int
        Seeds the initialisation of extensions (inside a forked RNG, the global
        RNG is untouched).  The backbone's initial weights are those it has when
        wrapped (build it under a seed, e.g. with
        :func:`activelearn.backbones.build_backbone`); ``reset_parameters``
        restores them.
    progress : bool
        Show progress bars on long inference passes.
    open_set : bool
        The "not in task" device of Kim, Kim & Hwang: the backbone has
        ``num_classes + 1`` outputs, the last one the auxiliary class K+1 that
        the trainer fits on ``pools.rejected``.  ``"probs"`` are then the softmax
        over the K in-task logits (the K+1 probabilities renormalised over the
        in-task classes), so evaluation and every probability-based score stay
        over the task's classes; ``"open_probs"`` serves the full K+1 softmax.
    """

    def __init__(
        self,
        backbone: nn.Module,
        *,
        num_classes: int,
        task: Literal["classification", "regression"] = "classification",
        head: str | None = None,
        stages: Sequence[str] | None = None,
        device: str | torch.device | None = None,
        eval_batch_size: int = 1024,
        seed: int = 0,
        progress: bool = False,
        open_set: bool = False,
    ) -> None:
        super().__init__()
        self.open_set = bool(open_set)
        if task not in ("classification", "regression"):
            raise InvalidParameterError(f"task must be 'classification' or 'regression', got {task!r}")
        self.backbone = backbone
        self.num_classes = int(num_classes)
        self.task = task
        self.device = resolve_device(device)
        self.eval_batch_size = int(eval_batch_size)
        self.seed = int(seed)
        self.progress = progress
        modules = dict(backbone.named_modules())
        if head is None:
            head = next((n for n, m in modules.items() if m is getattr(backbone, "head", None)), None) or _last_linear_name(backbone)
        if head not in modules:
            raise InvalidParameterError(f"head {head!r} is not a submodule of {type(backbone).__name__}; pick one of {list(modules)[:12]}...")
        self.head_name = head
        self.stage_names = tuple(stages if stages is not None else getattr(backbone, "stage_names", ()))
        for s in self.stage_names:
            if s not in modules:
                raise InvalidParameterError(f"stage {s!r} is not a submodule of {type(backbone).__name__}")
        self.extensions = nn.ModuleDict()
        self._built: set[str] = set()
        self._captured: dict[str, torch.Tensor] = {}
        modules[head].register_forward_pre_hook(self._capture_embedding)
        for i, s in enumerate(self.stage_names):
            modules[s].register_forward_hook(self._make_stage_hook(i))
        self.to(self.device)
        self._initial_state = copy.deepcopy({k: v.detach().cpu() for k, v in self.backbone.state_dict().items()})
        self._ext_initial: dict[str, dict[str, torch.Tensor]] = {}
        self._shapes: tuple[int, list[tuple[int, ...]]] | None = None
        self.version = 0
        self._cache: dict[tuple[int, str], tuple[torch.Tensor, np.ndarray]] = {}
        self._cache_version = -1

    # ---------------------------------------------------------------- hooks
    def _capture_embedding(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        self._captured["embeddings"] = args[0]

    def _make_stage_hook(self, i: int):
        def hook(module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> None:
            self._captured[f"stage{i}"] = output

        return hook

    # -------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> ForwardOutput:
        """One pass of the backbone returning logits, embeddings and stage outputs."""
        self._captured = {}
        logits = self.backbone(x)
        emb = self._captured["embeddings"].flatten(1)
        stages = [self._captured[f"stage{i}"] for i in range(len(self.stage_names))]
        self._captured = {}
        return ForwardOutput(logits=logits, embeddings=emb, stages=stages)

    @property
    def head_extension(self) -> ModelExtension | None:
        """The attached extension that replaces the head, if any."""
        for ext in self.extensions.values():
            if ext.replaces_head:
                return ext  # type: ignore[return-value]
        return None

    @property
    def probs_sum_to_one(self) -> bool:
        """False when a head replacement yields per-class scores (e.g. NCE-Net prototypes)."""
        ext = self.head_extension
        return True if ext is None else bool(ext.probs_sum_to_one)

    def probs_from(self, out: ForwardOutput) -> torch.Tensor:
        """Class probabilities (or per-class scores of a replacing head)."""
        ext = self.head_extension
        if ext is not None:
            probs = ext.head_probs(out)
            return probs[:, : self.num_classes] if self.open_set else probs
        logits = out.logits.float()
        return F.softmax(logits[:, : self.num_classes] if self.open_set else logits, dim=1)

    # ----------------------------------------------------------- extensions
    def _feature_shapes(self, example: torch.Tensor) -> tuple[int, list[tuple[int, ...]]]:
        if self._shapes is None:
            was_training = self.training
            self.eval()
            with torch.no_grad():
                out = self.forward(example[:2].to(self.device))
            self.train(was_training)
            self._shapes = (int(out.embeddings.shape[1]), [tuple(s.shape[1:]) for s in out.stages])
        return self._shapes

    def attach(self, extension: ModelExtension) -> ModelExtension:
        """Attach an extension (idempotent per name: an extension already attached is kept).

        Returns the attached instance (the existing one when the name is taken).
        """
        if not isinstance(extension, ModelExtension):
            raise InvalidParameterError(f"attach() needs a ModelExtension, got {type(extension).__name__}")
        if extension.name in self.extensions:
            return self.extensions[extension.name]  # type: ignore[return-value]
        if extension.replaces_head and self.head_extension is not None:
            raise InvalidParameterError(
                f"extension {extension.name!r} replaces the head but {self.head_extension.name!r} already does"
            )
        self.extensions[extension.name] = extension
        self._invalidate()
        return extension

    def provides(self) -> set[str]:
        """Output names this model can serve."""
        names = set(BASE_OUTPUTS) | {f"stage{i}" for i in range(len(self.stage_names))}
        if self.task != "classification":
            names.discard("probs")
        if self.open_set:
            names.add("open_probs")
        for ext in self.extensions.values():
            names |= set(ext.provides)  # type: ignore[arg-type]
        return names

    def build_extensions(self, example: torch.Tensor) -> None:
        """Build every attached extension that is not built yet (needs one example batch)."""
        pending = [n for n in self.extensions if n not in self._built]
        if not pending:
            return
        dim, shapes = self._feature_shapes(example)
        for name in pending:
            ext = self.extensions[name]
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed + 7919 * (len(self._built) + 1))
                # with the K+1 device, extensions see the 'not in task' class too (the trainer uses target K)
                ext.build_from(  # type: ignore[operator]
                    BuildContext(dim, list(shapes), self.num_classes + int(self.open_set), tuple(example.shape[1:]), self)
                )
            ext.to(self.device)
            self._ext_initial[name] = copy.deepcopy({k: v.detach().cpu() for k, v in ext.state_dict().items()})
            self._built.add(name)

    def reset_parameters(self) -> None:
        """Restore the initial weights of the backbone and of every built extension."""
        self.backbone.load_state_dict(self._initial_state)
        for name, state in self._ext_initial.items():
            self.extensions[name].load_state_dict(state)
        self._invalidate()

    def _invalidate(self) -> None:
        self.version += 1

    def mark_trained(self) -> None:
        """Called by the trainer after the weights change: drops cached outputs."""
        self._invalidate()

    # ------------------------------------------------------------- inference
    @torch.no_grad()
    def predict_batch(self, x: torch.Tensor, names: Iterable[str]) -> dict[str, torch.Tensor]:
        """Requested outputs of one batch in evaluation mode (no caching)."""
        names = list(names)
        self.eval()
        x = x.to(self.device, non_blocking=True)
        out = self.forward(x)
        result: dict[str, torch.Tensor] = {}
        ext_out: dict[str, torch.Tensor] = {}
        if any(n not in BASE_OUTPUTS and n != "open_probs" and not n.startswith("stage") for n in names):
            for ext in self.extensions.values():
                ext_out.update(ext.infer_with(out, x))  # type: ignore[operator]
        for n in names:
            if n == "logits":
                result[n] = out.logits.float()
            elif n == "probs":
                result[n] = self.probs_from(out).float()
            elif n == "embeddings":
                result[n] = out.embeddings.float()
            elif n == "open_probs" and self.open_set:
                result[n] = F.softmax(out.logits.float(), dim=1)
            elif n.startswith("stage") and n[5:].isdigit() and int(n[5:]) < len(out.stages):
                s = out.stages[int(n[5:])].float()
                result[n] = s.mean(dim=tuple(range(2, s.ndim))) if s.ndim > 2 else s
            elif n in ext_out:
                result[n] = ext_out[n].float()
            else:
                raise InvalidParameterError(
                    f"output {n!r} is not available; this model provides {sorted(self.provides())}"
                )
        return result

    def outputs(
        self,
        pools: Any,
        indices: Sequence[int] | np.ndarray,
        names: Sequence[str] | str,
        *,
        batch_size: int | None = None,
        local: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Outputs for ``indices`` of ``pools`` (rows in the order of ``indices``), on the model's device.

        Cached per (pools, output) until the model changes: only indices not
        computed before are run through the network.

        In a ``torch.distributed`` run (:mod:`activelearn.distributed`) every
        rank must make the same call: each rank runs the network on its
        contiguous shard of the missing rows and the results are all-gathered,
        so every rank returns the full outputs.  ``local=True`` skips the
        collective: this rank computes exactly ``indices`` on its own (for
        callers that keep features sharded, e.g. the distributed k-center);
        such rank-specific rows are then not cached, so the cache stays the
        same on every rank.
        """
        if isinstance(names, str):
            names = [names]
        idx = np.ascontiguousarray(indices, dtype=np.int64)
        if self._cache_version != self.version:
            self._cache.clear()
            self._cache_version = self.version
        if idx.size == 0:
            return {n: torch.zeros(0, device=self.device) for n in names}
        self.build_extensions(pools.inputs(idx[:2]))
        missing_by_name = {}
        for n in names:
            entry = self._cache.get((pools.uid, n))
            missing_by_name[n] = idx if entry is None else idx[~entry[1][idx]]
        todo = np.unique(np.concatenate(list(missing_by_name.values())))
        if todo.size:
            need = [n for n in names if missing_by_name[n].size]
            sharded = not local and dist_helpers.is_distributed()
            private = local and dist_helpers.is_distributed()
            if sharded:  # this rank runs its shard; the gather below fills in the others
                a, b = dist_helpers.shard_range(todo.size)
                mine = todo[a:b]
            else:
                mine = todo
            bs = batch_size or self.eval_batch_size
            chunks = range(0, mine.size, bs)
            if self.progress and mine.size > 20 * bs:
                from tqdm.auto import tqdm

                chunks = tqdm(chunks, desc="scoring", leave=False)
            parts: dict[str, list[torch.Tensor]] = {n: [] for n in need}
            for start in chunks:
                part = mine[start : start + bs]
                res = self.predict_batch(pools.inputs(part), need)
                if sharded or private:
                    for n in need:
                        parts[n].append(res[n])
                else:
                    self._store(pools, part, res)
            if sharded:
                self._store(pools, todo, {n: self._gather_rows(parts[n], pools.inputs(todo[:1]), n) for n in need})
            if private:
                return self._merge_private(pools, idx, names, todo, {n: torch.cat(parts[n]) for n in need})
        sel = torch.from_numpy(idx).to(self.device)
        return {n: self._cache[(pools.uid, n)][0][sel] for n in names}

    def _store(self, pools: Any, rows: np.ndarray, res: dict[str, torch.Tensor]) -> None:
        """Put computed outputs for ``rows`` into the per-(pools, name) cache."""
        for n, v in res.items():
            key = (pools.uid, n)
            if key not in self._cache:
                store = torch.zeros((pools.n, *v.shape[1:]), dtype=v.dtype, device=self.device)
                self._cache[key] = (store, np.zeros(pools.n, dtype=bool))
            store, mask = self._cache[key]
            store[torch.from_numpy(np.ascontiguousarray(rows)).to(self.device)] = v
            mask[rows] = True

    def _merge_private(
        self, pools: Any, idx: np.ndarray, names: Sequence[str], todo: np.ndarray, computed: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Outputs for ``idx`` from the cache plus rows computed for this rank only (``todo``, sorted)."""
        sel = torch.from_numpy(idx).to(self.device)
        out = {}
        for n in names:
            entry = self._cache.get((pools.uid, n))
            if n not in computed:
                out[n] = entry[0][sel]  # type: ignore[index]
                continue
            v = computed[n]
            base = entry[0][sel] if entry is not None else torch.zeros((idx.size, *v.shape[1:]), dtype=v.dtype, device=self.device)
            miss = np.ones(idx.size, dtype=bool) if entry is None else ~entry[1][idx]
            pos = torch.from_numpy(np.searchsorted(todo, idx[miss])).to(self.device)
            base[torch.from_numpy(np.flatnonzero(miss)).to(self.device)] = v[pos]
            out[n] = base
        return out

    def _gather_rows(self, parts: list[torch.Tensor], example: torch.Tensor, name: str) -> torch.Tensor:
        """Concatenate this rank's batches and all-gather every rank's (an empty shard still takes part)."""
        if parts:
            local = torch.cat(parts)
        else:  # no rows here: learn the row shape from one forward pass (cheap, no rows kept)
            local = self.predict_batch(example, [name])[name][:0]
        return dist_helpers.all_gather_rows(local)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, names: Sequence[str] = ("probs",), batch_size: int | None = None) -> dict[str, torch.Tensor]:
        """Outputs for a tensor of inputs (e.g. the test set), batched, not cached."""
        bs = batch_size or self.eval_batch_size
        parts: dict[str, list[torch.Tensor]] = {n: [] for n in names}
        if len(x):
            self.build_extensions(x[:2])
        for start in range(0, len(x), bs):
            res = self.predict_batch(x[start : start + bs], names)
            for n in names:
                parts[n].append(res[n])
        return {n: torch.cat(v) if v else torch.zeros(0) for n, v in parts.items()}

    def mc_outputs(
        self,
        pools: Any,
        indices: Sequence[int] | np.ndarray,
        n_samples: int,
        *,
        seed: int,
        names: Sequence[str] | str = ("log_probs",),
        batch_size: int | None = None,
    ) -> dict[str, torch.Tensor]:
        """Outputs of ``n_samples`` consistent MC-dropout passes, each ``U x S x ...`` (U = len(indices)).

        Dropout layers draw one fixed mask per (sample, layer) from ``seed``
        and keep it for every input (consistent MC dropout, as BatchBALD
        needs), everything else runs in evaluation mode (batch-norm uses its
        running statistics).  The results therefore do not depend on
        ``batch_size`` or on how callers chunk ``indices``, beyond float
        rounding of the forward passes.  ``"log_probs"``
        (log-softmax of the class logits, or the log of a replacing head's
        scores) is available besides every name of :meth:`provides`.  Not
        cached; the global RNG is left untouched.  See
        :func:`activelearn.mc_dropout.mc_outputs`.

        Raises
        ------
        InvalidParameterError
            If the model has no dropout layer (build the backbone with
            ``dropout=...``) or ``n_samples`` is not a positive int.
        """
        from .mc_dropout import mc_outputs

        return mc_outputs(self, pools, indices, n_samples, seed=seed, names=names, batch_size=batch_size)

    # ---------------------------------------------------------------- state
    def engine_state(self) -> dict[str, Any]:
        """What a checkpoint needs of the model, as plain containers of CPU tensors.

        ``nn.Module.state_dict`` (the current weights of the backbone and of
        every attached extension) is one part; the others are the initial
        weights :meth:`reset_parameters` restores (backbone and each built
        extension) and the names of the built extensions.  A distinct name
        from ``state_dict`` so that ``nn.Module``'s own contract (current
        weights only) is unchanged.
        """
        return {
            "weights": {k: v.detach().cpu() for k, v in self.state_dict().items()},
            "initial": {k: v.clone() for k, v in self._initial_state.items()},
            "extensions_initial": {n: {k: v.clone() for k, v in s.items()} for n, s in self._ext_initial.items()},
            "built": sorted(self._built),
        }

    def load_engine_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`engine_state` into a model built the same way (same backbone, extensions attached and built).

        Raises
        ------
        CheckpointError
            If the parameter names differ (checked before anything changes).
        """
        from .exceptions import CheckpointError

        own = self.state_dict()
        missing = sorted(set(own) - set(state["weights"]))
        extra = sorted(set(state["weights"]) - set(own))
        shapes = sorted(f"{k} {tuple(state['weights'][k].shape)} vs {tuple(v.shape)}" for k, v in own.items() if k in state["weights"] and tuple(v.shape) != tuple(state["weights"][k].shape))
        if missing or extra or shapes or sorted(self._built) != list(state["built"]):
            raise CheckpointError(
                f"model parameters differ from the checkpoint (missing {missing[:4]}, unexpected {extra[:4]}, other shapes (saved vs this model) {shapes[:4]}, "
                f"built extensions {sorted(self._built)} vs saved {list(state['built'])}); "
                "build the same backbone and attach the same extensions"
            )
        self._initial_state = {k: v.clone() for k, v in state["initial"].items()}
        self._ext_initial = {n: {k: v.clone() for k, v in s.items()} for n, s in state["extensions_initial"].items()}
        self.load_state_dict(state["weights"])
        self.mark_trained()
