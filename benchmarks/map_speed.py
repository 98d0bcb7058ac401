"""Speed of greedyhash_common.metric.hamming_map against the references' per-query mAP loop, on CIFAR-10-sized
random codes: python -m benchmarks.map_speed prints a markdown table.

python -m benchmarks.map_speed --popcount-paths times hamming_map with each popcount this numpy has
(np.bitwise_count from numpy 2.0; the table, which numpy 1.x gets) on the same codes, and checks that
they give the same mAP."""
import statistics
import time
import tracemalloc

import numpy as np

from greedyhash_common.infra.errors import OneLineArgumentParser
from greedyhash_common.metric import hamming_map
from greedyhash_common.metric.hamming_map import mean_average_precision

NUM_CLASSES = 10
FLIP_PROBABILITY = 0.2  # per bit, away from the class's centre code
WARM_UP_QUERIES = 20


def classic_loop_map(query_codes, database_codes, query_labels, database_labels):
    """mAP by the loop of the references (ssppp/GreedyHash cal_map.calculate_map), labels one-hot rows.
    The one change is a stable argsort, which breaks ties by database index like hamming_map's default
    mode; the references' default argsort orders ties in an implementation-dependent way."""
    num_queries = len(query_codes)
    total = 0.0
    for query in range(num_queries):
        relevant = (np.dot(query_labels[query], database_labels.T) > 0).astype(np.float32)
        num_relevant = int(np.sum(relevant))
        if num_relevant == 0:
            continue
        distances = 0.5 * (database_codes.shape[1] - np.dot(query_codes[query], database_codes.T))
        relevant = relevant[np.argsort(distances, kind="stable")]
        hits = np.linspace(1, num_relevant, num_relevant)
        ranks = np.flatnonzero(relevant == 1) + 1.0
        total += np.mean(hits / ranks)
    return total / num_queries


def clustered_codes(rng, num_items, bits, centres):
    """Sign codes (float32, as a model's sign outputs) near their class's centre, and one-hot labels."""
    classes = rng.integers(0, len(centres), num_items)
    flips = rng.random((num_items, bits)) < FLIP_PROBABILITY
    codes = np.where(flips, -centres[classes], centres[classes]).astype(np.float32)
    return codes, np.eye(len(centres), dtype=np.float32)[classes]


def measure_map_speed(bits_list=(12, 24, 32, 48), num_queries=1000, num_database=59000, repeats=3, seed=0):
    """One dict of figures per bit length: seconds of both methods (median, min, max of `repeats` runs
    after a warm-up), speed-up of the medians, |difference| of the two mAPs, peak memory of the fast
    path."""
    results = []
    for bits in bits_list:
        rng = np.random.default_rng([seed, bits])
        centres = rng.choice([-1.0, 1.0], size=(NUM_CLASSES, bits))
        problem = (*clustered_codes(rng, num_queries, bits, centres),
                   *clustered_codes(rng, num_database, bits, centres))
        query_codes, query_labels, database_codes, database_labels = problem
        arguments = (query_codes, database_codes, query_labels, database_labels)
        warm_up = (query_codes[:WARM_UP_QUERIES], database_codes, query_labels[:WARM_UP_QUERIES], database_labels)

        classic_map, classic_seconds = _timed(classic_loop_map, arguments, warm_up, repeats)
        fast_map, fast_seconds = _timed(mean_average_precision, arguments, warm_up, repeats)
        results.append({
            "bits": bits,
            "queries": num_queries,
            "database": num_database,
            "map": fast_map,
            "classic_seconds": statistics.median(classic_seconds),
            "classic_min_seconds": min(classic_seconds),
            "classic_max_seconds": max(classic_seconds),
            "fast_seconds": statistics.median(fast_seconds),
            "fast_min_seconds": min(fast_seconds),
            "fast_max_seconds": max(fast_seconds),
            "speed_up": statistics.median(classic_seconds) / statistics.median(fast_seconds),
            "map_difference": abs(fast_map - classic_map),
            "fast_peak_mb": _peak_megabytes(mean_average_precision, arguments),
        })
    return results


