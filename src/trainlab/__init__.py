"""trainlab: the theory of neural-network training, executable.

Each part of the course is a subpackage (``trainlab.convnets``, ``trainlab.optim``, ...)
with library code, a ``claims`` module registering that part's claims, and a ``cli``
module with its sub-commands. ``trainlab verify`` runs the claims and writes a report.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("trainlab")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
