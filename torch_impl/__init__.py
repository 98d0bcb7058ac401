"""The PyTorch reference implementation of GreedyHash (official code: ssppp/GreedyHash)."""
