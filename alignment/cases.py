"""The cases a run checks each step in: the weight set it starts from and the image size it sees.

A step says what it depends on (`USES` in its module): the weights, the batch's image size, or the
size of the steps that process many images (`bulk`). It is checked once per combination of those of
the run's weight sets and sizes; what a step does not use does not multiply it (the data step has no
weights, the optimizer step no images).

The weight sets and sizes of a run are the pair's by default (WEIGHT_SETS, DEFAULT_SIZES of its adapter:
alignment.pairs).
"""
import dataclasses

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
    weight_sets: tuple
    sizes: tuple
    bulk_size: int = BULK_IMAGE_SIZE
    first_size_only: tuple = ()  # the pair's FIRST_SIZE_ONLY (alignment.pairs.base)

    def _sizes_of(self, weights):
        """Every size, except for a weight set the pair checks at the first size only beside another set."""
        if weights in self.first_size_only and len(self.weight_sets) > 1:
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


def add_case_options(parser):
    """The options that decide a run's cases; the suite passes its own to each side process."""
    parser.add_argument("--weight-sets", help="comma-separated weight sets (alignment/weight_sets.py); default:"
                        " the pair's")
    parser.add_argument("--sizes", help="comma-separated image sizes of the forward, loss, backward and data steps;"
                        " default: the pair's")
    parser.add_argument("--bulk-size", type=int, default=BULK_IMAGE_SIZE,
                        help="image size of the steps that process many images (train, metric, inference)")
    return parser


def run_cases_of(args, pair):
    """The RunCases of parsed options (add_case_options) for the model pair `pair`: its own where none were
    given."""
    weight_sets = args.weight_sets.split(",") if args.weight_sets else pair.WEIGHT_SETS
    sizes = (int(size) for size in args.sizes.split(",")) if args.sizes else pair.DEFAULT_SIZES
    return RunCases(tuple(weight_sets), tuple(sizes), args.bulk_size, pair.FIRST_SIZE_ONLY)
