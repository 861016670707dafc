"""Problems: parameters, a loss of (parameters, batch), the data and a batch sampler.

Shared by hpo, scaling and loops (DESIGN.md, "Problems"). Commands name one with
``--problem``:

- ``linreg``: a random overparameterised least-squares problem from the seed
  (``n`` examples, ``d`` > n parameters, X and t standard normal), the course's loss
  J(w) = (1/n)‖Xw − t‖², starting at w₀ = 0, float64;
- ``linreg:PATH.npz``: the user's arrays ``X`` (n×d) and ``t`` (n), same loss and start;
- ``digits-mlp``: scikit-learn's digits (ships with it; 1,797 8×8 images, inputs scaled
  to [0, 1]), an MLP 64-64-10 with tanh, cross-entropy; 80/20 train/valid split by seed;
- a MODULE reference (``package.module:factory(args)`` or ``path/file.py:factory(args)``,
  as for the accountant) with ``data`` = ``digits`` or a PATH.npz holding ``x`` and ``y``
  and ``loss`` = ``mse`` or ``cross-entropy``.

Every problem is an ``nn.Module`` plus data, so the loss is a pure function of a
parameter dict through :func:`torch.func.functional_call`; buffers (BatchNorm
statistics) are carried along and returned by :meth:`Problem.loss_and_buffers`.

>>> p = load_problem("linreg", n=4, d=10, seed=0)
>>> float(p.loss(p.params(), p.x, p.y)) == float(p.y.pow(2).mean())  # J(0) = ‖t‖²/n
True
"""

from __future__ import annotations

import copy
import math
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from trainlab.errors import ArgumentError, DataError, raised_by_trainlab
from trainlab.memory import require_memory
from trainlab.seeding import generator

__all__ = [
    "LOSSES",
    "PROBLEMS",
    "LinearModel",
    "Problem",
    "digits_data",
    "digits_mlp",
    "linreg",
    "load_problem",
]

#: The built-in problem names (MODULE references and ``linreg:PATH`` come on top).
PROBLEMS = ("linreg", "digits-mlp")
LOSSES = ("mse", "cross-entropy")
_PROBLEM_FORMS = ("linreg, linreg:PATH.npz (arrays X, t), digits-mlp, or a model factory "
                  "package.module:factory(args) / path/file.py:factory(args)")
_MAX_NPZ_BYTES = 2 * 1024**3


class LinearModel(nn.Module):
    """f(x) = xᵀw with w ∈ R^d starting at 0 (no bias): the course's linear model."""

    def __init__(self, d: int, dtype: torch.dtype = torch.float64):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(d, dtype=dtype))

    def forward(self, x: Tensor) -> Tensor:
        return x @ self.weight  # (B, d) @ (d,) -> (B,)