def _timed(function, arguments, warm_up, repeats):
    """(value, [seconds of each of `repeats` runs]) after one run on the warm-up arguments."""
    function(*warm_up)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        value = function(*arguments)
        seconds.append(time.perf_counter() - start)
    return value, seconds


def _peak_megabytes(function, arguments):
    """Peak memory allocated during one call, as tracemalloc sees it (numpy reports its arrays)."""
    tracemalloc.start()
    try:
        function(*arguments)
        return tracemalloc.get_traced_memory()[1] / 2 ** 20
    finally:
        tracemalloc.stop()


def markdown_table(results):
    lines = [
        "| bits | queries x database | mAP | classic s: median (min-max) | fast s: median (min-max) "
        "| speed-up | abs(mAP difference) | fast peak memory MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results:
        lines.append(
            f"| {row['bits']} | {row['queries']} x {row['database']} | {row['map']:.4f} "
            f"| {row['classic_seconds']:.2f} ({row['classic_min_seconds']:.2f}-{row['classic_max_seconds']:.2f}) "
            f"| {row['fast_seconds']:.3f} ({row['fast_min_seconds']:.3f}-{row['fast_max_seconds']:.3f}) "
            f"| {row['speed_up']:.1f}x | {row['map_difference']:.1e} | {row['fast_peak_mb']:.0f} |")
    return "\n".join(lines)


def measure_popcount_paths(bits_list=(12, 24, 32, 48), num_queries=1000, num_database=59000, repeats=3, seed=0):
    """One dict per bit length: seconds of mean_average_precision (median, min, max of `repeats` runs after
    a warm-up) with each popcount available here, and whether every path gave the same mAP."""
    paths = {"table": hamming_map.popcount_by_table}
    if hasattr(np, "bitwise_count"):
        paths = {"np.bitwise_count": np.bitwise_count, **paths}
    chosen = hamming_map.popcount
    results = []
    try:
        for bits in bits_list:
            rng = np.random.default_rng([seed, bits])
            centres = rng.choice([-1.0, 1.0], size=(NUM_CLASSES, bits))
            query_codes, query_labels, database_codes, database_labels = (
                *clustered_codes(rng, num_queries, bits, centres), *clustered_codes(rng, num_database, bits, centres))
            arguments = (query_codes, database_codes, query_labels, database_labels)
            warm_up = (query_codes[:WARM_UP_QUERIES], database_codes, query_labels[:WARM_UP_QUERIES], database_labels)
            row = {"bits": bits, "queries": num_queries, "database": num_database, "paths": {}}
            for name, function in paths.items():
                hamming_map.popcount = function
                value, seconds = _timed(mean_average_precision, arguments, warm_up, repeats)
                row["paths"][name] = {"map": value, "seconds": statistics.median(seconds),
                                      "min_seconds": min(seconds), "max_seconds": max(seconds)}
            row["identical_map"] = len({path["map"] for path in row["paths"].values()}) == 1
            results.append(row)
    finally:
        hamming_map.popcount = chosen
    return results


def popcount_markdown_table(results):
    names = list(results[0]["paths"])
    lines = [f"numpy {np.__version__}; hamming_map uses {hamming_map.popcount.__name__} here", "",
             "| bits | queries x database | " + " | ".join(f"{name} s: median (min-max)" for name in names)
             + " | same mAP |", "|---:|---:|" + "---:|" * len(names) + ":---:|"]
    for row in results:
        cells = [f"{path['seconds']:.3f} ({path['min_seconds']:.3f}-{path['max_seconds']:.3f})"
                 for path in row["paths"].values()]
        lines.append(f"| {row['bits']} | {row['queries']} x {row['database']} | " + " | ".join(cells)
                     + f" | {'yes' if row['identical_map'] else 'NO'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = OneLineArgumentParser(prog="python -m benchmarks.map_speed", description=__doc__)
    parser.add_argument("--popcount-paths", action="store_true", help="time each popcount path instead")
    parser.add_argument("--bits", default="12,24,32,48")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    bits = tuple(int(value) for value in args.bits.split(","))
    if args.popcount_paths:
        print(popcount_markdown_table(measure_popcount_paths(bits, repeats=args.repeats)))
    else:
        print(markdown_table(measure_map_speed(bits, repeats=args.repeats)))
