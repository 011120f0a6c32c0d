"""The contrastive strategies' classifier: the paper's fine-tuned copy of the encoder, or the old linear probe."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import activelearn as al
from activelearn.contrastive import FineTunedClassifier, classifier_set
from activelearn.exceptions import InvalidParameterError
from activelearn.strategies.contrastive import ContrastiveDistance

from conftest import blobs

SMALL = dict(first_epochs=2, later_epochs=1, batch_size=32, rep_dim=16, proj_dim=16, kmeans_iter=10, classifier_steps=4)


def _pool(kind: str) -> tuple[torch.Tensor, np.ndarray]:
    """90 samples, 3 classes: blob vectors (MLP encoder) or 1 x 8 x 8 images with a bright band per class (CNN)."""
    if kind == "vec":
        return blobs(90, seed=0)
    g = torch.Generator().manual_seed(0)
    y = np.arange(90) % 3
    x = torch.rand(90, 1, 8, 8, generator=g) * 0.3
    for c in range(3):
        x[torch.from_numpy(y == c), 0, 2 * c : 2 * c + 3, :] += 1.0
    return x, y


def _run(kind: str = "vec", cycles: int = 2, every: int = 4, cls: type | None = None, **params):
    """16 initial answers (every ``every``-th sample not in task), then ``cycles`` selects of 6, answered each time."""
    x, y = _pool(kind)
    pools = al.Pools(x, num_classes=3)
    oracle = al.SimulatedOracle(y, num_classes=3, in_task=np.arange(len(y)) % every != 0)
    model = al.ALModel(nn.Linear(1, 1), num_classes=3, device="cpu")
    pools.record(oracle.answer(al.Query(np.arange(16))), cycle=0)
    s = al.strategies.get("contrastive_distance", **{"seed": 3, **SMALL, **params}) if cls is None else cls(**{"seed": 3, **SMALL, **params})
    out: dict = {"x": x, "y": y, "strategy": s, "pools": pools, "model": model, "picks": []}
    for cycle in range(cycles):
        pools.cycle = cycle
        picks = s.select(model, pools, 6)
        out["picks"].append(picks.tolist())
        pools.record(oracle.answer(al.Query(picks)), cycle=cycle)
    return out


class _BeforeFineTuning(ContrastiveDistance):
    """The classifier code as it was before fine-tuning existed (commit 22dc594), copied here as the reference."""

    def _fit_classifier(self, feats, pools, k, gen, seed):
        lab, rej = pools.labeled, pools.rejected
        y = torch.as_tensor(pools.labels_of(lab), dtype=torch.long)
        cap = max(1, int(np.ceil(lab.size / max(1, np.unique(y.numpy()).size))))
        if rej.size > cap:
            rej = rej[torch.randperm(rej.size, generator=gen)[:cap].numpy()]
        idx = torch.from_numpy(np.concatenate([lab, rej])).to(feats.device)
        targets = torch.cat([y, torch.full((rej.size,), k, dtype=torch.long)])
        self._rep.fit_classifier(feats[idx], targets, steps=self.classifier_steps)

    @torch.no_grad()
    def predict(self, x, batch_size=1024):
        rep = self._rep
        rep.eval()
        out = []
        for s in range(0, len(x), batch_size):
            f = torch.nn.functional.normalize(rep.encoder(x[s : s + batch_size]).float(), dim=1)
            out.append(rep.classifier(f)[:, : rep.num_classes].argmax(1).cpu())
        return torch.cat(out)


@pytest.mark.parametrize("kind", ["vec", "img"])
def test_probe_equals_the_classifier_before_fine_tuning(kind: str) -> None:
    new, old = _run(kind, every=2, classifier="probe"), _run(kind, every=2, cls=_BeforeFineTuning, classifier="probe")
    assert new["picks"] == old["picks"]
    a, b = new["strategy"].state_dict()["weights"], old["strategy"].state_dict()["weights"]
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0)
    torch.testing.assert_close(new["strategy"].predict(new["x"]), old["strategy"].predict(old["x"]), rtol=0, atol=0)
    assert not torch.equal(a["classifier.weight"], torch.zeros_like(a["classifier.weight"]))  # the probe was trained


#: computed with the code before fine-tuning existed (commit 22dc594) with one thread: classifier_steps=4, seed 3
OLD_PICKS = [[31, 46, 28, 56, 71, 17], [42, 69, 63, 41, 29, 61]]
OLD_WEIGHTS = [0.0, 0.04003, -0.039938, 0.0, -0.039986, 0.039963, 0.0, 0.03997, -0.039966, 0.0, -0.038853, 0.039885]
OLD_PREDS = "112012012012012012012012012012012012012012012012012012012012012012012012012012212012012012"


def test_probe_gives_the_numbers_stored_before_fine_tuning() -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the stored numbers were computed with one thread
    try:
        run = _run("vec", classifier="probe")
    finally:
        torch.set_num_threads(threads)
    s = run["strategy"]
    assert run["picks"] == OLD_PICKS
    w = s.state_dict()["weights"]["classifier.weight"][:, :3].reshape(-1)
    np.testing.assert_allclose(w.numpy(), OLD_WEIGHTS, atol=2e-5)
    assert "".join(map(str, s.predict(run["x"]).tolist())) == OLD_PREDS
    assert s.state_dict()["finetuned"] is None


def test_fine_tuning_changes_a_copy_never_the_acquisition_encoder() -> None:
    ft, pr = _run("img", classifier="finetune", classifier_epochs=3), _run("img", classifier="probe")
    assert ft["picks"] == pr["picks"]  # acquisition does not see the classifier
    a, b = ft["strategy"].state_dict(), pr["strategy"].state_dict()
    for name, v in a["weights"].items():
        if not name.startswith("classifier."):  # the probe layer is trained in "probe" mode only
            torch.testing.assert_close(v, b["weights"][name], rtol=0, atol=0)
    enc = {k[len("encoder."):]: v for k, v in a["finetuned"].items() if k.startswith("encoder.")}
    assert set(enc) == {k[len("encoder."):] for k in a["weights"] if k.startswith("encoder.")}
    changed = [k for k, v in enc.items() if v.dtype.is_floating_point and not torch.equal(v, a["weights"]["encoder." + k])]
    assert "0.weight" in changed and "9.weight" in changed  # first conv and last linear layer
    assert "1.running_mean" in changed  # batch norm in train mode while fine-tuning
    assert a["finetuned"]["head.weight"].shape == (4, 16)  # K + 1 outputs


def test_loss_at_init_is_the_label_smoothed_cross_entropy() -> None:
    torch.manual_seed(0)
    enc = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    x = torch.randn(5, 4)
    y = torch.tensor([0, 1, 2, 0, 1])
    for eps in (0.1, 0.0):
        clf = FineTunedClassifier(enc, 3, 2, init_seed=7)
        with torch.no_grad():
            logp = torch.log_softmax(clf(x).double(), dim=1).numpy()
        by_hand = float(np.mean([-(1 - eps) * logp[i, y[i]] - eps * logp[i].mean() for i in range(5)]))
        got = clf.fit(lambda i: x[torch.as_tensor(i)], np.arange(5), y, epochs=1, batch_size=5, lr=1e-3, weight_decay=1e-6,
                      label_smoothing=eps, gen=torch.Generator().manual_seed(0), device=torch.device("cpu"))
        assert got == pytest.approx(by_hand, rel=1e-5)
    smoothed = al.strategies.get("contrastive_random")
    assert smoothed.label_smoothing == 0.1 and smoothed.classifier == "finetune" and smoothed.classifier_epochs == 100
    assert (smoothed.classifier_batch, smoothed.classifier_lr, smoothed.classifier_weight_decay) == (32, 1e-3, 1e-6)


def test_the_strategy_passes_its_label_smoothing_and_training_set(monkeypatch) -> None:
    seen = []
    original = FineTunedClassifier.fit

    def spy(self, inputs, indices, targets, **kw):
        seen.append((np.asarray(indices).copy(), targets.clone(), kw))
        return original(self, inputs, indices, targets, **kw)

    monkeypatch.setattr(FineTunedClassifier, "fit", spy)
    _run("vec", cycles=1, every=2, classifier_epochs=2, label_smoothing=0.25, classifier_batch=8, classifier_lr=5e-3)
    (idx, targets, kw), = seen
    assert kw["label_smoothing"] == 0.25 and kw["batch_size"] == 8 and kw["lr"] == 5e-3 and kw["epochs"] == 2
    first = np.arange(16)  # the classifier of cycle 0 sees the 16 initial answers, every 2nd not in task
    lab, rej = first[first % 2 != 0], first[first % 2 == 0]
    assert sorted(idx[: lab.size].tolist()) == lab.tolist()
    cap = math.ceil(8 / 3)  # 8 in-task labels over 3 classes: the 8 rejections are cut to 3
    assert idx.size == lab.size + cap and targets[lab.size:].tolist() == [3] * cap
    assert set(idx[lab.size:]) <= set(rej.tolist())


def test_undersampling_keeps_the_mean_class_count() -> None:
    gen = torch.Generator().manual_seed(0)
    lab, labels, rej = np.arange(10), np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2]), np.arange(100, 109)
    idx, t = classifier_set(lab, labels, rej, 3, gen)
    assert idx.size == 10 + 4 and len(set(idx[10:])) == 4 and set(idx[10:]) <= set(rej)
    assert t[:10].tolist() == labels.tolist() and t[10:].tolist() == [3] * 4
    idx, t = classifier_set(lab, labels, rej[:2], 3, gen)  # fewer than the cap: all kept
    assert idx[10:].tolist() == [100, 101]


def test_fine_tuning_is_deterministic_and_depends_on_the_seed() -> None:
    a, b = _run("vec", cycles=1, classifier_epochs=3), _run("vec", cycles=1, classifier_epochs=3)
    c = _run("vec", cycles=1, classifier_epochs=3, seed=4)
    x = a["x"]
    torch.testing.assert_close(a["strategy"].predict(x), b["strategy"].predict(x))
    wa, wb, wc = (r["strategy"].state_dict()["finetuned"]["head.weight"] for r in (a, b, c))
    torch.testing.assert_close(wa, wb, rtol=0, atol=0)
    assert not torch.equal(wa, wc)


def test_evaluate_uses_the_fine_tuned_network_and_state_round_trips() -> None:
    run = _run("img", cycles=1, classifier_epochs=4)
    s, x, y = run["strategy"], run["x"], run["y"]
    state = s.state_dict()
    pred = s.predict(x)
    assert s.evaluate(run["model"], run["pools"], x, torch.as_tensor(y)) == pytest.approx(float((pred == torch.as_tensor(y)).float().mean()))
    torch.testing.assert_close(s.predict(x[:7]), pred[:7])  # eval mode: a prediction does not depend on its batch
    other = al.strategies.get("contrastive_distance", seed=3, **SMALL)
    other.load_state_dict(state)
    torch.testing.assert_close(other.predict(x), pred)
    probe = al.strategies.get("contrastive_distance", seed=3, **SMALL, classifier="probe")
    probe.load_state_dict(state)
    assert not torch.equal(probe.predict(x), pred)  # the (untrained) probe is a different classifier


@pytest.mark.parametrize(("param", "value"), [
    ("classifier", "linear"), ("classifier_epochs", 0), ("classifier_epochs", 2.0), ("classifier_batch", True),
    ("classifier_lr", 0.0), ("classifier_lr", -1e-3), ("classifier_lr", float("nan")), ("classifier_lr", "1e-3"),
    ("classifier_weight_decay", -1e-6), ("classifier_weight_decay", float("inf")), ("label_smoothing", 1.0),
    ("label_smoothing", -0.1), ("label_smoothing", None),
])
def test_bad_classifier_parameters_are_refused(param: str, value) -> None:
    with pytest.raises(InvalidParameterError, match=param):
        al.strategies.get("contrastive_distance", **{param: value})
    s = al.strategies.get("contrastive_random", **SMALL)
    setattr(s, param, value)  # set after construction: refused at select, before anything is trained
    x, y = _pool("vec")
    pools = al.Pools(x, num_classes=3)
    pools.record(al.SimulatedOracle(y, num_classes=3).answer(al.Query(np.arange(9))), cycle=0)
    with pytest.raises(InvalidParameterError, match=param):
        s.select(al.ALModel(nn.Linear(1, 1), num_classes=3, device="cpu"), pools, 3)
    assert s.state_dict() == {}


def test_good_edge_values_are_accepted() -> None:
    s = al.strategies.get("contrastive_distance", classifier="probe", label_smoothing=0.0, classifier_weight_decay=0, classifier_lr=1)
    assert s.classifier == "probe"


def test_a_run_killed_inside_a_cycle_and_resumed_evaluates_identically(tmp_path) -> None:
    """The loop's checkpoint holds the fine-tuned classifier: resumed inside the last selecting cycle (quota mode,
    3 select calls), the strategy re-applies the radius rule without refitting and evaluates with the saved network."""
    import warnings

    from test_contract import Stop, books, build_resume_loop, interrupt

    kw = dict(mode="quota", every=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = build_resume_loop("contrastive_distance", tmp_path / "ref", **kw)
        ref.run()
        assert [r.extra.get("select_calls", 0) for r in ref.history.records][1] >= 2
        loop = build_resume_loop("contrastive_distance", tmp_path / "run", **kw)
        interrupt(loop, "select", 1, 2)  # cycle 1 is the last that selects: its classifier is the final one
        with pytest.raises(Stop):
            loop.run()
        again = build_resume_loop("contrastive_distance", tmp_path / "run", **kw).restore()
        again.run()
    assert books(again) == books(ref)
    x, y = again.test
    for name, w in ref.strategy.state_dict()["finetuned"].items():
        torch.testing.assert_close(again.strategy.state_dict()["finetuned"][name], w, rtol=0, atol=0)
    assert again.strategy.evaluate(again.model, again.pools, x, y) == ref.strategy.evaluate(ref.model, ref.pools, x, y)
