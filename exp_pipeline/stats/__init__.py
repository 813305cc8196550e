"""Statistics of experiment metrics, read from small per-variant aggregates.

The Bayesian results of funnel (binary) and trend (count) metrics are exact: computed by
deterministic one-dimensional quadrature and root finding, never by Monte Carlo, so the
same aggregates always give bit-identical results (which is what lets an analyst compare
materialisations and trust a decision log). Their entry points are `analyse_funnel` and
`analyse_trend`; the pieces they are built from are public so other metric kinds and
reports can reuse them.
"""

from exp_pipeline.stats.best import expected_loss, probability_to_be_best
from exp_pipeline.stats.frequentist import CONFIDENCE_LEVEL, FrequentistResult
from exp_pipeline.stats.inputs import FunnelCounts, StatsInputError, TrendCounts
from exp_pipeline.stats.intervals import credible_interval, lift_interval, ratio_cdf
from exp_pipeline.stats.means import MeanSummary, welch_t_test
from exp_pipeline.stats.multiple_testing import holm_adjust
from exp_pipeline.stats.posteriors import BetaPosterior, GammaPosterior, Posterior
from exp_pipeline.stats.proportions import two_proportion_z_test
from exp_pipeline.stats.quadrature import IntegrationError
from exp_pipeline.stats.ratios import RatioSummary, ratio_estimate, ratio_z_test
from exp_pipeline.stats.results import BayesianResult, analyse_funnel, analyse_trend
from exp_pipeline.stats.significance import MetricKind, SignificanceCode, significance_code
from exp_pipeline.stats.winsorisation import Winsorised, cap_values, winsorise

__all__ = [
    "CONFIDENCE_LEVEL",
    "BayesianResult",
    "BetaPosterior",
    "FrequentistResult",
    "FunnelCounts",
    "GammaPosterior",
    "IntegrationError",
    "MeanSummary",
    "MetricKind",
    "Posterior",
    "RatioSummary",
    "SignificanceCode",
    "StatsInputError",
    "TrendCounts",
    "Winsorised",
    "analyse_funnel",
    "analyse_trend",
    "cap_values",
    "credible_interval",
    "expected_loss",
    "holm_adjust",
    "lift_interval",
    "probability_to_be_best",
    "ratio_cdf",
    "ratio_estimate",
    "ratio_z_test",
    "significance_code",
    "two_proportion_z_test",
    "welch_t_test",
    "winsorise",
]
