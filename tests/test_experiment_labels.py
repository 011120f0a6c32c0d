"""Strategy labels with parameters (``name:key=value``), used by the example scripts."""

from __future__ import annotations

import pytest

from activelearn.exceptions import InvalidParameterError
from activelearn.experiment import parse_label


def test_parse_label_literals_and_strings() -> None:
    assert parse_label("dacs") == ("dacs", {})
    assert parse_label("ncenet:distance=cosine:prototypes=2") == ("ncenet", {"distance": "cosine", "prototypes": 2})
    assert parse_label("dacs+entropy:eta=3.0:first__cross_group=True") == (
        "dacs+entropy", {"eta": 3.0, "first__cross_group": True}
    )


@pytest.mark.parametrize("label", ["dacs:cross_group", "dacs:=3"])
def test_parse_label_refuses_items_without_key_value(label: str) -> None:
    with pytest.raises(InvalidParameterError, match="key=value"):
        parse_label(label)
