"""`python -m exp_pipeline` runs the same CLI as the `exp-pipeline` console script."""

from exp_pipeline.cli import main

main()
