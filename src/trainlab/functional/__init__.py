"""Differentiable optimizers as pure functions: ``init(params)``, ``update(grads, state, params)``.

Built from small transforms (:mod:`.transforms`) chained into the usual optimizers
(:mod:`.optimizers`), each equal to its ``torch.optim`` counterpart step for step.
Out of place throughout, so a whole training run can be differentiated.
"""

from trainlab.functional.optimizers import (
    adagrad,
    adam,
    adamw,
    course_rmsprop,
    preconditioned_sgd,
    rmsprop,
    sgd,
)
from trainlab.functional.transforms import (
    GradientTransformation,
    Hyperparameter,
    Schedule,
    add_decayed_weights,
    apply_updates,
    chain,
    exponential_decay,
    inverse_time_decay,
    scale_by_adagrad,
    scale_by_adam,
    scale_by_diagonal,
    scale_by_learning_rate,
    scale_by_rms,
    trace,
)
from trainlab.functional.tree import Tree, tree_leaves, tree_map

__all__ = [
    "GradientTransformation",
    "Hyperparameter",
    "Schedule",
    "Tree",
    "adagrad",
    "adam",
    "adamw",
    "add_decayed_weights",
    "apply_updates",
    "chain",
    "course_rmsprop",
    "exponential_decay",
    "inverse_time_decay",
    "preconditioned_sgd",
    "rmsprop",
    "scale_by_adagrad",
    "scale_by_adam",
    "scale_by_diagonal",
    "scale_by_learning_rate",
    "scale_by_rms",
    "sgd",
    "trace",
    "tree_leaves",
    "tree_map",
]
