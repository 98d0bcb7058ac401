"""GreedyHash on an AlexNet written to match torchvision's, layer for layer and name for name.

`paddle.vision.models.AlexNet` is not used: its parameter names differ (`_conv1`, `_fc6`...), it has
no adaptive average pool, and its dropout runs in `downscale_in_infer` mode, which does not match
torch's scaling.
"""
import math

import paddle
from paddle import nn
from paddle.nn import functional as F

from greedyhash_common.hyperparameters import DROPOUT_P, FEATURE_DIM, NUM_CLASSES

TORCH_DROPOUT_MODE = "upscale_in_train"


class SignStraightThrough(paddle.autograd.PyLayer):
    """b = sign(h) forward; the gradient passes unchanged backward (GreedyHash's key idea)."""

    @staticmethod
    def forward(ctx, h):
        return paddle.sign(h)

    @staticmethod
    def backward(ctx, grad_b):
        return grad_b


class Conv2D(nn.Conv2D):
    """Paddle's Conv2D with the bias added in a form whose gradient Paddle computes fast, in the dynamic
    graph (training, evaluation, the alignment suite). Paddle's own `conv + bias[1, C, 1, 1]` sums the
    bias's gradient over batch, height and width at once, on a slow path of its CPU kernels; the bias
    expanded to [N, C, 1, 1] first is summed over height and width, then over the batch, several times
    faster, and the same function (docs/performance.md, Training step levers). A static program
    (paddle_impl.static_model) keeps Paddle's own form, which the Paddle Inference predictor fuses into
    the convolution."""

    def forward(self, x):
        if self.bias is None or self._data_format != "NCHW" or not paddle.in_dynamic_mode():
            # Named, not `super()`: Paddle 2.6's dynamic-to-static rewrites this source, and the rewritten
            # function has no class cell for a bare super() to find.
            return nn.Conv2D.forward(self, x)
        unbiased = F.conv2d(x, self.weight, None, self._stride, self._padding, self._dilation, self._groups,
                            self._data_format)
        return unbiased + self.bias.reshape([1, -1, 1, 1]).expand([unbiased.shape[0], -1, 1, 1])


def _torch_default_init(fan_in):
    """torch's default for Conv and Linear, weight and bias alike: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    Paddle's own default (Xavier weights, zero bias) would start training elsewhere."""
    bound = 1.0 / math.sqrt(fan_in)
    return {name: paddle.ParamAttr(initializer=nn.initializer.Uniform(-bound, bound))
            for name in ("weight_attr", "bias_attr")}


def _conv(in_channels, out_channels, kernel_size, **kwargs):
    return Conv2D(in_channels, out_channels, kernel_size, **kwargs,
                  **_torch_default_init(in_channels * kernel_size * kernel_size))


def _linear(in_features, out_features, bias=True):
    init = _torch_default_init(in_features)
    if not bias:
        init["bias_attr"] = False
    return nn.Linear(in_features, out_features, **init)


class AlexNet(nn.Layer):
    """torchvision's AlexNet without the 1000-class layer (its `classifier[:6]`)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            _conv(3, 64, 11, stride=4, padding=2),
            nn.ReLU(),
            nn.MaxPool2D(kernel_size=3, stride=2),
            _conv(64, 192, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2D(kernel_size=3, stride=2),
            _conv(192, 384, 3, padding=1),
            nn.ReLU(),
            _conv(384, 256, 3, padding=1),
            nn.ReLU(),
            _conv(256, 256, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2D(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2D((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=DROPOUT_P, mode=TORCH_DROPOUT_MODE),
            _linear(256 * 6 * 6, FEATURE_DIM),
            nn.ReLU(),
            nn.Dropout(p=DROPOUT_P, mode=TORCH_DROPOUT_MODE),
            _linear(FEATURE_DIM, FEATURE_DIM),
            nn.ReLU(),
        )


class GreedyHash(nn.Layer):
    def __init__(self, bit, num_classes=NUM_CLASSES):
        super().__init__()
        self.alex = AlexNet()
        self.fc_plus = _linear(FEATURE_DIM, bit)
        self.fc = _linear(bit, num_classes, bias=False)

    def forward(self, x):
        """Return (logits, h, b): class scores, the continuous hash layer output, the sign codes."""
        features = self.alex.features(x)
        features = self.alex.avgpool(features)
        h = self.fc_plus(self.alex.classifier(paddle.flatten(features, 1)))
        b = SignStraightThrough.apply(h)
        return self.fc(b), h, b
