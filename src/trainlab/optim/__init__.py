"""trainlab.optim (under construction)."""
