"""trainlab.colourize: the programming assignment's colourization, as a usable tool.

Grey image in, one of K palette colours per pixel out (CLAIMS.md §5):

- :mod:`~trainlab.colourize.data`: ``builtin`` (every colour photograph the dependencies ship,
  as random crops), ``cifar10:PATH``, ``folder:PATH``;
- :mod:`~trainlab.colourize.palette`: seeded k-means palette and nearest-colour labels;
- :mod:`~trainlab.colourize.models`: PoolUpsampleNet, ConvTransposeNet, UNet;
- :mod:`~trainlab.colourize.train`: the course's training protocol, checkpointed and resumable,
  on any device (``auto`` takes a GPU) and precision (fp32, bf16, fp16);
- :mod:`~trainlab.colourize.paired`: paired comparisons over seeds (t-intervals), and many
  seeds of one network trained side by side as one grouped network;
- :mod:`~trainlab.colourize.evaluate`: validation loss/accuracy, baselines, PSNR, colourising;
- :mod:`~trainlab.colourize.claims` and :mod:`~trainlab.colourize.cli`.

>>> from trainlab.colourize import build_model, count_parameters
>>> count_parameters(build_model("unet"))
56856
"""

from trainlab.colourize.data import ColourData, load_data
from trainlab.colourize.evaluate import Evaluation, colourise, evaluate
from trainlab.colourize.models import (
    MODELS,
    ConvTransposeNet,
    PoolUpsampleNet,
    UNet,
    build_model,
    count_parameters,
    stack_models,
    unstack_model,
)
from trainlab.colourize.paired import PairedDifference, paired_difference, train_side_by_side
from trainlab.colourize.palette import Palette, fit_palette
from trainlab.colourize.train import TrainConfig, TrainResult, load_run, train

__all__ = [
    "MODELS",
    "ColourData",
    "ConvTransposeNet",
    "Evaluation",
    "PairedDifference",
    "Palette",
    "PoolUpsampleNet",
    "TrainConfig",
    "TrainResult",
    "UNet",
    "build_model",
    "colourise",
    "count_parameters",
    "evaluate",
    "fit_palette",
    "load_data",
    "load_run",
    "paired_difference",
    "stack_models",
    "train",
    "train_side_by_side",
    "unstack_model",
]