@dataclass
class Problem:
    """A model at its starting point, a loss, training data and (optionally) held-out data.

    ``loss`` is ``"mse"`` (mean over the batch of the squared error; for the linear model
    that is J(w) = (1/n)‖Xw − t‖²) or ``"cross-entropy"`` (mean over the batch).
    ``stable_lr_bound`` is 2/λ_max of the training loss's Hessian where it is known in
    closed form (linear least squares), else None.
    """

    name: str
    model: nn.Module
    x: Tensor
    y: Tensor
    loss_name: str
    x_valid: Tensor | None = None
    y_valid: Tensor | None = None
    stable_lr_bound: float | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.loss_name not in LOSSES:
            raise ArgumentError("loss", self.loss_name, "one of: " + ", ".join(LOSSES))
        if len(self.x) != len(self.y):
            raise ValueError(f"{len(self.x)} inputs but {len(self.y)} targets")

    @property
    def num_examples(self) -> int:
        return len(self.x)

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    @property
    def dtype(self) -> torch.dtype:
        return next(iter(self.model.parameters())).dtype

    def params(self) -> dict[str, Tensor]:
        """Fresh detached copies of the starting parameters (name -> tensor)."""
        return {k: v.detach().clone() for k, v in self.model.named_parameters()}

    def buffers(self) -> dict[str, Tensor]:
        return {k: v.detach().clone() for k, v in self.model.named_buffers()}

    def fresh_model(self) -> nn.Module:
        """A deep copy of the model at its starting point (the problem's own is never trained)."""
        return copy.deepcopy(self.model)

    def criterion(self, out: Tensor, y: Tensor, reduction: str = "mean") -> Tensor:
        if self.loss_name == "cross-entropy":
            return nn.functional.cross_entropy(out, y, reduction=reduction)
        err = (out - y.reshape(out.shape)).pow(2)
        if reduction == "none":
            return err.reshape(len(err), -1).sum(-1)
        per_example = err.reshape(len(err), -1).sum(-1)
        return per_example.mean() if reduction == "mean" else per_example.sum()

    def loss_and_buffers(self, params: Mapping[str, Tensor], x: Tensor, y: Tensor,
                         buffers: Mapping[str, Tensor] | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Mean loss on (x, y) at ``params``, and the buffers after the forward pass.

        Buffers are copied in, so the caller's (and the model's) stay as they were; in train
        mode BatchNorm updates the copies, which are returned as the new state.
        """
        state = {k: v.clone() for k, v in (self.buffers() if buffers is None else buffers).items()}
        out = torch.func.functional_call(self.model, {**params, **state}, (x,))
        return self.criterion(out, y), state

    def loss(self, params: Mapping[str, Tensor], x: Tensor, y: Tensor,
             buffers: Mapping[str, Tensor] | None = None) -> Tensor:
        """Mean loss on (x, y) at ``params`` (a pure function of ``params``)."""
        return self.loss_and_buffers(params, x, y, buffers)[0]

    def per_example_loss(self, params: Mapping[str, Tensor], x: Tensor, y: Tensor,
                         buffers: Mapping[str, Tensor] | None = None) -> Tensor:
        """Loss of each example: (B,)."""
        state = dict(self.buffers() if buffers is None else buffers)
        out = torch.func.functional_call(self.model, {**params, **state}, (x,))
        return self.criterion(out, y, reduction="none")

    def sample_batch(self, batch_size: int, gen: torch.Generator) -> tuple[Tensor, Tensor]:
        """``batch_size`` training examples drawn without replacement (the whole set if larger)."""
        if batch_size < 1:
            raise ArgumentError("batch_size", batch_size, "a positive integer")
        if batch_size >= self.num_examples:
            return self.x, self.y
        idx = torch.randperm(self.num_examples, generator=gen)[:batch_size]
        return self.x[idx], self.y[idx]


def linreg(n: int = 20, d: int = 100, seed: int = 0, X: Tensor | None = None, t: Tensor | None = None,
           name: str = "linreg") -> Problem:
    """The course's least squares, J(w) = (1/n)‖Xw − t‖², w₀ = 0, float64.

    With ``X``/``t`` given they are used as they are; otherwise X (n×d) and t (n) are drawn
    standard normal from ``seed`` (X first, then t).
    """
    if X is None or t is None:
        if not isinstance(n, int) or n < 1:
            raise ArgumentError("n", n, "a positive number of examples")
        if not isinstance(d, int) or d < 1:
            raise ArgumentError("d", d, "a positive number of parameters")
        g = generator(seed)
        X = torch.randn(n, d, generator=g, dtype=torch.float64)
        t = torch.randn(n, generator=g, dtype=torch.float64)
    X, t = X.to(torch.float64), t.to(torch.float64)
    n, d = X.shape
    # Hessian of J is (2/n) XᵀX; GD on J is stable only for η < 2/λ_max = n/σ_max(X)².
    sigma = float(torch.linalg.matrix_norm(X, ord=2))
    lam = 2.0 / n * sigma * sigma  # a float product overflows to inf (``**`` would raise)
    if not math.isfinite(lam):
        raise DataError(f"{name}: X is too large (its largest singular value {sigma:.3g} squared "
                        "overflows float64); rescale X")
    return Problem(name, LinearModel(d), X, t, "mse",
                   stable_lr_bound=2.0 / lam if lam > 0 else None,
                   info={"n": n, "d": d, "lambda_max": lam})


def digits_data(seed: int = 0, valid_fraction: float = 0.2,
                dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """scikit-learn's digits, inputs in [0, 1]: (x_train, y_train, x_valid, y_valid), split by ``seed``."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.as_tensor(data.data / 16.0, dtype=dtype)  # (1797, 64)
    y = torch.as_tensor(data.target, dtype=torch.long)
    perm = torch.randperm(len(x), generator=generator(seed, "digits-split"))
    n_valid = int(round(valid_fraction * len(x)))
    va, tr = perm[:n_valid], perm[n_valid:]
    return x[tr], y[tr], x[va], y[va]


def digits_mlp(seed: int = 0, width: int = 64, dtype: torch.dtype = torch.float32) -> Problem:
    """MLP 64-``width``-10 (tanh, smooth so finite differences and Hessians behave) on digits."""
    x, y, xv, yv = digits_data(seed, dtype=dtype)
    g = generator(seed, "digits-mlp-init")
    model = nn.Sequential(nn.Linear(64, width), nn.Tanh(), nn.Linear(width, 10)).to(dtype)
    with torch.no_grad():
        for layer in (model[0], model[2]):  # PyTorch's default: U(±1/√fan_in), from our generator
            bound = layer.in_features ** -0.5
            layer.weight.uniform_(-bound, bound, generator=g)
            layer.bias.uniform_(-bound, bound, generator=g)
    return Problem("digits-mlp", model, x, y, "cross-entropy", xv, yv, info={"width": width})


