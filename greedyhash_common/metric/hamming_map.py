"""Hamming-ranking mean average precision (mAP), the retrieval metric of GreedyHash: exact and fast.

Definitions
-----------
Codes are sign codes: arrays (items, bits) of -1 and +1, in any numeric dtype. The Hamming distance
of a query q to a database item r is 0.5 * (bits - q . r), the number of bits where they differ.
Labels are class ids (1-D integers) or one-hot / multi-hot rows (2-D, 0/1); a database item is
relevant to a query when they share at least one label.

For one query the database is ranked by distance. With r_k the 1-based rank of the k-th relevant
item, AP is the mean of k / r_k over the relevant items; with `top_k`, over the relevant items among
the first top_k ranks. A query with no relevant item (in the top_k) has AP 0 and still counts in
mAP, the mean of AP over all queries, as in DeepHash-pytorch's CalcTopMap and GreedyHash's
calculate_map / calculate_top_map.

Ties
----
Distances take only bits + 1 values, so each query ties with thousands of database items, and AP
depends on the order inside a tie. Two well-defined orders are offered:

ties="index" (default): ties are broken by database index, ascending; this is the ranking a stable
    sort gives, e.g. np.argsort(distances, kind="stable"). The result does not depend on any sort
    implementation.
ties="expected": the average of AP over all orders inside every tie group, in closed form
    (McSherry & Najork, "Computing information retrieval performance measures efficiently in the
    presence of tied scores", ECIR 2008). For a tie group of n items, r of them relevant, that
    follows N items of which R are relevant, position p of the group (1..n) holds a relevant item
    with probability r / n, and then the relevant items up to it number on average
    R + 1 + (p - 1)(r - 1)/(n - 1); summing (those items) / (N + p) over p gives the group's expected
    share of AP's numerator, (r/n) [n b + (R + 1 - b (N + 1)) (H(N + n) - H(N))] with
    b = (r - 1)/(n - 1) and H the harmonic numbers.
    With top_k, the value is the exact expectation, over those same orders, of the top_k-truncated
    AP. Only the tie group straddling the cut-off needs care, since the number of relevant items
    retrieved, AP's denominator, depends on its order: if m of its n items fall inside the top_k,
    the count x of relevant items among those m follows the hypergeometric law (n, r, m), and given
    x the retrieved part behaves as a group of m items, x relevant. So the expected AP is
        sum over x of P(x) * (S + share(N, R, m, x)) / (R + x),
    where S is the expected share of the groups wholly inside the top_k and a 0 / 0 term counts 0.

The references (ssppp/GreedyHash cal_map.py, hatimwen/paddle_greedyhash utils/tools.py) rank with
np.argsort(hamm) and numpy's default kind, which is not stable: the order inside a tie, hence their
mAP from about the fifth decimal on (4e-5 apart from "index" on 200 x 59,000 random clustered codes),
depends on the numpy version and on the CPU's SIMD sort. "index" is their value under a stable sort;
"expected" is what a uniformly random order inside ties gives on average.

Method
------
Per-distance counts alone cannot give the "index" value: where a tie group's relevant items sit
inside it depends on how they interleave with the group's other items by index (two items at one
distance give AP 1 or 1/2 as the relevant one comes first or second). So no sort of the database,
but per-item counting: the rank of database item j for a query is 1 plus the number of items that
come before it: those at a smaller distance, and those at the same distance with a smaller index.
For a chunk of queries the distances are popcounts of XORed bit-packed codes; from their bit planes
come, for every distance value v and every 64-item word w, the bit mask of the word's items at
distance v. Counting those masks cumulatively in (v, w) order gives, for each (v, w), the number of
items that rank no later than the last item of that mask; an item's rank is that count minus the
items at its distance later in its own word. Only the relevant items' ranks are read, in ranking
order (a counting argsort of their distances), so they come out sorted, r_1 < r_2 < ..., and AP is
the mean of k / r_k. The counts stop at the chunk's farthest relevant item. Work and memory grow with
queries_per_chunk * database size (the peak memory at the default chunk for 59,000 items:
docs/performance.md, mAP).
The expected mode needs only per-distance counts (histograms) of all and of the relevant items.

Exactness: every count is an integer, so "index" equals a stable-sort loop up to the rounding of the
final means (|difference| about 1e-16 on 1,000 x 59,000 x 48 bits). "expected" sums differences of
float64 harmonic numbers; it agrees with direct summation to about 1e-15 at that size.
"""
import math

