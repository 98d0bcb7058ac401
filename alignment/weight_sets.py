"""The names of the weight sets a run checks a pair at (each pair's adapter makes its own: alignment.pairs).

- `seeded`: the framework's seeded initialization (with what it leaves constant drawn, where a pair
  says so);
- `rescaled`: GreedyHash's seeded weights rescaled to a trained network's value ranges
  (alignment/pairs/greedyhash/weight_sets.py);
- `user`: the checkpoint given with --weights.
"""
SEEDED, RESCALED, USER = "seeded", "rescaled", "user"
