"""Bootstrap intervals on known cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tasks.reporting.bootstrap import bootstrap_ci, paired_bootstrap, per_problem_pass_at_k


def test_constant_values_give_a_zero_width_interval():
    for value in (0.0, 0.25, 1.0):
        ci = bootstrap_ci([value] * 37)
        assert (ci.estimate, ci.low, ci.high, ci.problems) == (
            pytest.approx(value),
            pytest.approx(value),
            pytest.approx(value),
            37,
        )


def test_binary_pass_rate_matches_the_normal_approximation():
    # 120 of 400 problems solved: p = 0.3, standard error sqrt(p(1-p)/N) = 0.0229; 95% ≈ ±0.0449.
    values = [1.0] * 120 + [0.0] * 280
    ci = bootstrap_ci(values, resamples=4000, seed=7)
    half = 1.959964 * math.sqrt(0.3 * 0.7 / 400)
    assert ci.estimate == pytest.approx(0.3)
    assert ci.low == pytest.approx(0.3 - half, abs=0.006)
    assert ci.high == pytest.approx(0.3 + half, abs=0.006)


def test_interval_narrows_with_confidence_and_is_reproducible():
    rng = np.random.default_rng(0)
    values = rng.random(200)
    wide, narrow = bootstrap_ci(values, confidence=0.99), bootstrap_ci(values, confidence=0.8)
    assert wide.low < narrow.low < values.mean() < narrow.high < wide.high
    assert bootstrap_ci(values) == bootstrap_ci(values)  # fixed default seed: same report every time
    assert bootstrap_ci([]) is None
    with pytest.raises(ValueError):
        bootstrap_ci(values, confidence=1.5)


def test_single_problem_interval_is_its_value():
    ci = bootstrap_ci([0.4])
    assert (ci.low, ci.high) == (pytest.approx(0.4), pytest.approx(0.4))


def test_per_problem_pass_at_k_uses_the_unbiased_estimator():
    counts = {3: (10, 0), 1: (10, 10), 2: (10, 5)}
    assert per_problem_pass_at_k(counts, 1).tolist() == pytest.approx([1.0, 0.5, 0.0])
    # pass@2 with n=10, c=5: 1 - C(5,2)/C(10,2) = 1 - 10/45.
    assert per_problem_pass_at_k(counts, 2, [2])[0] == pytest.approx(1 - 10 / 45)


def test_paired_identical_runs_show_no_change():
    values = np.linspace(0, 1, 50)
    d = paired_bootstrap(values, values)
    assert (d.delta, d.low, d.high, d.p_value, d.significant) == (0.0, 0.0, 0.0, 1.0, False)


def test_paired_uniform_gain_is_significant():
    d = paired_bootstrap([1.0] * 30, [0.0] * 30)
    assert (d.delta, d.low, d.high, d.significant) == (1.0, 1.0, 1.0, True)
    assert d.p_value == 0.0 and d.current == 1.0 and d.baseline == 0.0


def test_paired_small_net_change_is_noise_and_large_one_is_not():
    # 200 problems; 5 newly solved, 3 newly failing: +1 point, SE ≈ 1.4 points → noise.
    base = np.array([1.0] * 60 + [0.0] * 140)
    cur = base.copy()
    cur[60:65] = 1.0
    cur[:3] = 0.0
    small = paired_bootstrap(cur, base)
    assert small.delta == pytest.approx(0.01) and not small.significant and small.low < 0 < small.high
    assert small.p_value > 0.2
    # 30 newly solved, none lost: +15 points → well beyond noise.
    cur = base.copy()
    cur[60:90] = 1.0
    big = paired_bootstrap(cur, base)
    assert big.delta == pytest.approx(0.15) and big.significant and big.low > 0.08 and big.p_value < 0.01
    # The same change read the other way round is a significant drop.
    drop = paired_bootstrap(base, cur)
    assert drop.delta == pytest.approx(-0.15) and drop.significant and drop.high < 0


def test_paired_interval_is_tighter_than_independent_intervals():
    rng = np.random.default_rng(1)
    difficulty = rng.random(300)
    base = (difficulty > 0.5).astype(float)
    cur = base.copy()
    cur[np.flatnonzero(base == 0)[:12]] = 1.0  # 12 problems newly solved, +4 points
    paired = paired_bootstrap(cur, base)
    a, b = bootstrap_ci(cur), bootstrap_ci(base)
    assert paired.significant
    assert paired.high - paired.low < 0.5 * ((a.high - a.low) + (b.high - b.low)) / 2
    assert a.low < b.high  # the independent intervals overlap: they could not tell


def test_paired_length_mismatch():
    with pytest.raises(ValueError, match="differ in length"):
        paired_bootstrap([1.0, 0.0], [1.0])