def _load_npz(path: str, keys: tuple[str, ...], argument: str, value: str) -> dict[str, np.ndarray]:
    if not path.strip():
        raise ArgumentError(argument, value, "a path to an .npz file"
                            + (" after the colon" if value.startswith("linreg:") else ""))
    p = Path(path)
    if p.is_dir():
        raise ArgumentError(argument, value, f"an .npz file ({p} is a folder)")
    if not p.is_file():
        raise ArgumentError(argument, value, f"an existing .npz file ({p} "
                            + ("is not a regular file)" if p.exists() else "does not exist)"))
    try:
        with open(p, "rb") as f:
            magic = f.read(6)
    except OSError as e:
        raise DataError(f"{argument}={value!r} cannot be read ({' '.join(str(e).split())[:200]})") from None
    if magic == b"\x93NUMPY":  # np.load would return one bare array
        raise DataError(f"{argument}={value!r} is a single-array .npy file; expected an .npz archive with "
                        f"arrays {', '.join(keys)} (np.savez(path, {', '.join(f'{k}=...' for k in keys)}))")
    if not magic.startswith(b"PK"):  # numpy would try to unpickle it and blame pickled objects
        raise DataError(f"{argument}={value!r} is not an .npz archive (np.savez writes one, with arrays "
                        f"{', '.join(keys)})")
    try:
        with np.load(p, allow_pickle=False) as z:  # never unpickle a user's file
            missing = [k for k in keys if k not in z.files]
            if missing:
                raise DataError(f"{argument}={value!r}: the .npz has arrays {sorted(z.files)}, "
                                f"expected {', '.join(keys)}")
            size = sum(_member_bytes(z, k) for k in keys)  # from the headers: nothing loaded yet
            if size > _MAX_NPZ_BYTES:
                raise DataError(f"{argument}={value!r}: arrays of {size / 1e9:.1f} GB exceed the 2 GB limit")
            return {k: z[k] for k in keys}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        # numpy's message for pickled data advises loading it unsafely: say what is wrong instead
        why = ("it holds pickled objects, which are never loaded" if "pickle" in str(e)
               else " ".join(str(e).split())[:200])
        raise DataError(f"{argument}={value!r} is not a readable .npz file of numeric arrays "
                        f"({why})") from None


