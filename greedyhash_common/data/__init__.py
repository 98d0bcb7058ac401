"""The data both frameworks read: CIFAR-10 and its built-in synthetic stand-in, the query / train / database
split, the training batch order, and the batch-at-a-time loaders."""
