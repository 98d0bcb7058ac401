"""greedyhash_common.metric.hamming_map against straightforward implementations written here: Python sorts of
(distance, index) pairs for ties="index", and the plain average of AP over every order inside the ties
(exhaustive on tiny inputs, sampled on a larger one) for ties="expected"."""
import itertools

import numpy as np
import pytest

from greedyhash_common.infra.errors import UserInputError
from greedyhash_common.metric.hamming_map import (
    TIE_MODES,
    average_precisions,
    hamming_distances,
    mean_average_precision,
)


# ----------------------------------------------------------------------------------------------------
# Reference implementations


def reference_distances(query_codes, database_codes):
    """Hamming distances by counting differing positions, one pair at a time."""
    return [[sum(a != b for a, b in zip(query, item)) for item in database_codes.tolist()]
            for query in query_codes.tolist()]


def label_sets(labels):
    labels = np.asarray(labels)
    if labels.ndim == 1:
        return [{int(label)} for label in labels]
    return [set(np.flatnonzero(row).tolist()) for row in labels]


def relevant_sets(query_labels, database_labels):
    database_sets = label_sets(database_labels)
    return [{item for item, labels in enumerate(database_sets) if labels & query_set}
            for query_set in label_sets(query_labels)]


def ap_of_ranking(ranking, relevant, top_k):
    """Mean over the relevant items among the first top_k of (relevant seen so far) / position."""
    hits, total = 0, 0.0
    for position, item in enumerate(ranking[:top_k], start=1):
        if item in relevant:
            hits += 1
            total += hits / position
    return total / hits if hits else 0.0


def reference_index_aps(query_codes, database_codes, query_labels, database_labels, top_k=None):
    distances = reference_distances(query_codes, database_codes)
    aps = []
    for row, relevant in zip(distances, relevant_sets(query_labels, database_labels)):
        ranking = [item for _, item in sorted((distance, item) for item, distance in enumerate(row))]
        aps.append(ap_of_ranking(ranking, relevant, top_k))
    return np.array(aps)


def reference_expected_aps(query_codes, database_codes, query_labels, database_labels, top_k=None):
    """The average of AP over every ranking that orders ties in any way (tiny databases only)."""
    distances = reference_distances(query_codes, database_codes)
    aps = []
    for row, relevant in zip(distances, relevant_sets(query_labels, database_labels)):
        ties = [[item for item, d in enumerate(row) if d == distance] for distance in sorted(set(row))]
        orders = itertools.product(*(itertools.permutations(group) for group in ties))
        values = [ap_of_ranking(list(itertools.chain(*order)), relevant, top_k) for order in orders]
        aps.append(sum(values) / len(values))
    return np.array(aps)


def lexsort_index_aps(query_codes, database_codes, relevance, top_k=None):
    """Reference for larger inputs: np.lexsort by (distance, index), then the AP definition."""
    distances = 0.5 * (query_codes.shape[1] - query_codes.astype(float) @ database_codes.T.astype(float))
    aps = []
    for row, relevant in zip(distances, relevance):
        ranked = relevant[np.lexsort((np.arange(len(row)), row))][:top_k]
        positions = np.flatnonzero(ranked) + 1
        aps.append(np.mean(np.arange(1, len(positions) + 1) / positions) if len(positions) else 0.0)
    return np.array(aps)


# ----------------------------------------------------------------------------------------------------
# Inputs


def random_codes(rng, count, bits, dtype=np.float32):
    return rng.choice([-1, 1], size=(count, bits)).astype(dtype)


def random_labels(rng, count, kind, classes=4):
    if kind == "class ids":
        return rng.integers(0, classes, count)
    if kind == "one-hot":
        return np.eye(classes, dtype=np.int64)[rng.integers(0, classes, count)]
    return (rng.random((count, classes)) < 0.3).astype(np.float32)  # multi-hot, some rows empty


