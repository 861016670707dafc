"""Claims of CLAIMS.md §1: which solution does an optimizer find?

Setups and metrics follow the acceptance table (shared/optim-acceptance.md); its float
tolerances are replaced by bounds derived from each drawn instance (:mod:`trainlab.tolerance`:
κ(X) times the stopping residual, the rounding of the steps taken), recorded beside every
measurement. The random instances come from ``--seed`` (seed 0: the table's instances).
Every run is float64, from w₀ = 0 unless said otherwise, on J(w) = (1/2n)‖Xw − t‖²
(:mod:`trainlab.optim.problems`), and stops when ‖Xw − t‖/‖t‖ ≤ 1e-10. Each claim
cross-checks the vectorised runner against ``torch.optim`` on some of its runs. One module
per claim family, each claim declared with ``@claim`` beside its run function; importing
this package registers the seven claims in report order: gd, sgd, momentum (min_norm),
adaptive, preconditioned, nonuniform-sampling, weight-decay.
"""

from __future__ import annotations

# isort: off
# Report order, not alphabetical: importing a module registers its claims.
from trainlab.optim.claims import min_norm  # noqa: F401  gd, sgd, momentum
from trainlab.optim.claims import adaptive  # noqa: F401
from trainlab.optim.claims import preconditioned  # noqa: F401
from trainlab.optim.claims import sampling  # noqa: F401
from trainlab.optim.claims import weight_decay  # noqa: F401

# isort: on
from trainlab.optim.claims.adaptive import COURSE_RMSPROP_STEPS, course_rmsprop_steps, wilson_construction

__all__ = ["COURSE_RMSPROP_STEPS", "course_rmsprop_steps", "wilson_construction"]
