"""The mutation operators by name: what each changes, through which seam of the Paddle side, and the
coverage criterion (alignment/coverage.py) without which it cannot differ from what it replaces.

Framework-free, so the suite's own process knows the operators (it checks --operators before any
work); alignment/pairs/greedyhash/mutants/operators.py implements each on the Paddle side. The seams:

- model: a layer of the built model is replaced, or its parameters changed, after the weights are
  loaded; layers are found by their Paddle class, so these operators apply to any Paddle model.
- loss: the side's loss (and the training step's, paddle_impl/train_step.py) computes the total with
  one term's sign flipped or its weight changed.
- optimizer: the side's optimizer builder is called with another momentum or weight decay, makes a
  Nesterov optimizer, or hands out a schedule shifted by one epoch.
"""
import dataclasses

MODEL, LOSS, OPTIMIZER = "model", "loss", "optimizer"


@dataclasses.dataclass(frozen=True)
class OperatorSpec:
    name: str
    seam: str
    description: str
    needs: str = None  # a survivor of this operator is explained when no case met this criterion at its layer


CATALOG = (
    OperatorSpec("relu->leaky_relu", MODEL, "a ReLU replaced by LeakyReLU(0.01)", "inputs of both signs"),
    OperatorSpec("relu->relu6", MODEL, "a ReLU replaced by ReLU6", "inputs beyond 6"),
    OperatorSpec("relu->gelu", MODEL, "a ReLU replaced by GELU"),
    OperatorSpec("max_pool->avg_pool", MODEL, "a max-pool replaced by an average pool of the same windows",
                 "windows with distinct values"),
    OperatorSpec("avg_pool->max_pool", MODEL, "an average pool replaced by a max-pool of the same windows"),
    OperatorSpec("max_pool.ceil_mode", MODEL, "a max-pool's ceil_mode flipped", "a window cut by the border"),
    OperatorSpec("adaptive_avg->adaptive_max", MODEL, "an adaptive average pool replaced by an adaptive max-pool",
                 "windows of more than one element"),
    OperatorSpec("adaptive_max->adaptive_avg", MODEL, "an adaptive max-pool replaced by an adaptive average pool",
                 "windows of more than one element"),
    OperatorSpec("dropout.mode", MODEL, "a dropout's scaling mode switched (upscale_in_train <-> downscale_in_infer)",
                 "units both kept and dropped"),
    OperatorSpec("dropout.p=1-p", MODEL, "a dropout given the keep probability as its rate (p -> 1 - p)",
                 "units both kept and dropped"),
    OperatorSpec("dropout.removed", MODEL, "a dropout left out", "units both kept and dropped"),
    OperatorSpec("bias.zeroed", MODEL, "a Conv or Linear bias zeroed (not loaded)"),
    OperatorSpec("linear.untransposed", MODEL, "a square Linear weight loaded without transposing"),
    OperatorSpec("conv.padding+1", MODEL, "a convolution's padding one larger"),
    OperatorSpec("conv.padding-1", MODEL, "a convolution's padding one smaller"),
    OperatorSpec("conv.stride+1", MODEL, "a convolution's stride one larger"),
    OperatorSpec("norm.epsilon*100", MODEL, "a normalization's epsilon 100 times larger"),
    OperatorSpec("batch_norm.momentum=1-m", MODEL, "a BatchNorm momentum copied across conventions (m -> 1 - m)"),
    OperatorSpec("loss.term_sign", LOSS, "a loss term's sign flipped in the total"),
    OperatorSpec("loss.term_weight*10", LOSS, "a loss term's weight ten times larger in the total"),
    OperatorSpec("optimizer.momentum", OPTIMIZER, "momentum halfway to 1 (0.9 -> 0.95)"),
    OperatorSpec("optimizer.nesterov", OPTIMIZER, "Nesterov momentum switched on"),
    OperatorSpec("optimizer.weight_decay=0", OPTIMIZER, "the L2 weight decay left out"),
    OperatorSpec("schedule.one_epoch_early", OPTIMIZER, "the learning-rate schedule one epoch ahead"),
    OperatorSpec("schedule.one_epoch_late", OPTIMIZER, "the learning-rate schedule one epoch behind"),
)
NAMES = tuple(spec.name for spec in CATALOG)
