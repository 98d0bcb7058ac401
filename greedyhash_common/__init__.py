"""Framework-free code that the torch and the Paddle sides share: hyperparameters, the CIFAR-10 (I)
data protocol and batch order, the retrieval metric, and safe file handling. Importing this package
never imports torch or paddle."""
