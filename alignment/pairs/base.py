"""ModelPair: what the suite knows about one torch model and its Paddle port, every default declared here
once. A pair is a subclass that overrides what is its own (alignment.pairs lists the pairs; the walk-through
is docs/adding-a-model-pair.md); the suite resolves it once, at a process's entry, and passes the object.
"""
import abc
import inspect

import numpy as np

from greedyhash_common.infra.content_cache import arrays_digest, file_digest
from greedyhash_common.infra.errors import UserInputError

from ..dropout_masks import DropoutMaskSchedule
from ..weight_sets import RESCALED, SEEDED, USER, below_float32

# torchvision's classification reference trains with SGD, momentum 0.9, coupled L2 1e-4, and the rate 0.1
# divided by 10 every 30 of 90 epochs
REFERENCE_OPTIMIZER = {"lr": 0.1, "decay_every": 30, "momentum": 0.9, "weight_decay": 1e-4}
# The seeded set's BatchNorm parameters and statistics, each drawn uniformly from (low, high), so that eval
# and training mode normalize differently and the affine parameters are not the identity. Narrow enough
# that 50 of them in a row keep the eval-mode logits below Paddle's cross-entropy cap
# (docs/adding-a-model-pair.md).
BATCH_NORM_DRAWS = {"weight": (0.5, 1.5), "bias": (-0.2, 0.2), "running_mean": (-0.2, 0.2), "running_var": (0.5, 2.0)}
NO_CODE_LENGTH = 0  # the bit length of a pair without codes: its processes get --bit 0, its files name none