def clustered_problem(rng, num_queries, num_database, bits, classes=5, flip=0.25):
    """Codes near a random centre code per class, so that AP is far from chance."""
    centres = rng.choice([-1, 1], size=(classes, bits))

    def draw(count):
        labels = rng.integers(0, classes, count)
        flips = rng.random((count, bits)) < flip
        return np.where(flips, -centres[labels], centres[labels]).astype(np.float32), labels

    return (*draw(num_queries), *draw(num_database))


LABEL_KINDS = ("class ids", "one-hot", "multi-hot")


# ----------------------------------------------------------------------------------------------------
# ties="index"


@pytest.mark.parametrize("bits", [12, 48])
@pytest.mark.parametrize("kind", LABEL_KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int8])
def test_index_mode_matches_a_python_sort(bits, kind, dtype):
    rng = np.random.default_rng([bits, LABEL_KINDS.index(kind), np.dtype(dtype).itemsize])
    num_database = 60
    query_codes, database_codes = random_codes(rng, 9, bits, dtype), random_codes(rng, num_database, bits, dtype)
    # Coarse codes make large ties: reuse a few database codes many times.
    database_codes[::3] = database_codes[0]
    query_labels, database_labels = random_labels(rng, 9, kind), random_labels(rng, num_database, kind)
    for top_k in (None, 1, 5, num_database, num_database + 7):
        expected = reference_index_aps(query_codes, database_codes, query_labels, database_labels, top_k)
        actual = average_precisions(query_codes, database_codes, query_labels, database_labels, top_k=top_k)
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-12)
        assert actual.dtype == np.float64


@pytest.mark.parametrize("bits", [12, 48, 130])
def test_index_mode_on_a_larger_database(bits):
    rng = np.random.default_rng(bits)
    query_codes, query_labels, database_codes, database_labels = clustered_problem(rng, 70, 3000, bits)
    relevance = query_labels[:, None] == database_labels[None, :]
    for top_k in (None, 100, 2999):
        expected = lexsort_index_aps(query_codes, database_codes, relevance, top_k)
        actual = average_precisions(query_codes, database_codes, query_labels, database_labels, top_k=top_k,
                                    queries_per_chunk=16)
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-12)


def test_index_mode_when_every_item_ties():
    rng = np.random.default_rng(1)
    database_codes = np.repeat(random_codes(rng, 1, 48), 50, axis=0)
    query_codes = random_codes(rng, 3, 48)
    query_labels, database_labels = rng.integers(0, 3, 3), rng.integers(0, 3, 50)
    for top_k in (None, 10):
        actual = average_precisions(query_codes, database_codes, query_labels, database_labels, top_k=top_k)
        # Then the ranking is the database order.
        by_index = [ap_of_ranking(list(range(50)), set(np.flatnonzero(database_labels == label)), top_k)
                    for label in query_labels]
        np.testing.assert_allclose(actual, by_index, rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------------------------------
# ties="expected"


@pytest.mark.parametrize("bits", [1, 2, 3])
@pytest.mark.parametrize("kind", ["class ids", "multi-hot"])
def test_expected_mode_is_the_average_over_all_tie_orders(bits, kind):
    rng = np.random.default_rng([bits, LABEL_KINDS.index(kind)])
    for num_database in (1, 4, 6):
        query_codes, database_codes = random_codes(rng, 4, bits), random_codes(rng, num_database, bits)
        query_labels = random_labels(rng, 4, kind, classes=2)
        database_labels = random_labels(rng, num_database, kind, classes=2)
        for top_k in range(1, num_database + 2):
            expected = reference_expected_aps(query_codes, database_codes, query_labels, database_labels, top_k)
            actual = average_precisions(query_codes, database_codes, query_labels, database_labels,
                                        top_k=top_k, ties="expected")
            np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-12)
        expected = reference_expected_aps(query_codes, database_codes, query_labels, database_labels)
        actual = average_precisions(query_codes, database_codes, query_labels, database_labels, ties="expected")
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-12)


