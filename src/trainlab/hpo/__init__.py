"""§2 Gradient-based hyperparameter optimization: hypergradients through training.

- :func:`hypergradient`: d(loss after T steps)/d(lr, per-step schedule, weight decay,
  momentum, Adam's betas) for any ``nn.Module`` problem, in ``reverse``, ``checkpoint``
  (O(√T) memory) or ``forward`` (memory flat in T) mode (:mod:`.hypergrad`, :mod:`.unroll`);
- :class:`LeastSquaresClosedForm`: L_t(η), its derivatives and η* for GD on least squares;
- :func:`tune_lr` (offline, through the unrolled run) and :func:`online_lr` with
  :class:`SGDHD` / :class:`AdamHD` (online hypergradient descent, Baydin et al. 2018);
- memory meters that measure honestly (:mod:`.measure`).

>>> from trainlab.problems import load_problem
>>> p = load_problem("linreg", n=5, d=12, seed=0)
>>> cf = LeastSquaresClosedForm(p.x, p.y)
>>> abs(hypergradient(p, 3, lr=0.05).hypergradient["lr"] - cf.dloss(0.05, 3)) < 1e-12
True
"""

from trainlab.hpo.closed_form import LeastSquaresClosedForm, LossCurves
from trainlab.hpo.hypergrad import MODES, Hypergradient, estimate_memory, hypergradient, hypergradient_of
from trainlab.hpo.measure import CudaPeak, RssPeak, SavedTensorMeter
from trainlab.hpo.online import SGDHD, AdamHD
from trainlab.hpo.tune import GridSearch, LearnedRate, grid_search_lr, online_lr, tune_lr
from trainlab.hpo.unroll import DivergenceError, Unroll

__all__ = [
    "MODES",
    "SGDHD",
    "AdamHD",
    "CudaPeak",
    "DivergenceError",
    "GridSearch",
    "Hypergradient",
    "LearnedRate",
    "LeastSquaresClosedForm",
    "LossCurves",
    "RssPeak",
    "SavedTensorMeter",
    "Unroll",
    "estimate_memory",
    "grid_search_lr",
    "hypergradient",
    "hypergradient_of",
    "online_lr",
    "tune_lr",
]
