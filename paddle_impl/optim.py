"""The references' optimizer and schedule on Paddle: Momentum with coupled L2, StepDecay per epoch.

paddle.optimizer.SGD has no momentum; Momentum(weight_decay=float) adds weight_decay * param to the
gradient before the momentum update, exactly as torch's SGD(weight_decay=...) does.
"""
import paddle

from greedyhash_common.hyperparameters import (LEARNING_RATE, LR_DECAY_EVERY_EPOCHS, LR_DECAY_FACTOR, MOMENTUM,
                                               WEIGHT_DECAY)


def build_optimizer(model, lr=LEARNING_RATE, decay_every=LR_DECAY_EVERY_EPOCHS, momentum=MOMENTUM,
                    weight_decay=WEIGHT_DECAY):
    """(optimizer, scheduler); call scheduler.step() once per epoch."""
    scheduler = paddle.optimizer.lr.StepDecay(learning_rate=lr, step_size=decay_every, gamma=LR_DECAY_FACTOR)
    optimizer = paddle.optimizer.Momentum(learning_rate=scheduler, momentum=momentum,
                                          parameters=model.parameters(), weight_decay=weight_decay)
    return optimizer, scheduler


def current_lr(optimizer, scheduler):
    return optimizer.get_lr()