class ModelPair(abc.ABC):
    NAME = None  # its name in --model and the report
    STEPS = ("forward", "loss", "backward", "optim", "train")  # the suite's (alignment.steps) and its own
    OWN_STEPS = {}  # {name: step module} of steps no other pair has
    OUTPUTS = ("logits",)  # what the model returns, in order
    WEIGHT_SETS = (SEEDED,)  # the first is the default
    # Sets the pair makes when asked for (--weight-sets), beyond its own: the rescaled set the suite proposes
    # (alignment/pairs/rescaling.py), for a pair whose seeded activations never reach what a port may get wrong
    PROPOSED_WEIGHT_SETS = (RESCALED,)
    DEFAULT_SIZES = (64, 61)  # even maps, and odd ones whose last windows the border cuts
    # weight sets checked at the run's first size only when another set runs too (alignment.cases)
    FIRST_SIZE_ONLY = ()
    SMALLEST_IMAGE_SIZE = 1  # below it the model's maps are empty
    BITS = ()  # the code lengths --bit takes; none: the pair has no codes and its files name no bit length
    BATCH_SIZE = 4
    BACKWARD_MODES = ("eval", "train")  # train: BatchNorm normalizes with the batch's statistics
    FLOAT64_ONLY_TRAIN_WEIGHT_SETS = ()  # where only float64 separates a defect from rounding in training
    CODE_OUTPUTS = {}  # {sign code output: continuous output}, compared exactly
    CODE_LAYER = None  # the layer whose output the codes are the sign of (alignment.coverage)
    CODE_BREAKPOINT = None  # |code| where the pair's loss changes branch: coverage wants values on both sides
    INVARIANTS = {}  # {step: ((key, key), ...)} equal inside each side's own file
    TOLERANCES = {}  # {dtype: {step: [(key pattern, Tolerance)]}}, read before alignment.tolerances' table
    OPTIMIZER = REFERENCE_OPTIMIZER
    EPOCHS = 90
    # The train step's rate: at the recipe's 0.1, float64 rounding in ResNet-18's last BatchNorms (16 values a
    # channel at 64 px) grows about tenfold an update, past the 1e-10 limit within 3 updates for a port that
    # computes the same function (docs/adding-a-model-pair.md, Choices).
    TRAIN_LEARNING_RATE = 1e-3
    BATCH_NORM_DRAWS = BATCH_NORM_DRAWS
    DROPOUT_MASK_P = 0.5  # the share of units each injected dropout mask drops, whatever the layer's rate
    # mutation_score(workdir) -> (score line, report file) or None, for a pair whose checks are scored against
    # generated port defects (GreedyHash's); None: the report has no mutation score section
    mutation_score = None

    @property
    def WEIGHTS_MADE_ON(self):
        """{weight set: image size of the batch it is made from}: the proposed rescaled set, at the first size."""
        return {RESCALED: self.DEFAULT_SIZES[0]}

    def weight_set_names(self):
        """Every weight set a run of the pair may ask for: its own, those proposed to it, the user's."""
        return tuple(dict.fromkeys((*self.WEIGHT_SETS, *self.PROPOSED_WEIGHT_SETS, USER)))

    @abc.abstractmethod
    def build(self, framework):
        """The untrained model of "torch" or "paddle"; import the framework here, not at module level."""

    def layout(self, state=None, framework=None):
        """The converter's Layout (greedyhash_common.state_dicts.layout) of a checkpoint of the pair: inferred
        from the two built models' trees (alignment.pairs.inferred_layout), in a process that holds both
        frameworks; a pair whose Paddle side runs without torch writes its own."""
        from .inferred_layout import layout_of_models

        return layout_of_models(self.build("torch"), self.build("paddle"), self.NAME)

    def key_map(self):
        """{torch key: Paddle key} of every parameter and running statistic."""
        return self.layout().key_map

    def code_length(self, bit):
        """The run's bit length from --bit (None: not given); a pair without codes takes none."""
        if bit not in (None, NO_CODE_LENGTH):
            raise UserInputError(f"--bit {bit}: the {self.NAME} pair has no hash codes, so no code length")
        return NO_CODE_LENGTH

    def check_image_size(self, size, option):
        if not isinstance(size, int) or isinstance(size, bool) or size < self.SMALLEST_IMAGE_SIZE:
            raise UserInputError(f"{option} {size}: the model needs images of at least {self.SMALLEST_IMAGE_SIZE} px")
        return size

    def write_own_inputs(self, data, workdir):
        """Files of the pair's own that its sides read, written once in a run's inputs/ (GreedyHash's split)."""

    def side(self, framework):
        from ..sides.generic_side import make_side

        return make_side(self, framework)

    def loss(self, framework):
        if framework == "torch":
            import torch.nn.functional as functional
        else:
            import paddle.nn.functional as functional
        return functional.cross_entropy

    def loss_terms(self, side, outputs, labels):
        """{"loss_total": ..., other terms}: the loss step compares each, the backward step differentiates the
        total."""
        return {"loss_total": side.loss(outputs["logits"], labels)}

    def optimizer(self, framework):
        """(builder, current rate): the project's SGD with momentum and coupled L2, the rate decayed by 10 per
        step of the schedule, with this pair's coefficients (OPTIMIZER)."""
        if framework == "torch":
            from torch_impl.optim import build_optimizer, current_lr
        else:
            from paddle_impl.optim import build_optimizer, current_lr
        return build_optimizer, current_lr

    def learning_rate_at(self, epoch):
        return self.OPTIMIZER["lr"] * 0.1 ** (epoch // self.OPTIMIZER["decay_every"])

    def train_learning_rate(self, weight_set):
        return self.TRAIN_LEARNING_RATE

    def inject_randomness(self, side, model, seed):
        """Make training mode the same on both sides: every dropout layer's masks drawn from one numpy schedule
        (alignment.dropout_masks), each layer keeping its own rate's scaling and, in Paddle, its mode."""
        side.inject_masks(model, DropoutMaskSchedule(seed, self.DROPOUT_MASK_P))

    def mutant_seams(self):
        """Where the mutation operators of the loss and the training loop install (alignment.mutation.seams):
        one loss value, the suite's own training iterations."""
        from ..mutation.seams import Seams

        return Seams()

    def backward_extras(self, side, outputs, terms):
        """The backward step's values of the pair's own (GreedyHash's straight-through sign)."""
        return {}

    def train_values(self, side, context):
        """The train step's values: optimizer updates in training mode (alignment.steps.train)."""
        from ..steps.train import iterations_values

        return iterations_values(side, context)

    def input_batch(self, data, count, sizes):
        """({size: NCHW float64 images}, int64 labels): the first images of each class of CIFAR-10."""
        from ..inputs import cifar10_batch

        return cifar10_batch(data, count, sizes)

    def weights_made_from(self, seed):
        """What the pair's made weight sets follow from beyond the project's code and the torch and torchvision
        versions (alignment.prepare_weights' key): nothing for a pair of this project (alignment/pairs: in the
        key's code); for an adapter of the user's, its module's source and the seeded state of its torch model
        (which may be defined in another of the user's modules)."""
        if type(self).__module__.startswith(f"{__package__}."):
            return None
        source = inspect.getsourcefile(type(self))
        return {"adapter": source and file_digest(source), "seeded_state": arrays_digest(self.seeded_state(seed))}

    def make_weight_set(self, bit, seed, workdir, weight_set, source=None):
        """(torch process) One weight set in both layouts: the user's checkpoint (`source`, either framework's,
        converted strictly through the layout), or the seeded set: the torch model's initialization from
        `seed`, with every BatchNorm's parameters and statistics drawn from BATCH_NORM_DRAWS (at 1, 0, 0, 1 a
        port that ignored them in eval mode would agree), or the rescaled set proposed to the pair (that model
        rescaled on the batch: alignment/pairs/rescaling.py); made sets in float64 below float32's precision
        (alignment.weight_sets.below_float32)."""
        from greedyhash_common.state_dicts.paddle_files import write_paddle_state
        from torch_impl.torch_files import write_torch_state
        from weights_convert.checkpoints import both_layouts
        from weights_convert.convert import torch_to_paddle

        from ..paths import weight_set_files

        torch_file, paddle_file = weight_set_files(workdir, bit, weight_set)
        if weight_set == USER:
            state, paddle_state, _ = both_layouts(source, self.layout())
        else:
            made = self.seeded_state(seed) if weight_set == SEEDED else self.rescaled_state(seed, workdir)
            state = below_float32(made, seed)
            paddle_state = torch_to_paddle(state, torch_file, self.layout())[0]
        write_torch_state(state, torch_file)
        write_paddle_state(paddle_state, paddle_file)

    def convert_weight_set(self, bit, workdir, weight_set):
        """(torch process) The .pdparams of one weight set, converted from its .pth strictly through the layout."""
        from greedyhash_common.state_dicts.paddle_files import write_paddle_state
        from weights_convert.checkpoints import both_layouts

        from ..paths import weight_set_files

        torch_file, paddle_file = weight_set_files(workdir, bit, weight_set)
        write_paddle_state(both_layouts(torch_file, self.layout())[1], paddle_file)

    def rescaled_state(self, seed, workdir):
        """The seeded state rescaled on the run's batch at WEIGHTS_MADE_ON's size (alignment/pairs/rescaling.py)."""
        from ..paths import images_path
        from .rescaling import proposed_rescaled_state

        images = np.load(images_path(workdir, self.WEIGHTS_MADE_ON[RESCALED]), allow_pickle=False)
        return proposed_rescaled_state(self.build("torch"), self.seeded_state(seed), images)

    def seeded_state(self, seed):
        import torch

        torch.manual_seed(seed)
        model = self.build("torch")
        batch_norms = {name for name, module in model.named_modules()
                       if isinstance(module, torch.nn.modules.batchnorm._BatchNorm)}
        generator = np.random.default_rng(seed)
        state = {key: value.detach().numpy().copy() for key, value in model.state_dict().items()}
        for key, value in state.items():
            module, _, name = key.rpartition(".")
            if module in batch_norms and name in self.BATCH_NORM_DRAWS:
                low, high = self.BATCH_NORM_DRAWS[name]
                state[key] = generator.uniform(low, high, value.shape).astype(value.dtype)
        return state
