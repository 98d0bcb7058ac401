"""The mutation operators by name: what each changes, through which seam of the Paddle side, and the
coverage criterion (alignment/coverage.py) without which it cannot differ from what it replaces.

Framework-free, so the suite's own process knows the operators (it checks --operators before any
work); alignment/mutation/operators.py implements each on the Paddle side. The seams:

- model: a layer of the built model is replaced, or its parameters, settings or mode changed, after the
  weights are loaded; layers are found by their Paddle class, so these operators apply to any Paddle model.
- loss: the side's loss computes the total with one term's sign flipped or its weight changed (the terms
  are the pair's: alignment.mutation.seams).
- optimizer: the side's optimizer builder is called with another momentum or weight decay, makes a
  Nesterov optimizer, or hands out a schedule shifted by one epoch.
- loop: the product's own training loop that the train step drives (a pair that has one: GreedyHash's
  `train_one_epoch`) runs without setting the model's training mode.
"""
import dataclasses

MODEL, LOSS, OPTIMIZER, LOOP = "model", "loss", "optimizer", "loop"


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
    OperatorSpec("relu6->relu", MODEL, "a ReLU6 replaced by ReLU (the clipping left out)", "inputs beyond 6"),
    OperatorSpec("hardswish->swish", MODEL, "a hardswish replaced by swish (x * sigmoid(x))"),
    OperatorSpec("hardsigmoid.slope=0.2", MODEL, "a hardsigmoid with Paddle 1.x's slope 0.2 for 1/6"),
    OperatorSpec("gelu.approximate", MODEL, "a GELU's tanh approximation switched"),
    OperatorSpec("max_pool->avg_pool", MODEL, "a max-pool replaced by an average pool of the same windows",
                 "windows with distinct values"),
    OperatorSpec("avg_pool->max_pool", MODEL, "an average pool replaced by a max-pool of the same windows"),
    OperatorSpec("max_pool.ceil_mode", MODEL, "a max-pool's ceil_mode flipped", "a window cut by the border"),
    OperatorSpec("adaptive_avg->adaptive_max", MODEL, "an adaptive average pool replaced by an adaptive max-pool",
                 "windows of more than one element"),
    OperatorSpec("adaptive_max->adaptive_avg", MODEL, "an adaptive max-pool replaced by an adaptive average pool",
                 "windows of more than one element"),
    OperatorSpec("interpolate.align_corners", MODEL, "an upsampling's align_corners flipped"),
    OperatorSpec("dropout.mode", MODEL, "a dropout's scaling mode switched (upscale_in_train <-> downscale_in_infer)",
                 "units both kept and dropped"),
    OperatorSpec("dropout.p=1-p", MODEL, "a dropout given the keep probability as its rate (p -> 1 - p)",
                 "units both kept and dropped"),
    OperatorSpec("dropout.removed", MODEL, "a dropout left out", "units both kept and dropped"),
    OperatorSpec("mode.eval_when_training", MODEL, "a dropout or BatchNorm left in eval mode when the model trains"),
    OperatorSpec("mode.training_when_eval", MODEL, "a dropout or BatchNorm left in training mode when the model"
                 " evaluates"),
    OperatorSpec("bias.zeroed", MODEL, "a Conv or Linear bias zeroed (not loaded)"),
    OperatorSpec("linear.untransposed", MODEL, "a square Linear weight loaded without transposing"),
    OperatorSpec("weights.float32", MODEL, "a Conv, Linear or norm layer's parameters loaded through float32 (a"
                 " converter or loader that casts)"),
    OperatorSpec("conv.padding+1", MODEL, "a convolution's padding one larger"),
    OperatorSpec("conv.padding-1", MODEL, "a convolution's padding one smaller"),
    OperatorSpec("conv.stride+1", MODEL, "a convolution's stride one larger"),
    OperatorSpec("conv.groups=1", MODEL, "a depthwise convolution made dense, its kernel broadcast over every"
                 " input channel"),
    OperatorSpec("norm.epsilon*100", MODEL, "a normalization's epsilon 100 times larger"),
    OperatorSpec("layer_norm.axes", MODEL, "a LayerNorm normalizing over one trailing axis fewer (over one axis: one"
                 " more, the axis before it)"),
    OperatorSpec("layer_norm.epsilon_outside_sqrt", MODEL, "a LayerNorm adding its epsilon to the standard deviation,"
                 " not to the variance: (x - mean) / (std + eps)"),
    OperatorSpec("batch_norm.momentum=1-m", MODEL, "a BatchNorm momentum copied across conventions (m -> 1 - m)"),
    OperatorSpec("batch_norm.unbiased_variance", MODEL, "a BatchNorm's running variance updated with the unbiased"
                 " estimator (torch's) for the biased one"),
    OperatorSpec("batch_norm.use_global_stats", MODEL, "a BatchNorm normalizing with its running statistics in"
                 " training mode"),
    OperatorSpec("residual.dropped", MODEL, "a residual block's identity path left out of its sum"),
    OperatorSpec("residual.doubled", MODEL, "a residual block's identity path added twice"),
    OperatorSpec("loss.term_sign", LOSS, "a loss term's sign flipped in the total"),
    OperatorSpec("loss.term_weight*10", LOSS, "a loss term's weight ten times larger in the total"),
    OperatorSpec("optimizer.momentum", OPTIMIZER, "momentum halfway to 1 (0.9 -> 0.95)"),
    OperatorSpec("optimizer.nesterov", OPTIMIZER, "Nesterov momentum switched on"),
    OperatorSpec("optimizer.weight_decay=0", OPTIMIZER, "the L2 weight decay left out"),
    OperatorSpec("schedule.one_epoch_early", OPTIMIZER, "the learning-rate schedule one epoch ahead"),
    OperatorSpec("schedule.one_epoch_late", OPTIMIZER, "the learning-rate schedule one epoch behind"),
    OperatorSpec("loop.train_mode_forgotten", LOOP, "the training loop without its model.train()"),
)
NAMES = tuple(spec.name for spec in CATALOG)
