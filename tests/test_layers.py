"""The core library must never import Dagster: the layers point inward only."""

import subprocess
import sys
from pathlib import Path

import exp_pipeline

CORE = Path(exp_pipeline.__file__).parent


def _core_modules() -> list[str]:
    modules = []
    for path in sorted(CORE.rglob("*.py")):
        relative = path.relative_to(CORE.parent).with_suffix("")
        if "migrations" in relative.parts or relative.name == "__main__":
            continue
        modules.append(".".join(relative.parts).removesuffix(".__init__"))
    return modules


def test_every_core_module_imports_without_dagster() -> None:
    modules = _core_modules()
    assert "exp_pipeline.cli" in modules and "exp_pipeline.warehouse.loader" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "leaked = sorted(m for m in sys.modules if m == 'dagster' or m.startswith('dagster.'))\n"
        "print(','.join(leaked))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"core imported Dagster: {result.stdout}"


def test_core_source_never_names_dagster_imports() -> None:
    offenders = [
        str(path)
        for path in CORE.rglob("*.py")
        for line in path.read_text().splitlines()
        if line.lstrip().startswith(("import dagster", "from dagster"))
    ]
    assert offenders == []
