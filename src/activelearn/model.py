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

The model delegates to small collaborators of the core layer: the extension
point types live in :mod:`activelearn.extension_point` (re-exported here),
feature capture in :mod:`activelearn.features`, extension management in
:mod:`activelearn.extension_set`, cached outputs in
:mod:`activelearn.output_cache`, and batched (distributed-sharded) passes over
pools in :mod:`activelearn.pool_pass`.
"""

from __future__ import annotations

import copy
import functools
from typing import Any, Callable, Iterable, Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._validation import resolve_device
from .exceptions import CheckpointError, InvalidParameterError
from .extension_point import BuildContext, ForwardOutput, ModelExtension, StepContext
from .extension_set import ExtensionSet
from .features import FeatureTap
from .output_cache import OutputCache
from .pool_pass import pool_outputs

__all__ = ["ForwardOutput", "BuildContext", "StepContext", "ModelExtension", "ALModel"]

BASE_OUTPUTS = ("logits", "probs", "embeddings")


def _pooled(stage: torch.Tensor) -> torch.Tensor:
    """A stage output as one vector per sample (conv maps global-average-pooled)."""
    s = stage.float()
    return s.mean(dim=tuple(range(2, s.ndim))) if s.ndim > 2 else s


def _batch_outputs(model: "ALModel", out: ForwardOutput, x: torch.Tensor, names: list[str]) -> dict[str, Callable[[], torch.Tensor]]:
    """Every output one batch can serve, each computed only when called (the model's own names win over extensions')."""
    fns: dict[str, Callable[[], torch.Tensor]] = {
        "logits": lambda: out.logits, "probs": lambda: model.probs_from(out), "embeddings": lambda: out.embeddings,
    }
    if model.open_set:
        fns["open_probs"] = lambda: F.softmax(out.logits.float(), dim=1)
    fns.update({f"stage{i}": functools.partial(_pooled, s) for i, s in enumerate(out.stages)})
    if any(n not in fns for n in names):  # extensions run only when asked for one of theirs
        for ext in model.extensions.values():
            for k, v in ext.infer_with(out, x).items():  # type: ignore[operator]
                fns.setdefault(k, functools.partial(torch.Tensor.float, v))
    return fns


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
        Show progress bars on long inference passes (on a terminal only).
    open_set : bool
        The "not in task" device of Kim, Kim & Hwang: the backbone has
        ``num_classes + 1`` outputs, the last one the auxiliary class K+1 that
        the trainer fits on ``pools.rejected``.  ``"probs"`` are then the softmax
        over the K in-task logits (the K+1 probabilities renormalised over the
        in-task classes), so evaluation and every probability-based score stay
        over the task's classes; ``"open_probs"`` serves the full K+1 softmax.

    Attributes
    ----------
    extensions : nn.ModuleDict
        The attached extensions by name (managed by :attr:`extension_set`).
    output_cache : OutputCache
        Outputs over pools computed for the current :attr:`version`.
    version : int
        Incremented whenever the weights or the extensions change.
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
        if task not in ("classification", "regression"):
            raise InvalidParameterError(f"task must be 'classification' or 'regression', got {task!r}")
        self.open_set = bool(open_set)
        self.backbone = backbone
        self.num_classes = int(num_classes)
        self.task = task
        self.device = resolve_device(device)
        self.eval_batch_size = int(eval_batch_size)
        self.seed = int(seed)
        self.progress = progress
        self.features = FeatureTap(backbone, head, stages)
        self.head_name, self.stage_names = self.features.head_name, self.features.stage_names
        self.extensions = nn.ModuleDict()
        self.extension_set = ExtensionSet(self.extensions, self.seed)
        self.to(self.device)
        self._initial_state = copy.deepcopy({k: v.detach().cpu() for k, v in self.backbone.state_dict().items()})
        self.version = 0
        self.output_cache = OutputCache(self.device)

    def forward(self, x: torch.Tensor) -> ForwardOutput:
        """One pass of the backbone returning logits, embeddings and stage outputs."""
        logits, emb, stages = self.features.run(self.backbone, x)
        return ForwardOutput(logits=logits, embeddings=emb, stages=stages)

    @property
    def head_extension(self) -> ModelExtension | None:
        """The attached extension that replaces the head, if any."""
        return self.extension_set.head

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
    def attach(self, extension: ModelExtension) -> ModelExtension:
        """Attach an extension (idempotent per name: the instance already attached under that name is kept and returned)."""
        attached, new = self.extension_set.attach(extension)
        if new:
            self.mark_trained()
        return attached

    def provides(self) -> set[str]:
        """Output names this model can serve."""
        names = set(BASE_OUTPUTS) | {f"stage{i}" for i in range(len(self.stage_names))}
        if self.task != "classification":
            names.discard("probs")
        if self.open_set:
            names.add("open_probs")
        return names | self.extension_set.provides()

    def build_extensions(self, example: torch.Tensor) -> None:
        """Build every attached extension that is not built yet (needs one example batch)."""
        if self.extension_set.unbuilt():
            dim, shapes = self.features.shapes(self, example, self.device)
            # with the K+1 device, extensions see the 'not in task' class too (the trainer uses target K)
            ctx = BuildContext(dim, list(shapes), self.num_classes + int(self.open_set), tuple(example.shape[1:]), self)
            self.extension_set.build(ctx, self.device)

    def reset_parameters(self) -> None:
        """Restore the initial weights of the backbone and of every built extension."""
        self.backbone.load_state_dict(self._initial_state)
        self.extension_set.reset()
        self.mark_trained()

    def mark_trained(self) -> None:
        """Called after the weights change (by the trainer, reset, attach): drops cached outputs."""
        self.version += 1

    # ------------------------------------------------------------- inference
    @torch.no_grad()
    def predict_batch(self, x: torch.Tensor, names: Iterable[str]) -> dict[str, torch.Tensor]:
        """Requested outputs of one batch in evaluation mode (no caching)."""
        names = list(names)
        self.eval()
        x = x.to(self.device, non_blocking=True)
        fns = _batch_outputs(self, self.forward(x), x, names)
        unknown = [n for n in names if n not in fns]
        if unknown:
            raise InvalidParameterError(f"output {unknown[0]!r} is not available; this model provides {sorted(self.provides())}")
        return {n: fns[n]().float() for n in names}

    def outputs(
        self, pools: Any, indices: Sequence[int] | np.ndarray, names: Sequence[str] | str, *, batch_size: int | None = None, local: bool = False
    ) -> dict[str, torch.Tensor]:
        """Outputs for ``indices`` of ``pools`` (rows in the order of ``indices``), on the model's device.

        Cached per (pools, output) until the model changes: only indices not
        computed before are run through the network.  In a ``torch.distributed``
        run every rank must make the same call (each computes its shard of the
        missing rows; all get the full outputs); ``local=True`` skips the
        collective and computes exactly ``indices`` on this rank, uncached (for
        callers that keep features sharded, e.g. the distributed k-center).
        See :mod:`activelearn.pool_pass`.
        """
        names = [names] if isinstance(names, str) else list(names)
        idx = np.ascontiguousarray(indices, dtype=np.int64)
        self.output_cache.sync(self.version)
        if idx.size == 0:
            return {n: torch.zeros(0, device=self.device) for n in names}
        self.build_extensions(pools.inputs(idx[:2]))
        bs = batch_size or self.eval_batch_size
        return pool_outputs(self, self.output_cache, pools, idx, names, batch_size=bs, local=local, progress=self.progress)

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

    def mc_outputs(self, pools: Any, indices: Sequence[int] | np.ndarray, n_samples: int, *, seed: int,
                   names: Sequence[str] | str = ("log_probs",), batch_size: int | None = None) -> dict[str, torch.Tensor]:
        """Outputs of ``n_samples`` seeded, consistent MC-dropout passes, each ``U x S x ...`` (U = len(indices)).

        One fixed dropout mask per (sample, layer) drawn from ``seed`` for every
        input (as BatchBALD needs), the rest in evaluation mode; ``"log_probs"``
        besides every name of :meth:`provides`.  Not cached; the global RNG is
        untouched.  See :func:`activelearn.mc_dropout.mc_outputs`.

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
            **self.extension_set.state(),
        }

    def load_engine_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`engine_state` into a model built the same way (same backbone, extensions attached and built).

        Raises
        ------
        CheckpointError
            If the parameter names differ (checked before anything changes).
        """
        own = self.state_dict()
        missing, extra = sorted(set(own) - set(state["weights"])), sorted(set(state["weights"]) - set(own))
        shapes = sorted(f"{k} {tuple(state['weights'][k].shape)} vs {tuple(v.shape)}" for k, v in own.items() if k in state["weights"] and tuple(v.shape) != tuple(state["weights"][k].shape))
        built = sorted(self.extension_set.built)
        if missing or extra or shapes or built != list(state["built"]):
            raise CheckpointError(
                f"model parameters differ from the checkpoint (missing {missing[:4]}, unexpected {extra[:4]}, other shapes (saved vs this model) {shapes[:4]}, "
                f"built extensions {built} vs saved {list(state['built'])}); build the same backbone and attach the same extensions"
            )
        self._initial_state = {k: v.clone() for k, v in state["initial"].items()}
        self.extension_set.load_initial(state["extensions_initial"])
        self.load_state_dict(state["weights"])
        self.mark_trained()
