"""Midterm: training-loop pitfalls (gradients never cleared, lr too high), sharpness, LR range test."""

__all__: list[str] = []