def test_expected_mode_when_every_item_ties():
    rng = np.random.default_rng(2)
    database_codes = np.repeat(random_codes(rng, 1, 12), 7, axis=0)
    query_codes = random_codes(rng, 3, 12)
    query_labels, database_labels = np.array([0, 1, 2]), np.array([0, 1, 0, 0, 1, 0, 1])
    for top_k in (None, 1, 3, 6):
        expected = reference_expected_aps(query_codes, database_codes, query_labels, database_labels, top_k)
        actual = average_precisions(query_codes, database_codes, query_labels, database_labels, top_k=top_k,
                                    ties="expected")
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-12)


def test_expected_mode_agrees_with_sampled_tie_orders_on_large_ties():
    rng = np.random.default_rng(3)
    bits, num_database, samples = 4, 300, 4000
    query_codes, database_codes = random_codes(rng, 2, bits), random_codes(rng, num_database, bits)
    query_labels, database_labels = np.array([0, 1]), rng.integers(0, 3, num_database)
    distances = reference_distances(query_codes, database_codes)
    for top_k in (None, 37, 150):
        expected = average_precisions(query_codes, database_codes, query_labels, database_labels, top_k=top_k,
                                      ties="expected")
        for row, label, value in zip(distances, query_labels, expected):
            # Random tie orders: sort by distance, then by a random key.
            orders = np.lexsort((rng.random((samples, num_database)), np.broadcast_to(row, (samples, num_database))))
            ranked = (database_labels == label)[orders][:, :top_k]
            hits = np.cumsum(ranked, axis=1)
            sums = np.sum(hits / np.arange(1, ranked.shape[1] + 1), axis=1, where=ranked)
            aps = np.divide(sums, hits[:, -1], out=np.zeros(samples), where=hits[:, -1] > 0)
            assert abs(aps.mean() - value) < 5 * aps.std() / np.sqrt(samples) + 1e-12


