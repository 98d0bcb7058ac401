"""What every part of the project relies on and nothing in it is about GreedyHash: atomic writes, the
bad-input error and exit statuses, safe unpickling, the math library's and the threads' settings."""
