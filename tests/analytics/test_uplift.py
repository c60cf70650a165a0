"""The uplift test finds a true effect at the stated rate, and no effect where there is none."""

import random

import pytest

from kaskad.analytics.uplift import mean_uplift, proportion_uplift


def _simulate_rates(rng, n, p_t, p_c):
    conv_t = sum(rng.random() < p_t for _ in range(n))
    conv_c = sum(rng.random() < p_c for _ in range(n))
    return proportion_uplift(conv_t, n, conv_c, n)


def test_no_effect_is_found_about_5_percent_of_the_time():
    rng = random.Random(7)
    runs = 400
    false_positives = sum(_simulate_rates(rng, 2000, 0.10, 0.10).significant for _ in range(runs))
    # 5% nominal; binomial sd over 400 runs is ~1.1% — allow 2%..9%.
    assert 0.02 * runs <= false_positives <= 0.09 * runs


def test_a_real_effect_is_found_at_the_designed_power():
    # Size the groups for 80% power on 10% → 12%, then check the detection rate over many seeds.
    first = proportion_uplift(120, 1000, 100, 1000)
    n = first.needed_per_group
    assert 3000 < n < 4500  # textbook figure for 10% vs 12% is ~3,840 per group
    rng = random.Random(11)
    runs = 200
    hits = sum(_simulate_rates(rng, n, 0.12, 0.10).significant for _ in range(runs))
    assert 0.70 * runs <= hits <= 0.90 * runs


def test_interval_covers_the_true_difference_about_95_percent_of_the_time():
    rng = random.Random(3)
    covered = 0
    for _ in range(300):
        u = _simulate_rates(rng, 1500, 0.15, 0.11)
        covered += u.ci_low <= 0.04 <= u.ci_high
    assert 0.91 * 300 <= covered <= 0.985 * 300


def test_revenue_uplift_from_sums_matches_a_direct_computation():
    rng = random.Random(5)
    t = [rng.choice([0, 0, 0, 1500, 3200]) + (400 if rng.random() < 0.3 else 0) for _ in range(3000)]
    c = [rng.choice([0, 0, 0, 1500, 3200]) for _ in range(3000)]
    u = mean_uplift(sum(t), sum(x * x for x in t), len(t), sum(c), sum(x * x for x in c), len(c))
    mt, mc = sum(t) / len(t), sum(c) / len(c)
    assert u.difference == pytest.approx(mt - mc)
    import statistics

    se = (statistics.variance(t) / len(t) + statistics.variance(c) / len(c)) ** 0.5
    assert u.ci_high - u.difference == pytest.approx(1.959964 * se, rel=1e-4)
    assert u.significant and "raised revenue per contact" in u.verdict


def test_verdict_says_not_yet_and_how_many_more():
    u = proportion_uplift(11, 100, 10, 100)
    assert not u.significant
    assert u.verdict.startswith("Not significant yet") and "more" in u.verdict


def test_empty_holdout_is_said_plainly():
    u = proportion_uplift(10, 100, 0, 0)
    assert not u.significant and "holdout group is empty" in u.verdict


def test_impossible_counts_are_refused():
    with pytest.raises(ValueError, match="control"):
        proportion_uplift(1, 10, 5, 4)
