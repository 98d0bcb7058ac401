"""The training application both frameworks run: the command-line options and their checks, the training
configuration, the files a run writes and reads, the training loop's framework-free parts, and prediction."""
