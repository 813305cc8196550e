"""The pipeline settings the definitions are built from, read once when Dagster loads them.

Partitions, schedules, sensor intervals and resources all come from the same file and
environment; reading it once keeps them consistent and the code location's load cheap.
"""

from exp_pipeline.settings import PipelineSettings

DEFINITION_SETTINGS = PipelineSettings.load()
