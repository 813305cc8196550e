"""Demo data: seeded landing files with known true effects, for demos, tests and benchmarks."""

from exp_pipeline.demo.generator import TRUE_EFFECTS, DemoSummary, generate_demo_data

__all__ = ["TRUE_EFFECTS", "DemoSummary", "generate_demo_data"]