import numpy as np

from ..infra.errors import UserInputError

TIE_MODES = ("index", "expected")
DEFAULT_QUERIES_PER_CHUNK = 32

_WORD_BITS = 64
# packbits(bitorder="little") read as little-endian words puts column c at bit c % 64 of word c // 64.
_WORD = np.dtype("<u8")
_ALL_BITS = np.uint64(np.iinfo(np.uint64).max)

# Set bits of every 16-bit value, for the popcount below when numpy has no np.bitwise_count (before 2.0).
_HALFWORD_POPCOUNT = np.array([bin(value).count("1") for value in range(1 << 16)], np.uint8)
_BYTE_SUM = np.uint32(0x01010101)  # times four byte-sized counts: their sum in the top byte


def popcount_by_table(words, out=None):
    """The number of set bits of each 64-bit word, as uint8 (into `out` when given): the same values
    as np.bitwise_count, on any numpy. Each word's four 16-bit halves are looked up in a 64 KB table
    of popcounts; the four counts (at most 16 each) land in one uint32, and a multiplication by
    0x01010101 sums them into its top byte."""
    words = np.ascontiguousarray(words, _WORD)
    counts = np.take(_HALFWORD_POPCOUNT, words.view(np.uint16)).view(np.uint32).reshape(words.shape)
    total = (counts * _BYTE_SUM) >> np.uint32(24)
    if out is None:
        return total.astype(np.uint8)
    np.copyto(out, total, casting="unsafe")
    return out


# Chosen by feature, not by version string: numpy >= 2.0 has the ufunc (a hardware popcount per word);
# older numpy (1.26, which Paddle 2.6's GPU build needs) gets the table.
popcount = getattr(np, "bitwise_count", None) or popcount_by_table


def mean_average_precision(query_codes, database_codes, query_labels, database_labels,
                           top_k=None, ties="index", queries_per_chunk=DEFAULT_QUERIES_PER_CHUNK):
    """mAP of Hamming ranking: the mean over queries of `average_precisions`."""
    return float(np.mean(average_precisions(query_codes, database_codes, query_labels, database_labels,
                                            top_k, ties, queries_per_chunk)))


def average_precisions(query_codes, database_codes, query_labels, database_labels,
                       top_k=None, ties="index", queries_per_chunk=DEFAULT_QUERIES_PER_CHUNK):
    """AP of every query (float64, in query order); see the module docstring for the definitions."""
    _check_tie_mode(ties)
    chunk_size = _positive_integer(queries_per_chunk, "queries_per_chunk")
    query_words, database_words, bits = _packed_code_pair(query_codes, database_codes)
    relevance = _Relevance(query_labels, database_labels, len(query_words), len(database_words))
    cutoff = _cutoff(top_k, len(database_words))

    distances = _ChunkDistances(database_words, bits, chunk_size)
    if ties == "index":
        scorer = _IndexTieScorer(chunk_size, len(database_words), bits, cutoff)
    else:
        scorer = _ExpectedTieScorer(len(database_words), bits, cutoff)

    precisions = np.zeros(len(query_words))
    # Queries with the same labels share their relevant items; grouping them lets one list serve all.
    order = np.argsort(relevance.group_of_query, kind="stable")
    for start in range(0, len(order), chunk_size):
        chunk = order[start:start + chunk_size]
        groups = relevance.group_of_query[chunk]
        runs = [(rows, relevance.relevant_items(groups[rows.start])) for rows in _runs_of_equal_values(groups)]
        run_precisions = scorer.average_precisions(distances.compute(query_words[chunk]), runs)
        for (rows, _), values in zip(runs, run_precisions):
            precisions[chunk[rows]] = values
    return precisions


