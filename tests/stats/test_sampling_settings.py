"""The sampler's settings come from `sampling:` in pipeline.yaml, validated on load."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from exp_pipeline.errors import SettingsError
from exp_pipeline.settings import PipelineSettings
from exp_pipeline.stats.sampling_settings import SamplingSettings


def _load(tmp_path: Path, home: Path, config: dict[str, object]) -> PipelineSettings:
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return PipelineSettings.load(path, home=home)


def test_the_project_file_states_the_defaults(home: Path) -> None:
    assert PipelineSettings.load(home=home).sampling == SamplingSettings()


def test_a_sampling_block_is_read(tmp_path: Path, home: Path) -> None:
    settings = _load(tmp_path, home, {"sampling": {"draws": 200, "chains": 2, "tune": 100}})
    assert settings.sampling == SamplingSettings(draws=200, chains=2, tune=100)
    assert _load(tmp_path, home, {}).sampling == SamplingSettings()


@pytest.mark.parametrize(
    ("sampling", "message"),
    [
        ({"chains": 1}, "chains must be an integer >= 2"),
        ({"target_accept": 1.5}, "target_accept must be strictly between 0 and 1"),
    ],
)
def test_bad_sampling_settings_are_refused_by_name(
    tmp_path: Path, home: Path, sampling: dict[str, object], message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        _load(tmp_path, home, {"sampling": sampling})


def test_loading_settings_does_not_import_pymc() -> None:
    # Importing PyMC costs seconds; commands that never sample must not pay for it.
    code = (
        "import sys; from exp_pipeline.settings import PipelineSettings; "
        "PipelineSettings.load(); print('pymc' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"
