"""Statistics of experiment metrics, read from small per-variant aggregates.

The Bayesian results of funnel (binary) and trend (count) metrics are exact: computed by
deterministic one-dimensional quadrature and root finding, never by Monte Carlo, so the
same aggregates always give bit-identical results (which is what lets an analyst compare
materialisations and trust a decision log). Their entry points are `analyse_funnel` and
`analyse_trend`; the pieces they are built from are public so other metric kinds and
reports can reuse them.
"""

from exp_pipeline.stats.best import expected_loss, probability_to_be_best
from exp_pipeline.stats.inputs import FunnelCounts, StatsInputError, TrendCounts
from exp_pipeline.stats.intervals import credible_interval, lift_interval, ratio_cdf
from exp_pipeline.stats.posteriors import BetaPosterior, GammaPosterior, Posterior
from exp_pipeline.stats.quadrature import IntegrationError
from exp_pipeline.stats.results import BayesianResult, analyse_funnel, analyse_trend
from exp_pipeline.stats.significance import MetricKind, SignificanceCode, significance_code

__all__ = [
    "BayesianResult",
    "BetaPosterior",
    "FunnelCounts",
    "GammaPosterior",
    "IntegrationError",
    "MetricKind",
    "Posterior",
    "SignificanceCode",
    "StatsInputError",
    "TrendCounts",
    "analyse_funnel",
    "analyse_trend",
    "credible_interval",
    "expected_loss",
    "lift_interval",
    "probability_to_be_best",
    "ratio_cdf",
    "significance_code",
]
