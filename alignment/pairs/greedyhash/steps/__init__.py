"""GreedyHash's own alignment steps (its OWN_STEPS): its product's data loaders, its Hamming-ranking mAP,
and its deployed encoder. The suite's steps every pair runs are in alignment/steps/."""