def _member_bytes(z: Any, key: str) -> int:
    """Bytes of array ``key`` of an open .npz as its header declares them. A header that declares
    more than the archive member holds (a truncated or tampered file) raises ValueError, before
    numpy would allocate what the header asks for."""
    names = z.zip.namelist()
    info = z.zip.getinfo(f"{key}.npy" if f"{key}.npy" in names else key)
    with z.zip.open(info) as f:
        version = np.lib.format.read_magic(f)
        fmt = np.lib.format
        shape, _, dtype = (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(f)
        declared = math.prod(shape) * dtype.itemsize
        held = info.file_size - f.tell()
    if declared > held:
        raise ValueError(f"array {key} declares {declared} bytes {shape} but the archive holds {held}")
    return declared


def _is_real(a: np.ndarray) -> bool:
    """Real numbers (integers, floats, booleans): complex values would lose their imaginary part."""
    return a.dtype.kind in "biuf"


def _linreg_file(path: str, argument: str, value: str) -> Problem:
    arrays = _load_npz(path, ("X", "t"), argument, value)
    X, t = arrays["X"], arrays["t"]
    if X.ndim != 2 or t.ndim != 1 or len(t) != len(X) or X.size == 0:
        raise DataError(f"{argument}={value!r}: expected X of shape (n, d) and t of shape (n,), "
                        f"got {X.shape} and {t.shape}")
    if not (_is_real(X) and _is_real(t)):
        raise DataError(f"{argument}={value!r}: X and t must be real numbers (got {X.dtype}, {t.dtype})")
    if not (np.isfinite(X).all() and np.isfinite(t).all()):
        raise DataError(f"{argument}={value!r}: X and t must be finite (found NaN or inf)")
    return linreg(X=torch.as_tensor(X, dtype=torch.float64), t=torch.as_tensor(t, dtype=torch.float64),
                  name=f"linreg:{path}")


def _user_data(data: str, loss: str, seed: int, dtype: torch.dtype) -> tuple[Tensor, ...]:
    if data == "digits":
        x, y, xv, yv = digits_data(seed, dtype=dtype)
        if loss == "mse":  # one-hot targets for a regression loss
            y, yv = nn.functional.one_hot(y, 10).to(dtype), nn.functional.one_hot(yv, 10).to(dtype)
        return x, y, xv, yv
    arrays = _load_npz(data, ("x", "y"), "--data", data)
    xarr, yarr = arrays["x"], arrays["y"]
    if xarr.ndim == 0 or yarr.ndim == 0 or not (_is_real(xarr) and _is_real(yarr)):
        raise DataError(f"--data={data!r}: x and y must be arrays of real numbers, one row per example "
                        f"(got {xarr.dtype} {xarr.shape} and {yarr.dtype} {yarr.shape})")
    if not (np.isfinite(xarr).all() and np.isfinite(yarr).all()):
        raise DataError(f"--data={data!r}: x and y must be finite (found NaN or inf)")
    x = torch.as_tensor(xarr, dtype=dtype)
    if len(x) != len(yarr) or len(x) < 2:
        raise DataError(f"--data={data!r}: x and y must have the same (≥ 2) number of rows "
                        f"(got {len(x)} and {len(yarr)})")
    if loss == "cross-entropy":
        if not np.issubdtype(yarr.dtype, np.integer) or yarr.ndim != 1 or yarr.min() < 0:
            raise DataError(f"--data={data!r}: cross-entropy needs y as non-negative integer class labels")
        y = torch.as_tensor(yarr, dtype=torch.long)
    else:
        y = torch.as_tensor(yarr, dtype=dtype)
    perm = torch.randperm(len(x), generator=generator(seed, "data-split"))
    n_valid = max(1, len(x) // 5)
    va, tr = perm[:n_valid], perm[n_valid:]
    return x[tr], y[tr], x[va], y[va]


def load_problem(spec: str, *, n: int = 20, d: int = 100, seed: int = 0, data: str | None = None,
                 loss: str | None = None, argument: str = "--problem") -> Problem:
    """The problem named by ``spec`` (see the module doc); bad names and files raise one-line errors."""
    if spec == "linreg":
        if d <= n:
            raise ArgumentError("--d", d, f"more parameters than examples (d > n = {n}): the course's "
                                "overparameterised setting")
        # X (n×d, float64) is drawn, copied once and read for its spectral norm (an SVD of n×d)
        require_memory("--n/--d", f"{n}x{d}", 4 * 8 * n * d)
        return linreg(n, d, seed)
    if spec.startswith("linreg:"):
        return _linreg_file(spec.split(":", 1)[1], argument, spec)
    if spec == "digits-mlp":
        return digits_mlp(seed)
    from trainlab.loader import is_factory_ref, load_model, parse_factory_ref

    if not is_factory_ref(spec):
        raise ArgumentError(argument, spec, _PROBLEM_FORMS)
    parse_factory_ref(spec, argument)  # a malformed reference is named before a missing --data
    if data is None:
        raise ArgumentError("--data", None, "digits or PATH.npz (arrays x, y) for a model factory")
    loss = loss or "cross-entropy"
    if loss not in LOSSES:
        raise ArgumentError("--loss", loss, "one of: " + ", ".join(LOSSES))
    # The factory initialises its weights from torch's global generator: seeded here from --seed (and
    # put back afterwards), or the same seed would start from other weights in every process.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = load_model(spec, argument)
    params = list(model.parameters())
    if not params:
        raise ArgumentError(argument, spec, "a model with at least one parameter")
    dtype = params[0].dtype
    x, y, xv, yv = _user_data(data, loss, seed, dtype)
    try:
        with torch.no_grad():
            out = model(x[:2])
        if loss == "cross-entropy" and out.dim() >= 2:  # every label, before the loss meets one too large
            classes = out.shape[1]
            top = max(int(y.max()), int(yv.max()) if yv is not None and len(yv) else 0)
            if top >= classes:
                raise DataError(f"--data={data!r}: class label {top} in y, but the model has {classes} "
                                f"outputs (labels must be 0..{classes - 1})")
        start = Problem(spec, model, x[:2], y[:2], loss).criterion(out, y[:2])
    except DataError:
        raise
    except Exception as e:  # the user's model and data do not fit together
        if raised_by_trainlab(e):  # the loss's own bug, not the user's model
            raise
        raise ArgumentError(argument, spec, f"a model whose output fits the data and loss {loss} "
                            f"({type(e).__name__}: {' '.join(str(e).split())[:200]})") from None
    if not bool(torch.isfinite(start)):
        raise ArgumentError(argument, spec, f"a model whose loss at its start is finite (it is "
                            f"{float(start)} on the first examples of --data {data})")
    return Problem(spec, model, x, y, loss, xv, yv, info={"data": data})
