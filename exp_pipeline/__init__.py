"""exp-pipeline core library: catalog, control database, event warehouse, CLI.

This package never imports Dagster (a test enforces it), so the whole core can be used
and tested without an orchestrator; `assets/` and `sensors/` wrap it for Dagster.
"""

__version__ = "0.1.0"
