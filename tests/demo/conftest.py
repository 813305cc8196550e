"""Fixtures of the demo generator tests: the project catalog and one generated demo per
module (generation is deterministic, so modules see the same files)."""

from __future__ import annotations

import pytest

from exp_pipeline.catalog import Catalog, load_catalog
from exp_pipeline.demo import DemoSummary, generate_demo_data
from tests.demo.demo_data import CATALOG_PATH, N_EVENTS


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(CATALOG_PATH)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, catalog: Catalog) -> DemoSummary:
    return generate_demo_data(tmp_path_factory.mktemp("demo"), catalog, n_events=N_EVENTS)
