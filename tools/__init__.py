"""Scripts that chain the entry points: the quick end-to-end check (lite_chain) and the paper table (reproduce)."""
