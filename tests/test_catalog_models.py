"""Catalog settings of the in-depth statistics: `cuped` and `model: hurdle` on metrics."""

from __future__ import annotations

from typing import Any

import pytest

from exp_pipeline.catalog import parse_catalog
from exp_pipeline.errors import CatalogError
from tests.test_catalog import _with

REVENUE = {"key": "revenue", "kind": "continuous", "event": "purchase", "property": "amount"}
PAGES = {"key": "pages", "kind": "trend", "event": "page"}
FUNNEL = {"key": "conversion", "kind": "funnel", "steps": ["a", "b"]}
RATIO = {"key": "errors", "kind": "ratio", "numerator": "e", "denominator": "p"}


def dumped(metric: dict[str, Any]) -> dict[str, Any]:
    catalog = parse_catalog(_with(metrics=[metric]))
    return catalog.experiments[0].metrics[0].model_dump(mode="json")


@pytest.mark.parametrize("metric", [REVENUE, PAGES, FUNNEL])
def test_cuped_is_stored_with_its_lookback(metric: dict[str, Any]) -> None:
    assert dumped({**metric, "cuped": {"lookback_days": 7}})["cuped"] == {"lookback_days": 7.0}
    assert dumped({**metric, "cuped": {}})["cuped"] == {"lookback_days": 14.0}
    assert "cuped" not in dumped(metric)


def test_the_hurdle_model_is_stored_only_when_stated() -> None:
    assert dumped({**REVENUE, "model": "hurdle"})["model"] == "hurdle"
    assert "model" not in dumped(REVENUE)


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        (
            {**RATIO, "cuped": {}},
            "experiment 'a-b-test': metrics.0: cuped: not available for ratio metrics",
        ),
        (
            {**PAGES, "aggregation": "organization", "cuped": {}},
            "metrics.0: cuped: available for per-person metrics only, not aggregation "
            "'organization'",
        ),
        ({**PAGES, "cuped": {"lookback_days": 0}}, "metrics.0.cuped.lookback_days: Input should"),
        ({**PAGES, "cuped": {"lookback_days": 400}}, "metrics.0.cuped.lookback_days: Input should"),
        ({**PAGES, "cuped": {"days": 3}}, "metrics.0.cuped.days: is not a known field"),
        ({**REVENUE, "model": "gamma"}, "metrics.0.model: Input should be 'hurdle'"),
        ({**PAGES, "model": "hurdle"}, "metrics.0.model: is not a known field"),
    ],
)
def test_errors_name_the_field(metric: dict[str, Any], expected: str) -> None:
    with pytest.raises(CatalogError) as info:
        parse_catalog(_with(metrics=[metric]), "cat.yaml")
    assert expected in str(info.value)
