"""§4 Trading off resources: noise scale, batch-size sweeps, critical batch size, model size."""

__all__: list[str] = []
