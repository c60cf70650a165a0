"""Did the journey cause it? Uplift of entrants against the holdout group.

Two figures a marketer reads: the repeat-purchase (conversion) rate and the
revenue per contact. For each, the difference treatment − control with a 95%
confidence interval, a p-value, and a verdict in plain words — significant, or
"not yet" with how many more contacts per group the observed effect would need.

Rates use the unpooled normal (Wald) interval for a difference of proportions
and a pooled z-test; revenue uses Welch's interval for a difference of means
(normal approximation: holdout groups in retail are large). Only the standard
library is needed (statistics.NormalDist).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import msgspec

_N = NormalDist()


class Uplift(msgspec.Struct, kw_only=True):
    metric: str
    treatment: float  # rate or mean in the treated group
    control: float
    difference: float  # treatment − control, absolute
    relative: float | None  # difference / control
    ci_low: float
    ci_high: float
    p_value: float
    significant: bool
    n_treatment: int
    n_control: int
    #: Contacts per group needed to detect the observed effect (80% power, two-sided α).
    needed_per_group: int | None
    verdict: str


def _z(alpha: float) -> float:
    return _N.inv_cdf(1 - alpha / 2)


def _needed(diff: float, var_t: float, var_c: float, alpha: float, power: float) -> int | None:
    if diff == 0 or (var_t + var_c) == 0:
        return None
    z = _z(alpha) + _N.inv_cdf(power)
    return math.ceil(z * z * (var_t + var_c) / (diff * diff))


def _verdict(metric: str, u: Uplift, unit: str) -> str:
    if u.n_treatment == 0 or u.n_control == 0:
        return f"No {metric} comparison yet: the {'holdout' if u.n_control == 0 else 'treated'} group is empty."
    rng = f"{u.ci_low:+.{3 if unit == '%' else 2}f} to {u.ci_high:+.{3 if unit == '%' else 2}f}"
    if unit == "%":
        rng = f"{u.ci_low * 100:+.1f} to {u.ci_high * 100:+.1f} percentage points"
        diff = f"{u.difference * 100:+.1f} percentage points"
    else:
        diff = f"{u.difference:+.2f} per contact"
    if u.significant:
        direction = "raised" if u.difference > 0 else "lowered"
        return f"The journey {direction} {metric} by {diff} (95% CI {rng}); the difference is significant."
    more = ""
    if u.needed_per_group:
        missing = max(0, u.needed_per_group - min(u.n_treatment, u.n_control))
        more = f" About {u.needed_per_group:,} contacts per group ({missing:,} more) would show an effect this size."
    return f"Not significant yet: {metric} differs by {diff} (95% CI {rng}).{more}"


def _uplift(metric, t, c, se, p_value, n_t, n_c, var_t, var_c, alpha, power, unit) -> Uplift:
    diff = t - c
    half = _z(alpha) * se
    u = Uplift(
        metric=metric,
        treatment=t,
        control=c,
        difference=diff,
        relative=(diff / c) if c else None,
        ci_low=diff - half,
        ci_high=diff + half,
        p_value=p_value,
        significant=bool(n_t and n_c and p_value < alpha),
        n_treatment=n_t,
        n_control=n_c,
        needed_per_group=_needed(diff, var_t, var_c, alpha, power),
        verdict="",
    )
    u.verdict = _verdict(metric, u, unit)
    return u


def proportion_uplift(
    conv_t: int, n_t: int, conv_c: int, n_c: int, *, alpha: float = 0.05, power: float = 0.8, metric: str = "conversion"
) -> Uplift:
    """Difference in conversion rate between treated (t) and control (c) contacts."""
    for name, k, n in (("treatment", conv_t, n_t), ("control", conv_c, n_c)):
        if n < 0 or k < 0 or k > n:
            raise ValueError(f"{name}: conversions ({k}) must be between 0 and the group size ({n})")
    p_t = conv_t / n_t if n_t else 0.0
    p_c = conv_c / n_c if n_c else 0.0
    diff = p_t - p_c
    if n_t and n_c:
        se = math.sqrt(p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c)
        pooled = (conv_t + conv_c) / (n_t + n_c)
        se0 = math.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_c))
        p_value = 2 * (1 - _N.cdf(abs(diff) / se0)) if se0 > 0 else 1.0
    else:
        se, p_value = math.inf, 1.0
    return _uplift(metric, p_t, p_c, se, p_value, n_t, n_c, p_t * (1 - p_t), p_c * (1 - p_c), alpha, power, "%")


def mean_uplift(
    sum_t: float, sumsq_t: float, n_t: int, sum_c: float, sumsq_c: float, n_c: int,
    *, alpha: float = 0.05, power: float = 0.8, metric: str = "revenue per contact",
) -> Uplift:
    """Difference in a per-contact mean (e.g. revenue, zeros included) from sums and sums of squares,
    so that it can be computed from SQL aggregates without loading contacts."""
    m_t = sum_t / n_t if n_t else 0.0
    m_c = sum_c / n_c if n_c else 0.0
    var_t = max(0.0, (sumsq_t - n_t * m_t * m_t) / (n_t - 1)) if n_t > 1 else 0.0
    var_c = max(0.0, (sumsq_c - n_c * m_c * m_c) / (n_c - 1)) if n_c > 1 else 0.0
    diff = m_t - m_c
    if n_t and n_c:
        se = math.sqrt(var_t / n_t + var_c / n_c)
        p_value = 2 * (1 - _N.cdf(abs(diff) / se)) if se > 0 else (0.0 if diff else 1.0)
    else:
        se, p_value = math.inf, 1.0
    return _uplift(metric, m_t, m_c, se, p_value, n_t, n_c, var_t, var_c, alpha, power, "money")
