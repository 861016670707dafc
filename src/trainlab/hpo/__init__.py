"""§2 Gradient-based hyperparameter optimization: hypergradients through training."""

__all__: list[str] = []