def hamming_distances(query_codes, database_codes):
    """Hamming distances (queries, database items) as int32: 0.5 * (bits - q . r)."""
    query_words, database_words, bits = _packed_code_pair(query_codes, database_codes)
    distances = _ChunkDistances(database_words, bits, DEFAULT_QUERIES_PER_CHUNK)
    result = np.empty((len(query_words), len(database_words)), np.int32)
    for start in range(0, len(query_words), DEFAULT_QUERIES_PER_CHUNK):
        rows = slice(start, start + DEFAULT_QUERIES_PER_CHUNK)
        result[rows] = distances.compute(query_words[rows])
    return result


# ----------------------------------------------------------------------------------------------------
# Input checks


def _check_tie_mode(ties):
    if not isinstance(ties, str) or ties not in TIE_MODES:
        raise UserInputError(f"ties must be one of {TIE_MODES}, got {ties!r}")


def _positive_integer(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise UserInputError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _cutoff(top_k, num_database):
    """The number of ranks that count: top_k, or the whole database when top_k is None."""
    if top_k is None:
        return num_database
    return min(_positive_integer(top_k, "top_k"), num_database)


def _packed_code_pair(query_codes, database_codes):
    queries = _checked_codes(query_codes, "query_codes")
    database = _checked_codes(database_codes, "database_codes")
    if queries.shape[1] != database.shape[1]:
        raise UserInputError(f"query codes have {queries.shape[1]} bits but database codes have "
                             f"{database.shape[1]}")
    return _packed_signs(queries), _packed_signs(database), queries.shape[1]


def _checked_codes(codes, name):
    array = np.asarray(codes)
    if array.ndim != 2 or 0 in array.shape:
        raise UserInputError(f"{name} must be a 2-D array (items, bits) with at least one item and one "
                             f"bit, got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise UserInputError(f"{name} must be a numeric array of -1 and +1, got dtype {array.dtype}")
    is_sign = (array == 1) | (array == -1)
    if not is_sign.all():
        position = tuple(int(i) for i in np.argwhere(~is_sign)[0])
        raise UserInputError(f"{name} must hold only -1 and +1 (sign codes), found {array[position].item()!r} "
                             f"at {position}")
    return array


def _packed_signs(codes):
    """Codes as rows of 64-bit words, bit set where the code is +1 (zero padding past the last bit)."""
    packed = np.packbits(codes > 0, axis=1, bitorder="little")
    num_words = -(-codes.shape[1] // _WORD_BITS)
    words = np.zeros((len(codes), num_words * _WORD.itemsize), np.uint8)
    words[:, :packed.shape[1]] = packed
    return words.view(_WORD)


class _Relevance:
    """Which database items are relevant to which query: those sharing at least one label."""

    def __init__(self, query_labels, database_labels, num_queries, num_database):
        queries = _checked_labels(query_labels, "query_labels", num_queries)
        database = _checked_labels(database_labels, "database_labels", num_database)
        if queries.ndim != database.ndim or queries.shape[1:] != database.shape[1:]:
            raise UserInputError(f"query_labels {queries.shape} and database_labels {database.shape} "
                                 f"must both be class ids (1-D) or both label rows with the same width")
        if queries.ndim == 2:
            queries, database = queries != 0, database != 0
        self._group_labels, group_of_query = np.unique(queries, axis=0, return_inverse=True)
        self.group_of_query = group_of_query.reshape(-1)
        self._database = database

    def relevant_items(self, group):
        """Database indices, ascending, of the items relevant to the queries of `group`."""
        labels = self._group_labels[group]
        if self._database.ndim == 1:
            return np.flatnonzero(self._database == labels)
        return np.flatnonzero(self._database[:, labels].any(axis=1))


def _checked_labels(labels, name, expected_rows):
    array = np.asarray(labels)
    if array.ndim not in (1, 2):
        raise UserInputError(f"{name} must be class ids (1-D) or one-/multi-hot rows (2-D), got shape "
                             f"{array.shape}")
    if len(array) != expected_rows:
        raise UserInputError(f"{name} has {len(array)} rows but there are {expected_rows} codes")
    if array.ndim == 1 and not np.issubdtype(array.dtype, np.integer):
        raise UserInputError(f"{name} as class ids must be integers, got dtype {array.dtype}")
    if array.ndim == 2 and not ((array == 0) | (array == 1)).all():
        raise UserInputError(f"{name} as label rows must hold only 0 and 1")
    return array


def _runs_of_equal_values(values):
    """Slices covering the runs of equal consecutive values."""
    edges = [0, *(np.flatnonzero(values[1:] != values[:-1]) + 1), len(values)]
    return [slice(start, stop) for start, stop in zip(edges[:-1], edges[1:])]


# ----------------------------------------------------------------------------------------------------
# Distances


class _ChunkDistances:
    """Hamming distances from a chunk of queries to every database item, as popcount(q XOR r) summed
    over the codes' words, one query at a time so that the XORed words stay in cache until counted.
    The output buffer is reused across chunks: allocating an array this large for every chunk costs
    more in page faults than the arithmetic does."""

    def __init__(self, database_words, bits, capacity):
        self._database_words = np.ascontiguousarray(database_words.T)
        self._distances = np.empty((capacity, len(database_words)), np.min_scalar_type(bits))
        self._xor = np.empty(len(database_words), _WORD)
        self._word_distances = np.empty(len(database_words), np.uint8)

    def compute(self, query_words):
        """Distances (len(query_words), database items); valid until the next call."""
        distances = self._distances[:len(query_words)]
        for query, row in zip(query_words, distances):
            for word, database_word in enumerate(self._database_words):
                xor = np.bitwise_xor(query[word], database_word, out=self._xor)
                if word == 0:
                    popcount(xor, out=row)
                else:
                    row += popcount(xor, out=self._word_distances)
        return distances


# ----------------------------------------------------------------------------------------------------
# ties="index"


class _IndexTieScorer:
    """AP with ties broken by database index."""

    def __init__(self, capacity, num_database, bits, cutoff):
        self._ranks = _StableRanks(capacity, num_database, bits)
        self._cutoff = cutoff

    def average_precisions(self, distances, runs):
        """AP of the chunk's queries, one array per run (rows, relevant database items)."""
        relevant_distances = [distances[rows][:, items] for rows, items in runs]
        # Items farther than every relevant item never rank before one, so the counts can stop there.
        farthest = max((int(values.max()) for values in relevant_distances if values.size), default=0)
        self._ranks.load(distances, farthest)
        return [self._from_sorted_ranks(self._ranks.ranks(rows, items, values))
                for (rows, items), values in zip(runs, relevant_distances)]

    def _from_sorted_ranks(self, ranks):
        # Sorted, the relevant items' ranks are r_1 < r_2 < ...: the k-th is the k-th relevant retrieved.
        precisions = np.arange(1, ranks.shape[1] + 1) / ranks
        retrieved = ranks <= self._cutoff
        hits = retrieved.sum(axis=1)
        total = np.sum(precisions, axis=1, where=retrieved)
        return np.divide(total, hits, out=np.zeros(len(hits)), where=hits > 0)


class _StableRanks:
    """1-based ranks of database items when each query of a chunk orders the database by distance,
    ties by index (a stable sort), computed by counting instead of sorting.

    With W words of 64 items, `masks[v, q, w]` marks the items of word w at distance v from query q,
    and `upto[v, q, w]` counts the items ranked no later than the last item of that mask: every item at
    a smaller distance, and those at distance v in words 0..w. An item's rank is that count minus the
    items at its distance later in its own word.
    """

    def __init__(self, capacity, num_items, bits):
        self._num_words = -(-num_items // _WORD_BITS)
        plane_count = bits.bit_length()
        # A distance splits into a low and a high bit field; its mask is the AND of the two fields' masks,
        # which costs far fewer operations than one mask per distance built from all the planes.
        self._low_plane_count = (plane_count + 1) // 2
        words = (capacity, self._num_words)

        self._plane_scratch = np.empty((capacity, num_items), np.min_scalar_type(bits))
        # [plane, 1] marks items whose distance has that bit set, [plane, 0] the others.
        self._planes = np.zeros((plane_count, 2, *words), _WORD)
        self._low_masks = np.empty((1 << self._low_plane_count, *words), _WORD)
        self._high_masks = np.empty(((bits >> self._low_plane_count) + 1, *words), _WORD)
        # Flat, so that the first (values, rows, words) of them form one contiguous table per chunk.
        table_size = (bits + 1) * capacity * self._num_words
        self._mask_buffer = np.empty(table_size, _WORD)
        self._count_buffer = np.empty(table_size, np.uint8)
        self._upto_buffer = np.empty(table_size, np.int32)

        columns = np.arange(num_items)
        self._word_of_item = columns // _WORD_BITS
        self._later_in_word = ~((np.uint64(2) << (columns % _WORD_BITS).astype(np.uint64)) - np.uint64(1))
        last_word_size = num_items - (self._num_words - 1) * _WORD_BITS
        self._in_last_word = _ALL_BITS >> np.uint64(_WORD_BITS - last_word_size)
        self._masks = self._upto = None

    def load(self, distances, max_value):
        """Count a chunk's distances (rows, items) up to `max_value`; ranks() then reads the counts."""
        rows = len(distances)
        table_shape = (max_value + 1, rows, self._num_words)
        table_size = math.prod(table_shape)
        self._masks = masks = self._mask_buffer[:table_size].reshape(table_shape)
        counts = self._count_buffer[:table_size].reshape(table_shape)
        self._upto = upto = self._upto_buffer[:table_size].reshape(table_shape)

        self._fill_planes(distances)
        planes = self._planes[:, :, :rows]
        low = self._low_masks[:min(len(self._low_masks), max_value + 1), :rows]
        high = self._high_masks[:(max_value >> self._low_plane_count) + 1, :rows]
        _fill_field_masks(planes[:self._low_plane_count], low)
        _fill_field_masks(planes[self._low_plane_count:], high)
        # Packing pads the last word with zero bits, which would read as items at distance 0.
        low[:, :, -1] &= self._in_last_word

        low_field = (1 << self._low_plane_count) - 1
        for value, (mask, count) in enumerate(zip(masks, counts)):
            np.bitwise_and(high[value >> self._low_plane_count], low[value & low_field], out=mask)
            popcount(mask, out=count)
        np.cumsum(counts, axis=2, dtype=np.int32, out=upto)
        per_value = upto[:, :, -1].copy()
        upto += (np.cumsum(per_value, axis=0) - per_value)[:, :, None]

    def ranks(self, rows, items, values):
        """Ranks of database `items` for the loaded chunk's `rows` (a slice), given their distances
        `values` (rows, items); each row comes back in ascending order."""
        # Visiting each row's items in ranking order makes the table reads below sequential.
        order = np.argsort(values, axis=1, kind="stable")
        row_starts = (np.arange(len(values)) * values.shape[1])[:, None]
        _, loaded_rows, num_words = self._masks.shape
        flat = np.multiply(values.reshape(-1)[order + row_starts], loaded_rows * num_words, dtype=np.intp)
        flat += self._word_of_item[items][order]
        flat += (np.arange(rows.start, rows.stop) * num_words)[:, None]
        later = popcount(self._masks.reshape(-1)[flat] & self._later_in_word[items][order])
        return self._upto.reshape(-1)[flat] - later

    def _fill_planes(self, distances):
        rows = len(distances)
        scratch = self._plane_scratch[:rows]
        for plane, (unset, is_set) in enumerate(self._planes):
            np.bitwise_and(distances, 1 << plane, out=scratch)
            packed = np.packbits(scratch, axis=1, bitorder="little")
            is_set[:rows].view(np.uint8)[:, :packed.shape[1]] = packed
            np.invert(is_set[:rows], out=unset[:rows])


def _fill_field_masks(planes, out):
    """out[u] = the mask of items whose bits in `planes` (lowest first) spell the number u."""
    out[0].fill(_ALL_BITS)
    known = 1  # out[:known] hold the masks for the planes used so far
    for unset, is_set in planes:
        for value in range(min(known, len(out) - known)):
            np.bitwise_and(out[value], is_set, out=out[known + value])
        for value in range(min(known, len(out))):
            out[value] &= unset
        known *= 2


# ----------------------------------------------------------------------------------------------------
# ties="expected"


class _ExpectedTieScorer:
    """AP averaged over all orders inside ties, from per-distance counts."""

    def __init__(self, num_database, bits, cutoff):
        self._num_values = bits + 1
        self._cutoff = cutoff
        self._harmonic = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, num_database + 1))])

    def average_precisions(self, distances, runs):
        """AP of the chunk's queries, one array per run (rows, relevant database items)."""
        items_at = _value_histograms(distances, self._num_values)
        precisions = []
        for rows, relevant_items in runs:
            relevant_at = _value_histograms(distances[rows][:, relevant_items], self._num_values)
            precisions.append(np.array([self._expected_average_precision(items, relevant)
                                        for items, relevant in zip(items_at[rows], relevant_at)]))
        return precisions

    def _expected_average_precision(self, items_at, relevant_at):
        """One query's expected AP from its counts of all and of relevant items at each distance."""
        items_before = np.cumsum(items_at) - items_at
        relevant_before = np.cumsum(relevant_at) - relevant_at
        inside = items_before + items_at <= self._cutoff
        precision_sum = _expected_precision_sum(items_before[inside], relevant_before[inside], items_at[inside],
                                                relevant_at[inside], self._harmonic).sum()
        hits = relevant_at[inside].sum()
        straddling = np.flatnonzero(~inside & (items_before < self._cutoff))
        if straddling.size == 0:
            return precision_sum / hits if hits else 0.0
        group = straddling[0]
        items_ahead, size = items_before[group], items_at[group]
        retrieved = self._cutoff - items_ahead
        relevant_retrieved, probabilities = _hypergeometric(size, relevant_at[group], retrieved)
        precision_sums = precision_sum + _expected_precision_sum(items_ahead, hits, retrieved, relevant_retrieved,
                                                                 self._harmonic)
        all_hits = hits + relevant_retrieved
        averages = np.divide(precision_sums, all_hits, out=np.zeros(len(all_hits)), where=all_hits > 0)
        return float(np.dot(probabilities, averages))


