"""The names of the weight sets every pair has (each pair's adapter makes its own, and may add sets of its
own: GreedyHash's `rescaled`, alignment/pairs/greedyhash/weight_sets.py):

- `seeded`: the framework's seeded initialization (with what it leaves constant drawn, where a pair
  says so);
- `user`: the checkpoint given with --weights.
"""
SEEDED, USER = "seeded", "user"
