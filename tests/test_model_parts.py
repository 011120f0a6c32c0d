"""The model's collaborators: feature capture, the output cache and its merge, extension outputs vs base outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import activelearn as al
from activelearn.exceptions import InvalidParameterError
from activelearn.features import FeatureTap, last_linear_name
from activelearn.output_cache import OutputCache


def _mlp_model() -> al.ALModel:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = al.backbones.MLP(4, 3, hidden=(5,))
    return al.ALModel(net, num_classes=3, device="cpu")


def test_stage_outputs_are_the_spatial_mean_of_the_raw_maps() -> None:
    from activelearn.backbones import SmallCNN

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = SmallCNN(in_channels=1, num_classes=10, image_size=28)
    model = al.ALModel(net, num_classes=10, device="cpu")
    x = torch.randn(5, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    pools = al.Pools(x)
    model.eval()
    with torch.no_grad():
        raw = model(x)
    out = model.outputs(pools, np.arange(5), ["stage0", "embeddings", "logits"])
    assert raw.stages[0].ndim == 4
    torch.testing.assert_close(out["stage0"], raw.stages[0].mean(dim=(2, 3)))
    torch.testing.assert_close(out["embeddings"], raw.embeddings)
    torch.testing.assert_close(out["logits"], raw.logits)


def test_feature_tap_finds_the_head_and_refuses_unknown_modules() -> None:
    net = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    assert last_linear_name(net) == "2"
    tap = FeatureTap(net)
    logits, emb, stages = tap.run(net, torch.ones(3, 4))
    assert emb.shape == (3, 6) and logits.shape == (3, 2) and stages == []
    torch.testing.assert_close(emb, torch.relu(net[0](torch.ones(3, 4))))  # the input of the head
    with pytest.raises(InvalidParameterError, match="head 'nope' is not a submodule of Sequential"):
        FeatureTap(net, head="nope")
    with pytest.raises(InvalidParameterError, match="stage 'x' is not a submodule"):
        FeatureTap(net, stages=["x"])
    with pytest.raises(InvalidParameterError, match=r"has no nn\.Linear"):
        FeatureTap(nn.Sequential(nn.ReLU()))


def test_output_cache_reports_and_forgets_computed_rows() -> None:
    model = _mlp_model()
    pools = al.Pools(torch.randn(20, 4, generator=torch.Generator().manual_seed(0)))
    calls: list[int] = []
    model.backbone.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    model.outputs(pools, [3, 7, 1], "probs")
    computed = model.output_cache.computed(pools)
    assert list(computed) == ["probs"] and np.flatnonzero(computed["probs"]).tolist() == [1, 3, 7]
    model.outputs(pools, [7, 9], "probs")  # only row 9 is new
    assert calls == [3, 1]
    model.output_cache.clear()
    model.outputs(pools, [7], "probs")
    assert calls == [3, 1, 1] and np.flatnonzero(model.output_cache.computed(pools)["probs"]).tolist() == [7]


def test_cache_merge_takes_cached_rows_and_fills_the_others_from_the_computed_ones() -> None:
    class P:
        uid, n = 1, 5

    cache = OutputCache(torch.device("cpu"))
    cache.store(P, np.array([1, 3]), {"v": torch.tensor([[10.0], [30.0]])})
    todo = np.array([0, 2])  # sorted rows this rank computed itself
    merged = cache.merge(P, np.array([3, 0, 1, 2]), "v", todo, torch.tensor([[0.5], [2.5]]))
    assert merged.flatten().tolist() == [30.0, 0.5, 10.0, 2.5]
    assert np.flatnonzero(cache.computed(P)["v"]).tolist() == [1, 3]  # merged rows are not cached
    fresh = cache.merge(P, np.array([2, 0]), "w", todo, torch.tensor([[1.0], [2.0]]))  # nothing cached under "w"
    assert fresh.flatten().tolist() == [2.0, 1.0]


class _Shadow(al.ModelExtension):
    """Serves its own output and (wrongly) one named like a base output."""

    name = "shadow"
    provides = ("shadow_out",)

    def infer(self, out):
        return {"shadow_out": out.embeddings.sum(1, keepdim=True), "logits": torch.zeros_like(out.logits)}


def test_extension_outputs_never_replace_the_models_own() -> None:
    model = _mlp_model()
    model.attach(_Shadow())
    x = torch.randn(4, 4, generator=torch.Generator().manual_seed(2))
    res = model.predict_batch(x, ["shadow_out", "logits"])
    raw = model(x)
    torch.testing.assert_close(res["logits"], raw.logits)
    torch.testing.assert_close(res["shadow_out"], raw.embeddings.sum(1, keepdim=True))
    with pytest.raises(InvalidParameterError, match="output 'nope' is not available"):
        model.predict_batch(x, ["nope"])


def test_attach_is_idempotent_per_name_and_bumps_the_version_once() -> None:
    model = _mlp_model()
    v = model.version
    first = _Shadow()
    assert model.attach(first) is first and model.version == v + 1
    assert model.attach(_Shadow()) is first and model.version == v + 1
    assert "shadow_out" in model.provides() and model.extension_set.unbuilt() == ["shadow"]
