"""The retrieval metric: Hamming-ranking mean average precision."""
