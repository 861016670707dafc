"""Claims of trainlab.optim (none registered yet)."""
