"""The loop's state: identity checks, the cycle in progress as plain data, restore's refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import activelearn as al
from activelearn import loop_state
from activelearn.exceptions import CheckpointError

from test_contract import build_resume_loop


def test_pending_cycle_round_trips_through_plain_data() -> None:
    record = al.CycleRecord(cycle=1, n_labeled=18, interactions=18, cost=18.0, metrics={"accuracy": 0.5}, selected=[4, 9, 2])
    record.extra["select_calls"] = 1
    query = al.Query(indices=np.array([4], dtype=np.int64), groups=(np.array([9, 2], dtype=np.int64),))
    plain = loop_state.pending_state({"record": record, "query": query, "progress": True})
    assert plain["query"] == {"indices": [4], "groups": [[9, 2]]} and plain["answered"] is False
    back = loop_state.load_pending(plain)
    assert back is not None and back["record"] == record and back["progress"] is True
    assert back["query"].indices.tolist() == [4] and [g.tolist() for g in back["query"].groups] == [[9, 2]]
    answered = loop_state.pending_state({"record": record, "query": None, "progress": False})
    assert answered["answered"] is True and loop_state.load_pending(answered)["query"] is None
    assert loop_state.pending_state(None) is None and loop_state.load_pending(None) is None


def test_a_state_from_a_differently_built_loop_is_refused_before_anything_changes() -> None:
    loop = build_resume_loop("random", None)
    loop.run()
    state = loop.state_dict()
    other = build_resume_loop("entropy", None)
    before = {k: v.clone() for k, v in other.model.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"different run \(strategy: saved 'random', this loop 'entropy'"):
        other.load_state_dict(state)
    assert len(other.history) == 0 and other.pools.n_labeled == 0
    assert all(torch.equal(v, other.model.state_dict()[k]) for k, v in before.items())
    assert loop_state.loop_identity(loop) == state["identity"] == loop.identity()


def test_restore_needs_a_folder_and_keeps_checkpointing_where_the_run_was(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="restore\\(\\) needs the run's folder"):
        build_resume_loop("random", None).restore()
    build_resume_loop("random", tmp_path).run()
    again = build_resume_loop("random", None).restore(tmp_path)
    assert again.out_dir == tmp_path and len(again.history) == 3