def _value_histograms(distances, num_values):
    """counts[row, v] = the number of entries of `distances` row equal to v."""
    rows = len(distances)
    keys = distances + (np.arange(rows) * num_values)[:, None]
    return np.bincount(keys.reshape(-1), minlength=rows * num_values).reshape(rows, num_values)


def _expected_precision_sum(items_ahead, relevant_ahead, size, relevant, harmonic):
    """E[sum over a tie group's relevant items of (relevant items up to it) / rank], over the group's
    orders: (r/n) [n b + (R + 1 - b (N + 1)) (H(N + n) - H(N))], b = (r - 1)/(n - 1); see the module
    docstring. Arguments broadcast; a group of one item has b = 0, an empty group contributes 0."""
    items_ahead, relevant_ahead, size, relevant = np.broadcast_arrays(items_ahead, relevant_ahead, size,
                                                                      relevant)
    size_f, relevant_f = size.astype(float), relevant.astype(float)
    slope = np.divide(relevant_f - 1, size_f - 1, out=np.zeros(size.shape), where=size > 1)
    harmonic_span = harmonic[items_ahead + size] - harmonic[items_ahead]
    total = size_f * slope + (relevant_ahead + 1 - slope * (items_ahead + 1)) * harmonic_span
    return np.divide(relevant_f * total, size_f, out=np.zeros(size.shape), where=size > 0)


def _hypergeometric(population, successes, draws):
    """(x, P(X = x)) for X the successes among `draws` items drawn without replacement."""
    x = np.arange(max(0, draws - (population - successes)), min(successes, draws) + 1)
    step = x[:-1].astype(float)
    # P(x + 1) / P(x), accumulated in logs: the probabilities themselves can underflow.
    log_ratio = (np.log(successes - step) + np.log(draws - step)
                 - np.log(step + 1) - np.log(population - successes - draws + step + 1))
    log_p = np.concatenate([[0.0], np.cumsum(log_ratio)])
    p = np.exp(log_p - log_p.max())
    return x, p / p.sum()
