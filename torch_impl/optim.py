"""The references' optimizer and schedule on torch: SGD with momentum and coupled L2, StepLR per epoch."""
import torch

from greedyhash_common.hyperparameters import (LEARNING_RATE, LR_DECAY_EVERY_EPOCHS, LR_DECAY_FACTOR, MOMENTUM,
                                               WEIGHT_DECAY)


def build_optimizer(model, lr=LEARNING_RATE, decay_every=LR_DECAY_EVERY_EPOCHS, momentum=MOMENTUM,
                    weight_decay=WEIGHT_DECAY):
    """(optimizer, scheduler); call scheduler.step() once per epoch."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=decay_every, gamma=LR_DECAY_FACTOR)
    return optimizer, scheduler


def current_lr(optimizer, scheduler):
    return optimizer.param_groups[0]["lr"]
