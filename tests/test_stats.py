import math

import numpy as np
import pytest

from robustbench_bytes import stats
from robustbench_bytes.results import resampled


def arrays(nll, n_bytes, clean_bytes=None, words=None):
    n = len(nll)
    return resampled.DocumentArrays(np.asarray(nll, float), np.asarray(n_bytes, float),
                                np.asarray(clean_bytes if clean_bytes is not None else n_bytes, float),
                                np.asarray(words if words is not None else [10] * n, float))


def test_point_estimates_are_ratios_of_sums():
    docs = arrays([10.0, 30.0, 5.0], [100, 200, 50], [90, 180, 60], [20, 40, 10])
    one = np.ones((1, 3))
    assert resampled.metric("bits_per_byte", docs)(one)[0] == pytest.approx(45.0 / (350 * math.log(2)))
    assert resampled.metric("bits_per_clean_byte", docs)(one)[0] == pytest.approx(45.0 / (330 * math.log(2)))
    assert resampled.metric("word_perplexity", docs)(one)[0] == pytest.approx(math.exp(45.0 / 70))
    interval = stats.bootstrap(resampled.metric("bits_per_byte", docs), 3)
    assert interval.estimate == pytest.approx(45.0 / (350 * math.log(2)))
    assert interval.low <= interval.estimate <= interval.high


def test_from_documents_reads_per_document_dicts():
    docs = resampled.DocumentArrays.from_documents(
        [{"nll": 1.5, "bytes": 3, "clean_bytes": 2, "clean_words": 1, "index": 0},
         {"nll": 2.5, "bytes": 4, "clean_bytes": 4, "clean_words": 2, "index": 1}])
    assert len(docs) == 2
    assert docs.nll.tolist() == [1.5, 2.5] and docs.clean_words.tolist() == [1.0, 2.0]


def test_one_document_gives_a_degenerate_interval():
    interval = stats.bootstrap(resampled.metric("bits_per_byte", arrays([7.0], [10])), 1)
    assert interval.low == interval.estimate == interval.high


def test_same_seed_same_interval_other_seed_other_draws():
    rng = np.random.default_rng(1)
    docs = arrays(rng.uniform(50, 150, 40), rng.integers(80, 120, 40))
    a = stats.bootstrap(resampled.metric("bits_per_byte", docs), 40, seed=3)
    b = stats.bootstrap(resampled.metric("bits_per_byte", docs), 40, seed=3)
    c = stats.bootstrap(resampled.metric("bits_per_byte", docs), 40, seed=4)
    assert a == b
    assert (a.low, a.high) != (c.low, c.high)


def test_paired_difference_of_identical_cells_is_exactly_zero():
    rng = np.random.default_rng(2)
    docs = arrays(rng.uniform(50, 150, 30), rng.integers(80, 120, 30))
    same = arrays(docs.nll.copy(), docs.bytes.copy())
    interval = stats.bootstrap(resampled.change("bits_per_byte", same, docs), 30)
    assert interval.estimate == interval.low == interval.high == 0.0


def test_pairing_cancels_document_difficulty():
    # the candidate is the baseline plus 1% everywhere; documents vary a lot in difficulty.
    rng = np.random.default_rng(3)
    base = arrays(rng.uniform(20, 200, 50), [100] * 50)
    cand = arrays(base.nll * 1.01, base.bytes)
    paired = stats.bootstrap(resampled.change("bits_per_byte", cand, base), 50)
    unpaired_width = (stats.bootstrap(resampled.metric("bits_per_byte", cand), 50, seed=1).high
                      - stats.bootstrap(resampled.metric("bits_per_byte", base), 50, seed=2).low)
    assert paired.low > 0  # the 1% is resolved
    assert paired.high - paired.low < 0.1 * unpaired_width


def test_interval_narrows_with_more_documents():
    rng = np.random.default_rng(4)

    def width(n):
        docs = arrays(rng.uniform(50, 150, n), [100] * n)
        interval = stats.bootstrap(resampled.metric("bits_per_byte", docs), n)
        return interval.high - interval.low

    assert width(400) < 0.5 * width(25)


def test_percentile_interval_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(5)
    truth, hits, trials = 100.0 / (100 * math.log(2)), 0, 150
    for trial in range(trials):
        docs = arrays(rng.normal(100.0, 20.0, 40), [100] * 40)
        interval = stats.bootstrap(resampled.metric("bits_per_byte", docs), 40, replicates=400, seed=trial)
        hits += interval.low <= truth <= interval.high
    assert 0.85 <= hits / trials <= 0.99


def test_mean_of_and_ratio_use_the_same_draws():
    docs = arrays([10.0, 20.0, 30.0], [10, 10, 10])
    metric = resampled.metric("bits_per_byte", docs)
    both = stats.bootstrap(stats.mean_of([metric, metric]), 3)
    single = stats.bootstrap(metric, 3)
    assert both == single
    unit = stats.bootstrap(stats.ratio(metric, metric), 3)
    assert unit.low == unit.high == 1.0


def test_bad_arguments():
    docs = arrays([1.0], [1])
    with pytest.raises(ValueError):
        stats.bootstrap(resampled.metric("bits_per_byte", docs), 0)
    with pytest.raises(ValueError):
        stats.bootstrap(resampled.metric("bits_per_byte", docs), 1, confidence=1.0)


def test_large_corpora_are_processed_in_chunks(monkeypatch):
    monkeypatch.setattr(stats, "_MAX_WEIGHTS_PER_CHUNK", 20_000)
    stats._cached_weights.cache_clear()
    n = 200
    rng = np.random.default_rng(6)
    docs = arrays(rng.uniform(50, 150, n), [100] * n)
    chunks = list(stats.document_weights(n, 1000, seed=0))
    assert len(chunks) == 10 and sum(len(c) for c in chunks) == 1000
    assert all((c.sum(axis=1) == n).all() for c in chunks)
    interval = stats.bootstrap(resampled.metric("bits_per_byte", docs), n)
    assert interval.low < interval.estimate < interval.high
