"""Issue 13, mutation testing of ops/ (BADGE, BatchBALD, k-means, representer, symmetric KL, typicality).

Each test checks one op against a reference written out here from its
definition (float64 brute forces, enumeration of every class configuration,
scikit-learn) or against hand-computed values, including the messages of the
errors raised for bad input.  Written for the mutants that survived the
focused test files; see docs/reliability.md, "Mutation testing".
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from activelearn.exceptions import InvalidInputError
from activelearn.ops.batchbald import conditional_entropies
from activelearn.ops.representer import cross_entropy_logit_grad, representer_alpha, representer_values
from activelearn.ops.symkl import symmetric_kl

# ---------------------------------------------------------------- representer values (Yeh et al. 2018)


def test_cross_entropy_gradient_refuses_mismatched_targets_and_names_both_shapes() -> None:
    logits = torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(InvalidInputError, match=r"need N x C logits and N targets, got \(3, 2\) and \(2,\)"):
        cross_entropy_logit_grad(logits, torch.zeros(2, dtype=torch.long))
    with pytest.raises(InvalidInputError, match=r"got \(3,\) and \(3,\)"):
        cross_entropy_logit_grad(torch.zeros(3), torch.zeros(3, dtype=torch.long))
    # by hand: softmax(0, ln 3) = (1/4, 3/4); target 1 -> (1/4, -1/4)
    got = cross_entropy_logit_grad(torch.tensor([[0.0, math.log(3.0)]], dtype=torch.float64), torch.tensor([1]))
    torch.testing.assert_close(got, torch.tensor([[0.25, -0.25]], dtype=torch.float64))


def test_representer_alpha_uses_the_given_training_set_size() -> None:
    grad = torch.tensor([[0.2, -0.2], [-0.5, 0.5]], dtype=torch.float64)
    # -grad / (2 lam n) with lam = 0.5 and n = 10 (not the 2 rows given)
    torch.testing.assert_close(representer_alpha(grad, lam=0.5, n=10), -grad / 10.0)
    torch.testing.assert_close(representer_alpha(grad, lam=0.25, n=4), -grad / 2.0)


def test_representer_values_by_hand_and_the_row_mismatch_message() -> None:
    alpha = torch.tensor([[1.0, -2.0], [0.5, 0.0]], dtype=torch.float64)  # 2 training points, 2 classes
    train = torch.tensor([[1.0, 0.0, 1.0], [0.0, 2.0, 1.0]], dtype=torch.float64)
    target = torch.tensor([[3.0, 1.0, 1.0]], dtype=torch.float64)  # f_t . f_i = 4, 3
    want = torch.tensor([[[4.0, -8.0], [1.5, 0.0]]], dtype=torch.float64)
    torch.testing.assert_close(representer_values(alpha, train, target), want)
    torch.testing.assert_close(representer_values(alpha, train, target, cls=0), want[:, :, 0])
    with pytest.raises(InvalidInputError, match=r"^alpha has 3 rows but train_features 2$"):
        representer_values(torch.zeros(3, 5, dtype=torch.float64), train, target)


# ---------------------------------------------------------------- symmetric KL (CDAL)


def test_symmetric_kl_names_the_bad_argument() -> None:
    good = [[0.5, 0.5]]
    with pytest.raises(InvalidInputError, match=r"^p must be 2-D"):
        symmetric_kl([0.5, 0.5], good)
    with pytest.raises(InvalidInputError, match=r"^q must be 2-D"):
        symmetric_kl(good, [0.5, 0.5])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_symmetric_kl_moves_q_to_the_device_of_p() -> None:
    p = np.random.default_rng(0).dirichlet(np.ones(3), size=4)
    q = np.random.default_rng(1).dirichlet(np.ones(3), size=5)
    got = symmetric_kl(torch.as_tensor(p, device="cuda"), q)
    torch.testing.assert_close(got.cpu(), symmetric_kl(p, q))


# ---------------------------------------------------------------- BatchBALD


def test_conditional_entropies_use_the_sample_entropies_given() -> None:
    """Collapsed configurations contribute the caller's ``sample_entropies`` (precomputed, not recomputed)."""
    probs = torch.softmax(torch.randn(4, 2, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64), dim=-1)
    log_joint = torch.tensor([[0.0, -1e4], [0.0, -1e4], [-1e4, 0.0]], dtype=torch.float64)  # 2 on sample 0, 1 on sample 1
    given = torch.arange(8, dtype=torch.float64).reshape(4, 2)  # not the entropies of probs
    want = given[:, 0] * 2 / 3 + given[:, 1] / 3
    torch.testing.assert_close(conditional_entropies(log_joint, probs, given), want, rtol=0, atol=1e-12)
