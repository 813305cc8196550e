"""The demo data the generator tests share: the project catalog and the size they use."""

from __future__ import annotations

from pathlib import Path

N_EVENTS = 20_000
CATALOG_PATH = Path(__file__).resolve().parents[2] / "config" / "experiments.yaml"
