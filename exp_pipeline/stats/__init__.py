"""Statistics of experiment metrics, read from small per-variant aggregates.

The Bayesian results of funnel (binary), trend (count), continuous and ratio metrics are
exact: computed by deterministic one-dimensional quadrature, closed forms and root
finding, never by Monte Carlo, so the same aggregates always give bit-identical results
(which is what lets an analyst compare materialisations and trust a decision log). Their
entry points are `analyse_funnel`, `analyse_trend`, `analyse_continuous` and
`analyse_ratio`; the pieces they are built from are public so reports can reuse them.
Beside them: frequentist tests, always-valid sequential inference, multiple-testing
corrections, overdispersion, CUPED and sample-ratio mismatch.
"""

from exp_pipeline.stats.always_valid import AlwaysValidResult, always_valid_test
from exp_pipeline.stats.best import expected_loss, probability_to_be_best
from exp_pipeline.stats.cuped import CupedResult, CupedSums, cuped_adjust
from exp_pipeline.stats.frequentist import CONFIDENCE_LEVEL, FrequentistResult
from exp_pipeline.stats.inputs import FunnelCounts, StatsInputError, TrendCounts
from exp_pipeline.stats.intervals import credible_interval, lift_interval, ratio_cdf
from exp_pipeline.stats.means import MeanSummary, welch_t_test
from exp_pipeline.stats.multiple_testing import e_bh_adjust, holm_adjust
from exp_pipeline.stats.normal_posterior import NormalPosterior
from exp_pipeline.stats.overdispersion import Dispersion, dispersion_test
from exp_pipeline.stats.posteriors import BetaPosterior, GammaPosterior, Posterior
from exp_pipeline.stats.priors import Prior
from exp_pipeline.stats.proportions import two_proportion_z_test
from exp_pipeline.stats.quadrature import IntegrationError
from exp_pipeline.stats.rates import poisson_rate_test
from exp_pipeline.stats.ratios import RatioSummary, ratio_estimate, ratio_z_test
from exp_pipeline.stats.results import (
    BayesianResult,
    analyse_continuous,
    analyse_funnel,
    analyse_ratio,
    analyse_trend,
)
from exp_pipeline.stats.significance import MetricKind, SignificanceCode, significance_code
from exp_pipeline.stats.winsorisation import Winsorised, cap_values, winsorise

__all__ = [
    "CONFIDENCE_LEVEL",
    "AlwaysValidResult",
    "BayesianResult",
    "BetaPosterior",
    "CupedResult",
    "CupedSums",
    "Dispersion",
    "FrequentistResult",
    "FunnelCounts",
    "GammaPosterior",
    "IntegrationError",
    "MeanSummary",
    "MetricKind",
    "NormalPosterior",
    "Posterior",
    "Prior",
    "RatioSummary",
    "SignificanceCode",
    "StatsInputError",
    "TrendCounts",
    "Winsorised",
    "always_valid_test",
    "analyse_continuous",
    "analyse_funnel",
    "analyse_ratio",
    "analyse_trend",
    "cap_values",
    "credible_interval",
    "cuped_adjust",
    "dispersion_test",
    "e_bh_adjust",
    "expected_loss",
    "holm_adjust",
    "lift_interval",
    "poisson_rate_test",
    "probability_to_be_best",
    "ratio_cdf",
    "ratio_estimate",
    "ratio_z_test",
    "significance_code",
    "two_proportion_z_test",
    "welch_t_test",
    "winsorise",
]