def test_modes_agree_when_no_distances_tie():
    bits = 6
    query_codes = -np.ones((1, bits))
    # Database item i differs from the query in its first i bits: all distances differ.
    database_codes = np.where(np.arange(bits)[None, :] < np.arange(bits + 1)[:, None], 1.0, -1.0)[::-1]
    query_labels, database_labels = np.array([1]), np.array([1, 0, 1, 1, 0, 0, 1])
    for top_k in (None, 1, 3, 7):
        by_index = average_precisions(query_codes, database_codes, query_labels, database_labels, top_k=top_k)
        expected = average_precisions(query_codes, database_codes, query_labels, database_labels, top_k=top_k,
                                      ties="expected")
        np.testing.assert_allclose(expected, by_index, rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------------------------------
# Both modes


@pytest.mark.parametrize("ties", TIE_MODES)
def test_a_query_without_relevant_items_scores_zero_and_counts_in_the_mean(ties):
    rng = np.random.default_rng(4)
    query_codes, database_codes = random_codes(rng, 3, 12), random_codes(rng, 20, 12)
    query_labels, database_labels = np.array([0, 7, 1]), rng.integers(0, 2, 20)
    aps = average_precisions(query_codes, database_codes, query_labels, database_labels, ties=ties)
    assert aps[1] == 0.0 and aps[0] > 0 and aps[2] > 0
    assert mean_average_precision(query_codes, database_codes, query_labels, database_labels,
                                  ties=ties) == pytest.approx(aps.sum() / 3, abs=1e-15)


@pytest.mark.parametrize("ties", TIE_MODES)
def test_a_relevant_item_beyond_top_k_gives_zero(ties):
    query_codes = np.ones((1, 12))
    database_codes = np.stack([-np.ones(12), np.ones(12)])  # the relevant item 0 ranks second
    aps = average_precisions(query_codes, database_codes, [0], [0, 1], top_k=1, ties=ties)
    assert aps.tolist() == [0.0]


@pytest.mark.parametrize("ties", TIE_MODES)
def test_a_single_database_item(ties):
    query_codes, database_codes = np.array([[1, -1, 1], [-1, -1, 1]]), np.array([[1, 1, 1]])
    for top_k in (None, 1, 5):
        aps = average_precisions(query_codes, database_codes, [3, 4], [3], top_k=top_k, ties=ties)
        assert aps.tolist() == [1.0, 0.0]


@pytest.mark.parametrize("ties", TIE_MODES)
def test_results_do_not_depend_on_chunking_or_query_order(ties):
    rng = np.random.default_rng(5)
    query_codes, query_labels, database_codes, database_labels = clustered_problem(rng, 40, 500, 24)
    reference = average_precisions(query_codes, database_codes, query_labels, database_labels, top_k=50, ties=ties)
    for chunk in (1, 3, 64):
        aps = average_precisions(query_codes, database_codes, query_labels, database_labels, top_k=50, ties=ties,
                                 queries_per_chunk=chunk)
        np.testing.assert_array_equal(aps, reference)
    shuffle = rng.permutation(40)
    aps = average_precisions(query_codes[shuffle], database_codes, query_labels[shuffle], database_labels,
                             top_k=50, ties=ties)
    np.testing.assert_array_equal(aps, reference[shuffle])


def test_one_hot_labels_give_the_same_values_as_class_ids():
    rng = np.random.default_rng(6)
    query_codes, query_labels, database_codes, database_labels = clustered_problem(rng, 30, 400, 48)
    for ties in TIE_MODES:
        by_id = average_precisions(query_codes, database_codes, query_labels, database_labels, ties=ties)
        by_row = average_precisions(query_codes, database_codes, np.eye(5)[query_labels], np.eye(5)[database_labels],
                                    ties=ties)
        np.testing.assert_array_equal(by_row, by_id)


@pytest.mark.parametrize("bits", [1, 12, 48, 64, 65, 200])
def test_hamming_distances_count_differing_bits(bits):
    rng = np.random.default_rng(bits)
    query_codes, database_codes = random_codes(rng, 5, bits, np.int8), random_codes(rng, 70, bits, np.int8)
    distances = hamming_distances(query_codes, database_codes)
    assert distances.shape == (5, 70) and np.issubdtype(distances.dtype, np.integer)
    np.testing.assert_array_equal(distances, reference_distances(query_codes, database_codes))


# ----------------------------------------------------------------------------------------------------
# Invalid input


def call_with(**changes):
    arguments = dict(query_codes=np.ones((2, 4)), database_codes=-np.ones((3, 4)), query_labels=[0, 1],
                     database_labels=[1, 1, 0])
    arguments.update(changes)
    return mean_average_precision(**arguments)


@pytest.mark.parametrize("changes, message", [
    (dict(database_codes=np.ones((3, 5))), "4 bits but database codes have 5"),
    (dict(query_codes=np.array([[1, -1, 0, 1], [1, 1, 1, 1]])), r"only -1 and \+1.*found 0 at \(0, 2\)"),
    (dict(database_codes=np.full((3, 4), 2.0)), r"only -1 and \+1"),
    (dict(query_codes=np.array([[1, -1, np.nan, 1], [1, 1, 1, 1]])), r"only -1 and \+1.*nan"),
    (dict(query_codes=np.ones(4)), "2-D array"),
    (dict(database_codes=np.ones((0, 4))), "at least one item"),
    (dict(query_codes=np.array([["1", "-1", "1", "1"]] * 2)), "numeric"),
    (dict(query_labels=[0, 1, 1]), "query_labels has 3 rows but there are 2 codes"),
    (dict(database_labels=[0, 1]), "database_labels has 2 rows but there are 3 codes"),
    (dict(query_labels=np.eye(2)), "both be class ids"),
    (dict(query_labels=np.eye(2), database_labels=np.ones((3, 3))), "same width"),
    (dict(query_labels=np.array([[0, 2], [1, 0]]), database_labels=np.ones((3, 2))), "only 0 and 1"),
    (dict(query_labels=[0.0, 1.0]), "must be integers"),
    (dict(ties="random"), "ties must be one of"),
    (dict(top_k=0), "top_k must be a positive integer"),
    (dict(top_k=2.5), "top_k must be a positive integer"),
    (dict(top_k=True), "top_k must be a positive integer"),
    (dict(queries_per_chunk=0), "queries_per_chunk must be a positive integer"),
])
def test_invalid_input_is_rejected_with_a_clear_message(changes, message):
    with pytest.raises(UserInputError, match=message):
        call_with(**changes)


def test_hamming_distances_reject_mismatched_bits():
    with pytest.raises(UserInputError, match="12 bits but database codes have 48"):
        hamming_distances(np.ones((1, 12)), np.ones((1, 48)))


# ----------------------------------------------------------------------------------------------------
# The popcount: numpy's ufunc (numpy >= 2.0) or the table (numpy 1.x, Paddle 2.6's environment)


def test_the_popcount_is_chosen_by_feature(monkeypatch):
    import importlib

    from greedyhash_common.metric import hamming_map

    try:
        if hasattr(np, "bitwise_count"):
            assert hamming_map.popcount is np.bitwise_count
            monkeypatch.delattr(np, "bitwise_count")
        importlib.reload(hamming_map)
        assert hamming_map.popcount.__name__ == "popcount_by_table"
    finally:
        monkeypatch.undo()
        importlib.reload(hamming_map)


def test_the_table_popcount_counts_every_bit():
    from greedyhash_common.metric.hamming_map import popcount_by_table

    rng = np.random.default_rng(7)
    words = np.concatenate([np.array([0, 1, 2 ** 63, 2 ** 64 - 1, 0x5555555555555555], np.uint64),
                            np.uint64(1) << np.arange(64, dtype=np.uint64),
                            rng.integers(0, 2 ** 64 - 1, 4931, dtype=np.uint64, endpoint=True)])  # 5,000 in all
    expected = np.array([bin(int(word)).count("1") for word in words], np.uint8)
    counts = popcount_by_table(words)
    assert counts.dtype == np.uint8
    np.testing.assert_array_equal(counts, expected)
    out = np.empty((5, 1000), np.uint8)
    assert popcount_by_table(words.reshape(out.shape), out=out) is out
    np.testing.assert_array_equal(out.reshape(-1), expected)
    if hasattr(np, "bitwise_count"):
        np.testing.assert_array_equal(counts, np.bitwise_count(words))


@pytest.mark.parametrize("bits", [12, 48, 130])
def test_both_popcounts_give_identical_distances_and_map(bits, monkeypatch):
    """What this environment uses (np.bitwise_count on numpy 2.x) against the table numpy 1.x uses."""
    from greedyhash_common.metric import hamming_map

    rng = np.random.default_rng([bits, 11])
    problem = clustered_problem(rng, 70, 3000, bits)
    query_codes, query_labels, database_codes, database_labels = problem
    arguments = (query_codes, database_codes, query_labels, database_labels)

    def results():
        return (hamming_distances(query_codes, database_codes),
                *(average_precisions(*arguments, top_k=top_k, ties=ties)
                  for ties in TIE_MODES for top_k in (None, 100)))

    default = results()
    monkeypatch.setattr(hamming_map, "popcount", hamming_map.popcount_by_table)
    forced = results()
    for first, second in zip(default, forced):
        np.testing.assert_array_equal(first, second)
    assert mean_average_precision(*arguments) == float(np.mean(default[1]))


def test_the_popcount_benchmark_times_every_path_and_restores_the_choice():
    from benchmarks.map_speed import measure_popcount_paths, popcount_markdown_table
    from greedyhash_common.metric import hamming_map

    chosen = hamming_map.popcount
    results = measure_popcount_paths((12, 48), num_queries=30, num_database=500, repeats=1)
    assert hamming_map.popcount is chosen
    expected_paths = {"table"} | ({"np.bitwise_count"} if hasattr(np, "bitwise_count") else set())
    assert all(set(row["paths"]) == expected_paths and row["identical_map"] for row in results)
    assert "| 48 | 30 x 500 |" in popcount_markdown_table(results)
