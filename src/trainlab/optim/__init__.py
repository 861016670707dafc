"""§1 of the course: which solution does an optimizer find?

Library modules (return data, never print):

* :mod:`.problems`  least-squares problems (batched), worked examples, closed forms
  (minimum-norm w*, M⁻¹-norm solution, ridge, row-space distance, stability bound);
* :mod:`.samplers`  full batch, mini-batches with/without replacement, non-uniform p_i;
* :mod:`.runner`    many runs at once (``run_batch``) and the ``torch.optim`` loop it must equal;
* :mod:`.rates`     exact SGD second moments and the rate bounds of non-uniform sampling;
* :mod:`.compare`   named optimizers, side-by-side comparison, 2-D paths.

``claims`` registers the seven ``optim.*`` claims; ``cli`` is ``trainlab optim …``.
The optimizers themselves live in :mod:`trainlab.functional`.
"""

from trainlab.optim.compare import Comparison, Paths2D, compare_optimizers, trace_paths_2d
from trainlab.optim.problems import (
    LeastSquares,
    min_norm_solution,
    preconditioned_solution,
    random_problems,
    ridge_solution,
    worked_example,
)
from trainlab.optim.runner import Trajectories, run_batch, torch_optim_reference
from trainlab.optim.samplers import FullBatch, MiniBatch, Weighted

__all__ = [
    "Comparison",
    "FullBatch",
    "LeastSquares",
    "MiniBatch",
    "Paths2D",
    "Trajectories",
    "Weighted",
    "compare_optimizers",
    "min_norm_solution",
    "preconditioned_solution",
    "random_problems",
    "ridge_solution",
    "run_batch",
    "torch_optim_reference",
    "trace_paths_2d",
    "worked_example",
]
