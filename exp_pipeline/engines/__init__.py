"""Engines that run the heavy transforms: DuckDB (default) or Spark, chosen by settings.

`engines.configured.open_engine(settings)` opens the one `engine:` names in
config/pipeline.yaml. The transforms take either an `Engine` or a DuckDB connection
(wrapped by `engines.base.as_engine`) and store only per-experiment rows and small
per-variant aggregates, so the statistics never depend on the engine that produced
them. The statements live in `sql/` in DuckDB's dialect; `engines.sql` translates them.
docs/engines.md says how to point Spark at a cluster.
"""
