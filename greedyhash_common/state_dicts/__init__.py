"""State dicts (name -> numpy array) without a framework: the one key map between torch and Paddle, what a
checkpoint holds and the check of its keys and shapes, and Paddle's .pdparams files. The model packages load
weights with it, the converter converts with it."""
