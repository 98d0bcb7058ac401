"""The cases a run checks each step in: the weight set it starts from and the image size it sees.

A step says what it depends on (`USES` in its module): the weights, the batch's image size, or the
size of the steps that process many images (`bulk`). It is checked once per combination of those of
the run's weight sets and sizes; what a step does not use does not multiply it (the data step has no
weights, the optimizer step no images).

Default sizes: 224, the reference's input, and 222, where every layer computes a non-trivial function:
at 224 the last feature map is 6x6 and at 64 it is 1x1, so the adaptive average pool is an identity
or a copy, and any pooling a port puts there agrees; at 222 it pools a 5x5 map into 6x6 through
overlapping windows of two. And at 224 (or 256, 64) every max-pool's windows tile its input exactly,
so a max-pool with ceil_mode agrees; at 222 each of the three ends in a window cut by the border.
(Sizes that do all of this: 219-222, 283-286, ...; 222 is the cheapest above 200.)
"""
import dataclasses

from .weight_sets import DEFAULT_WEIGHT_SETS, SEEDED

REFERENCE_SIZE = 224
DEFAULT_SIZES = (REFERENCE_SIZE, 222)
# The metric, inference and train steps process many images: at 224 px each takes minutes on a 2-core
# CPU, so they run at 64 px unless asked otherwise.
BULK_IMAGE_SIZE = 64
WEIGHTS, SIZE, BULK = "weights", "size", "bulk"


@dataclasses.dataclass(frozen=True)
class Case:
    weights: str = None  # a weight set of alignment.weight_sets, or None: the step uses no weights
    size: int = None  # the image size, or None: the step uses no images

    @property
    def label(self):
        return "-".join(part for part in (self.weights, self.size and f"{self.size}px") if part)

    @classmethod
    def from_label(cls, label):
        weights, size = None, None
        for part in label.split("-"):
            if part.endswith("px") and part[:-2].isdigit():
                size = int(part[:-2])
            else:
                weights = part
        return cls(weights, size)


@dataclasses.dataclass(frozen=True)
class RunCases:
    """The run's weight sets and sizes, from which every step's cases follow."""
    weight_sets: tuple = DEFAULT_WEIGHT_SETS
    sizes: tuple = DEFAULT_SIZES
    bulk_size: int = BULK_IMAGE_SIZE

    def _sizes_of(self, weights):
        """Every size, except for the seeded weights beside another set: at the sizes after the first they
        add nothing the other sets do not (the size changes only the adaptive pool's input, which the
        rescaled set exercises over a wider range)."""
        if weights == SEEDED and len(self.weight_sets) > 1:
            return self.sizes[:1]
        return self.sizes

    def of(self, uses):
        """The cases of a step that uses `uses` (a subset of WEIGHTS, SIZE, BULK), in run order."""
        weight_sets = self.weight_sets if WEIGHTS in uses else (None,)
        cases = []
        for weights in weight_sets:
            if SIZE in uses:
                sizes = self._sizes_of(weights) if weights else self.sizes
            else:
                sizes = (self.bulk_size,) if BULK in uses else (None,)
            cases += [Case(weights, size) for size in sizes]
        return cases


def add_case_options(parser, weight_sets=DEFAULT_WEIGHT_SETS, sizes=DEFAULT_SIZES):
    """The options that decide a run's cases; the suite passes its own to each side process. Defaults of
    None: the model pair's (alignment.suite.with_pair_defaults)."""
    parser.add_argument("--weight-sets", default=weight_sets and ",".join(weight_sets),
                        help="comma-separated weight sets (alignment/weight_sets.py)")
    parser.add_argument("--sizes", default=sizes and ",".join(map(str, sizes)),
                        help="comma-separated image sizes of the forward, loss, backward and data steps")
    parser.add_argument("--bulk-size", type=int, default=BULK_IMAGE_SIZE,
                        help="image size of the steps that process many images (train, metric, inference)")
    return parser


def run_cases_of(args):
    return RunCases(tuple(args.weight_sets.split(",")), tuple(int(size) for size in args.sizes.split(",")),
                    args.bulk_size)
