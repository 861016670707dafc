"""The tracer's hand-inlined fast paths equal the library functions they copy (hypothesis)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils import _pytree as pytree

from trainlab.convnets.direct_shapes import DIRECT
from trainlab.convnets.fast_forward import _named_modules
from trainlab.convnets.field_book import _merge_two
from trainlab.convnets.receptive_field import (
    APPROXIMATE,
    EXACT,
    GLOBAL,
    MISALIGNED,
    ReceptiveField,
    merge_fields,
    through_window,
)
from trainlab.convnets.tracing import _Tracer
from trainlab.convnets.window_rules import _conv_size, _window_field
from trainlab.errors import ArgumentError, ShapeError
from trainlab.shapes import conv_output_size

FAST = settings(max_examples=60, deadline=None)

halves = st.integers(-8, 40).map(lambda v: v / 2)  # starts on the half-pixel grid, as layers make them
# off the grid: after upsampling by 3 (jump 1/3, start shifted by 1/6)
thirds = st.integers(-24, 120).map(lambda v: v / 3 + 1 / 6)


@st.composite
def fields(draw, ndim: int, jump: tuple[float, ...] | None = None) -> ReceptiveField:
    size = tuple(float(draw(st.integers(1, 60))) for _ in range(ndim))
    jumps = jump or tuple(float(draw(st.sampled_from([0, 1, 2, 4, 8, 16, 1 / 3]))) for _ in range(ndim))
    start = tuple(draw(st.one_of(halves, thirds) if draw(st.booleans()) else halves) for _ in range(ndim))
    status = draw(st.sampled_from([EXACT, EXACT, APPROXIMATE, MISALIGNED, GLOBAL]))
    extent = tuple(draw(st.integers(1, 64)) for _ in range(ndim)) if status == GLOBAL else None
    return ReceptiveField(size, jumps, start, status, extent)


class _Where:  # what _conv_size needs of a tracer when it falls back: where the layer is
    def where(self, name: str) -> str:
        return f"'layer' ({name})"


@FAST
@given(ndim=st.integers(1, 3), data=st.data())
def test_merge_two_equals_merge_fields(ndim, data):
    a = data.draw(fields(ndim))
    same_grid = data.draw(st.booleans())
    b = data.draw(fields(ndim, a.jump if same_grid else None))
    extent = tuple(data.draw(st.integers(1, 64)) for _ in range(ndim))
    assert _merge_two(a, b, extent) == merge_fields([a, b], extent)
    assert _merge_two(a, a, extent) == merge_fields([a, a], extent)


@FAST
@given(ndim=st.integers(1, 3), data=st.data())
def test_window_field_equals_through_window(ndim, data):
    rf = data.draw(fields(ndim))
    k, s, p, d = (tuple(data.draw(st.integers(lo, hi)) for _ in range(ndim))
                  for lo, hi in ((1, 7), (1, 4), (0, 3), (1, 3)))
    assert _window_field(rf, k, s, p, d) == through_window(rf, k, s, p, d)


@FAST
@given(h=st.integers(-2, 50), k=st.integers(0, 8), s=st.integers(0, 4), p=st.integers(-1, 4),
       d=st.integers(0, 3))
def test_conv_size_equals_conv_output_size_or_raises_the_same(h, k, s, p, d):
    try:
        want = conv_output_size(h, k, s, p, d)
    except (ShapeError, ArgumentError) as e:
        try:
            _conv_size(h, k, s, p, d, _Where(), "conv2d")
        except type(e):
            return
        raise AssertionError("the fast path accepted what conv_output_size refuses") from None
    assert _conv_size(h, k, s, p, d, _Where(), "conv2d") == want


# -- outputs worked out from shapes (direct_shapes) equal the meta kernel's ----------------------

def _layouts(draw, shape: tuple[int, ...]) -> torch.Tensor:
    """A meta tensor of ``shape``: contiguous, a permuted view, channels last or a slice."""
    kind = draw(st.sampled_from(["contiguous", "permuted", "channels_last", "sliced", "unit_axes"]))
    if kind == "unit_axes" and 1 in shape:  # contiguous, with other strides on its axes of size 1
        return torch.empty_strided(shape, tuple(7 if n == 1 else s for n, s in
                                                zip(shape, torch.empty(shape).stride(), strict=True)),
                                   device="meta")
    if kind == "permuted" and len(shape) > 1:
        order = draw(st.permutations(range(len(shape))))
        base = torch.empty(tuple(shape[i] for i in order), device="meta")
        return base.permute(*[order.index(i) for i in range(len(shape))])
    if kind == "channels_last" and len(shape) == 4:
        return torch.empty(shape, device="meta").contiguous(memory_format=torch.channels_last)
    if kind == "sliced" and shape:
        return torch.empty((*shape[:-1], shape[-1] + 2), device="meta")[..., 1:-1]
    return torch.empty(shape, device="meta")


def _standard(t: torch.Tensor) -> bool:
    """``t`` has the strides of a new contiguous tensor of its shape."""
    return t.stride() == torch.empty(t.shape, device="meta").stride()


def _same_as_meta(fn, args: tuple, kwargs: dict, direct) -> bool:
    """``direct`` gives None, or the meta kernel's shape, dtype and strides; raises where the kernel does."""
    out = direct(args, kwargs)
    if out is None:
        return False
    want = fn(*args, **kwargs)
    assert (out.shape, out.dtype, out.stride()) == (want.shape, want.dtype, want.stride())
    assert out.device == want.device
    return True


sizes = st.lists(st.integers(1, 5), min_size=1, max_size=5).map(tuple)


@FAST
@given(shape=sizes, data=st.data())
def test_viewable_agrees_with_torchs_view(shape, data):
    """A reshape takes the view exactly when torch's ``view`` succeeds (else the copy's strides differ)."""
    from trainlab.convnets.direct_shapes import _viewable

    x = _layouts(data.draw, shape)
    if data.draw(st.booleans()) and x.dim() > 1:  # a transposed view: strides out of order
        x = x.transpose(0, -1)
    if data.draw(st.booleans()):  # any order of the sizes, and a 1
        new = data.draw(st.permutations([*x.shape, 1]))
    else:  # neighbours merged at random cuts: views exactly where the merged axes form one block
        cuts = [0, *sorted(data.draw(st.sets(st.integers(1, max(1, x.dim() - 1))))), x.dim()]
        new = [math.prod(x.shape[a:b]) for a, b in zip(cuts, cuts[1:], strict=False) if b > a]
    try:
        x.view(new)
        torch_views = True
    except RuntimeError:
        torch_views = False
    assert _viewable(x.shape, x.stride(), list(new)) == torch_views
    merged = [math.prod(x.shape)]
    try:
        x.view(merged)
        torch_views = True
    except RuntimeError:
        torch_views = False
    assert _viewable(x.shape, x.stride(), merged) == torch_views


@FAST
@given(shape=sizes, data=st.data())
def test_direct_cat_and_stack_equal_the_meta_kernel(shape, data):
    n = len(shape)
    dim = data.draw(st.integers(-n, n - 1))
    parts = []
    for _ in range(data.draw(st.integers(1, 3))):
        size = list(shape)
        size[dim] = data.draw(st.integers(1, 4))
        parts.append(_layouts(data.draw, tuple(size)))
    name = data.draw(st.sampled_from(["cat", "concat", "concatenate"]))
    kwargs = data.draw(st.sampled_from([{}, {"dim": dim}]))
    args = (parts, dim) if not kwargs else (parts,)
    answered = _same_as_meta(getattr(torch, name), args, kwargs, DIRECT[name])
    assert answered or not any(_standard(t) for t in parts)
    same = [_layouts(data.draw, shape) for _ in range(len(parts))]
    stack_dim = data.draw(st.integers(-n - 1, n))
    answered = _same_as_meta(torch.stack, (same, stack_dim), {}, DIRECT["stack"])
    assert answered or not any(_standard(t) for t in same)


@FAST
@given(shape=sizes, data=st.data())
def test_direct_reductions_equal_the_meta_kernel(shape, data):
    n = len(shape)
    x = _layouts(data.draw, shape)
    dims = data.draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=n, unique_by=lambda d: d % n))
    dim = dims[0] if len(dims) == 1 and data.draw(st.booleans()) else tuple(dims)
    keepdim = data.draw(st.booleans())
    name = data.draw(st.sampled_from(["mean", "sum", "amax", "amin"]))
    kwargs = data.draw(st.sampled_from([{}, {"keepdim": keepdim}, {"dim": dim, "keepdim": keepdim}]))
    args = (x,) if "dim" in kwargs else (x, dim) if kwargs else (x, dim, keepdim)
    answered = _same_as_meta(getattr(torch.Tensor, name), args, kwargs, DIRECT[name])
    assert answered or not _standard(x)


def test_direct_shapes_leave_mismatches_and_other_forms_to_the_meta_kernel():
    a, b = torch.empty(1, 2, 3, device="meta"), torch.empty(1, 3, 4, device="meta")
    assert DIRECT["cat"](([a, b], 1), {}) is None  # sizes differ off the joined axis: torch raises
    assert DIRECT["cat"](([a, a.double()], 1), {}) is None  # type promotion
    assert DIRECT["stack"](([a, b],), {}) is None
    assert DIRECT["mean"]((a, (1, -2)), {}) is None  # a repeated dim
    assert DIRECT["sum"]((a.long(), 1), {}) is None  # an integer sum is int64
    assert DIRECT["mean"]((a,), {}) is None  # a full reduction: not answered here
    assert DIRECT["mean"]((a, 1), {"dtype": torch.float64}) is None


def _same_tensors(out, want) -> None:
    outs = out if isinstance(out, tuple) else (out,)
    wants = want if isinstance(want, tuple) else (want,)
    assert len(outs) == len(wants)
    for o, w in zip(outs, wants, strict=True):
        assert (o.shape, o.dtype, o.stride(), o.device) == (w.shape, w.dtype, w.stride(), w.device)


@FAST
@given(shape=sizes, data=st.data())
def test_direct_copies_equal_the_meta_kernel(shape, data):
    x = _layouts(data.draw, shape)
    out = DIRECT["contiguous"]((x,), {})
    _same_tensors(out, x.contiguous())
    assert (out is x) == x.is_contiguous()  # contiguous() of a contiguous tensor is the tensor itself
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    _same_tensors(DIRECT["unbind"]((x, dim), {}), x.unbind(dim))
    # a reshape that merges or splits axes (a view where the strides allow it, else a copy)
    total = math.prod(shape)
    split = [f for f in range(2, 5) if total % f == 0]
    new = data.draw(st.sampled_from([(total,), (-1,), (*shape[:-1], -1), (1, *shape), tuple(reversed(shape)),
                                     (*shape[:-2], -1, 1), (split[0], -1) if split else (-1, 1)]))
    as_tuple = data.draw(st.booleans())
    _same_tensors(DIRECT["reshape"]((x, new) if as_tuple else (x, *new), {}), x.reshape(*new))
    assert DIRECT["reshape"]((x, total + 1), {}) is None  # a size that does not fit: torch raises
    assert DIRECT["reshape"]((x, -1, -1), {}) is None


def test_direct_zeros_is_an_empty_meta_tensor():
    for name in ("zeros", "ones"):
        kwargs = {"dtype": torch.float16, "device": torch.device("meta")}
        _same_tensors(DIRECT[name]((2, 3), kwargs), getattr(torch, name)(2, 3, **kwargs))
        _same_tensors(DIRECT[name](((4, 5),), {"device": torch.device("meta")}),
                      getattr(torch, name)((4, 5), device="meta"))
        assert DIRECT[name]((2, 3), {"device": torch.device("cpu")}) is None
        assert DIRECT[name]((-1,), {"device": torch.device("meta")}) is None


def test_named_modules_walk_equals_torchs():
    shared = nn.Linear(2, 2)
    inner = nn.Sequential(shared, nn.ReLU(), nn.Sequential(nn.Identity(), shared))
    model = nn.Sequential(nn.Conv2d(1, 2, 3), inner, nn.ModuleDict({"a": inner, "b": nn.Tanh()}))
    model.register_module("empty", None)
    walked = _named_modules(model)
    assert [(n, id(m)) for n, m in walked] == [(n, id(m)) for n, m in model.named_modules()]


def test_einsum_memo_gives_the_meta_kernels_output():
    """A contraction seen before is answered from its remembered shape and strides: the same as
    the meta kernel's, for operands of any layout (permuted operands change the output's strides)."""
    tracer = _Tracer(nn.Linear(1, 1), frozenset())
    w = torch.empty(8, 6, device="meta")
    for equation in ("bchw,cd->bdhw", "bchw,cd->bhwd", "bchw,cd->dbhw", "bchw,cd->bd"):
        plain, permuted = torch.empty(1, 8, 4, 5, device="meta"), torch.empty(1, 8, 5, 4, device="meta")
        for x in (plain, permuted.transpose(2, 3)):
            want = torch.einsum(equation, x, w)
            for _ in range(2):  # computed, then remembered
                out = tracer.__torch_function__(torch.einsum, (), (equation, x, w), {})
                assert (out.shape, out.stride(), out.dtype) == (want.shape, want.stride(), want.dtype)
    assert tracer.rows[0].macs == 8 * 6 * 4 * 5


@FAST
@given(ignore=st.sets(st.sampled_from(["bias", "batchnorm"])),
       calls=st.lists(st.integers(0, 4), min_size=1, max_size=12))
def test_post_hook_books_parameters_as_take_params(ignore, calls):
    """post_hook inlines take_params: a leaf's row books the parameters take_params would, in any
    order of calls, with shared, frozen and ignored parameters and modules called again."""
    shared = nn.Linear(4, 4)
    frozen = nn.Conv2d(3, 4, 3)
    frozen.weight.requires_grad_(False)
    leaves = [nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), shared, frozen, nn.Sequential(shared).get_submodule("0")]
    model = nn.Sequential(*leaves[:4], nn.Sequential(leaves[4]))
    hooked, reference = _Tracer(model, frozenset(ignore)), _Tracer(model, frozenset(ignore))
    out = torch.empty(1, 4, device="meta")
    for i in calls:
        module = leaves[i]
        hooked.pre_hook(module, ())
        hooked.post_hook(module, (), out)
        row = hooked.rows[-1]
        own = reference.frames[id(module)][3]
        assert (row.params, row.trainable_params) == reference.take_params(own)
    assert hooked.counted == reference.counted


# -- leaf modules handed to the tracer directly (_FAST_CALLS) ---------------------------------------

class _Record(TorchFunctionMode):
    """The calls a module's own forward makes (what the tracer would be handed)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") not in ("dim", "__get__"):
            self.calls.append((func, args, kwargs or {}))
        return func(*args, **(kwargs or {}))


def _fast_modules() -> list[tuple[nn.Module, tuple[int, ...]]]:
    cases = []
    for bn, shapes in ((nn.BatchNorm1d, [(2, 4), (2, 4, 5)]), (nn.BatchNorm2d, [(2, 4, 5, 5)]),
                       (nn.BatchNorm3d, [(2, 4, 3, 3, 3)])):
        for options in ({}, {"affine": False}, {"momentum": None}, {"track_running_stats": False}):
            cases += [(bn(4, **options).eval(), shape) for shape in shapes]
        cases.append((bn(4), shapes[0]))  # training
    cases += [(nn.LayerNorm(5), (2, 3, 5)), (nn.LayerNorm((3, 5), elementwise_affine=False), (2, 3, 5)),
              (nn.LayerNorm(5, bias=False, eps=1e-3), (2, 5)),
              (nn.GroupNorm(2, 4), (2, 4, 3, 3)), (nn.GroupNorm(1, 4, affine=False), (2, 4, 3))]
    for act in (nn.ReLU, nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.ReLU6):
        cases += [(act(), (2, 4, 3)), (act(inplace=True), (2, 4, 3))]
    cases += [(nn.LeakyReLU(0.2), (2, 4)), (nn.LeakyReLU(0.1, inplace=True), (2, 4)),
              (nn.Dropout(0.3), (2, 4)), (nn.Dropout(0.3).eval(), (2, 4)),
              (nn.Dropout(0.2, inplace=True), (2, 4))]
    for pool, shape in ((nn.MaxPool1d, (2, 4, 9)), (nn.MaxPool2d, (2, 4, 9, 9)),
                        (nn.MaxPool3d, (1, 2, 5, 5, 5))):
        cases += [(pool(2), shape), (pool(3, 2, 1, ceil_mode=True), shape), (pool(2, dilation=2), shape),
                  (pool(2, return_indices=True), shape)]
    for pool, shape in ((nn.AdaptiveAvgPool2d, (2, 4, 9, 9)), (nn.AdaptiveAvgPool3d, (1, 2, 5, 5, 5)),
                        (nn.AdaptiveMaxPool1d, (2, 4, 9)), (nn.AdaptiveMaxPool2d, (2, 4, 9, 9)),
                        (nn.AdaptiveMaxPool3d, (1, 2, 5, 5, 5))):
        cases.append((pool(2), shape))
        if "Max" in pool.__name__:
            cases.append((pool(3, return_indices=True), shape))
    cases += [(nn.Softmax(1), (2, 4)), (nn.Softmax(-1), (2, 3, 4)), (nn.LogSoftmax(0), (2, 4)),
              (nn.Upsample(scale_factor=2), (1, 2, 4, 4)),
              (nn.Upsample(size=(6, 7), mode="bilinear", align_corners=True), (1, 2, 4, 4)),
              (nn.Upsample(scale_factor=1.5, mode="bicubic", recompute_scale_factor=True), (1, 2, 4, 4)),
              (nn.UpsamplingNearest2d(scale_factor=2), (1, 2, 4, 4)),
              (nn.UpsamplingBilinear2d(size=5), (1, 2, 4, 4))]
    return cases


def test_fast_leaf_calls_are_the_calls_the_modules_make():
    from trainlab.convnets.fast_forward import _FAST_CALLS

    assert {type(m) for m, _ in _fast_modules()} | set(_RECURRENT) == set(_FAST_CALLS)
    for module, shape in _fast_modules():
        x = torch.randn(shape)
        recorder = _Record()
        with torch.no_grad():
            with recorder:
                module(x)
        found = _FAST_CALLS[type(module)](module, x)
        if (module.training and isinstance(module, nn.modules.batchnorm._BatchNorm)
                or getattr(module, "return_indices", False)):
            assert found is None  # the batch counter's update, indices: the module's own forward runs
            continue
        assert len(recorder.calls) == 1, type(module)
        func, args, kwargs = recorder.calls[0]
        fast_func, fast_args, fast_kwargs = found
        assert fast_func is func, type(module)
        assert len(fast_args) == len(args) and fast_args[0] is x
        assert all(a is b or a == b for a, b in zip(fast_args[1:], args[1:], strict=True)), type(module)
        assert (fast_kwargs or {}).keys() == kwargs.keys(), type(module)
        assert all(fast_kwargs[k] is v or fast_kwargs[k] == v for k, v in kwargs.items()), type(module)


_RECURRENT = (nn.LSTM, nn.GRU, nn.RNN)


def _recurrent_modules() -> list[tuple[nn.Module, tuple[int, ...]]]:
    cases = []
    for kind in _RECURRENT:
        cases += [(kind(5, 6), (7, 2, 5)), (kind(5, 6, batch_first=True), (2, 7, 5)),
                  (kind(5, 6, num_layers=2, bidirectional=True, bias=False), (3, 1, 5)),
                  (kind(5, 6, num_layers=2, dropout=0.5), (4, 3, 5)),  # training: dropout between layers
                  (kind(5, 6, num_layers=2, dropout=0.5).eval(), (4, 3, 5))]
    cases += [(nn.LSTM(5, 6, proj_size=3, bidirectional=True, batch_first=True), (2, 4, 5)),
              (nn.RNN(5, 6, nonlinearity="relu", num_layers=3), (3, 2, 5))]
    return cases


def test_fast_recurrent_calls_are_the_calls_the_modules_make():
    """LSTM/GRU/RNN: the zero states and the one _VF call of their own forward; run for real on the
    states' shapes, the call gives exactly the module's output and final states."""
    from trainlab.convnets.fast_forward import _FAST_CALLS

    for module, shape in _recurrent_modules():
        x = torch.randn(shape)
        recorder = _Record()
        torch.manual_seed(0)
        with torch.no_grad(), recorder:
            want = module(x)
        calls = [c for c in recorder.calls if c[0].__name__ in ("lstm", "gru", "rnn_tanh", "rnn_relu")]
        assert len(calls) == 1, module
        func, args, kwargs = calls[0]
        fast_func, fast_args, fast_kwargs, finish = _FAST_CALLS[type(module)](module, x)
        assert fast_func is func and not kwargs and not fast_kwargs, module
        assert fast_args[0] is x and len(fast_args) == len(args) == 9
        states = fast_args[1] if isinstance(fast_args[1], tuple) else (fast_args[1],)
        made = args[1] if isinstance(args[1], tuple) else (args[1],)
        assert [(h.shape, h.dtype, h.device.type) for h in states] == [
            (h.shape, h.dtype, "meta") for h in made]
        assert fast_args[2] is args[2] or list(fast_args[2]) == list(args[2])
        assert fast_args[3:] == args[3:], module
        zeros = tuple(torch.zeros(h.shape) for h in states)
        torch.manual_seed(0)
        with torch.no_grad():
            got = finish(func(x, zeros if isinstance(fast_args[1], tuple) else zeros[0], *fast_args[2:]))
        flat_got, flat_want = pytree.tree_leaves(got), pytree.tree_leaves(want)
        assert pytree.tree_structure(got) == pytree.tree_structure(want), module
        assert all(torch.equal(a, b) for a, b in zip(flat_got, flat_want, strict=True)), module
    for module, x in ((nn.LSTM(5, 6), torch.randn(7, 5)),  # unbatched: the forward unsqueezes
                      (nn.GRU(5, 6), torch.randn(7, 2, 4)),  # the wrong input size: its own error
                      (nn.RNN(5, 6), torch.randn(7, 2, 5, dtype=torch.float64)),  # a dtype mismatch
                      (nn.LSTM(5, 6), torch.randn(7, 2, 5, 1))):
        assert _FAST_CALLS[type(module)](module, x) is None


class _Recurrent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(4, 6, num_layers=2, bidirectional=True, batch_first=True, dropout=0.2)
        self.gru, self.rnn = nn.GRU(12, 5), nn.RNN(5, 3, nonlinearity="relu")
        self.proj, self.unbatched = nn.LSTM(3, 4, proj_size=2), nn.GRU(2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, (h, c) = self.lstm(x)
        y = self.rnn(self.gru(y.transpose(0, 1))[0])[0]
        y, _ = self.proj(y)
        return self.unbatched(y[:, 0])[0] + h.sum() + c.mean()


@pytest.mark.parametrize("training", [False, True])
def test_fast_recurrent_modules_trace_as_their_own_forward(monkeypatch, training):
    from trainlab.convnets import summary, tracing

    model = _Recurrent()
    fast = summary(model, (9, 4), batch_size=2, training=training)
    monkeypatch.setattr(tracing, "_FAST_CALLS", {})
    slow = summary(model, (9, 4), batch_size=2, training=training)
    assert [r.as_dict() for r in fast.rows] == [r.as_dict() for r in slow.rows]
    assert fast.not_counted == slow.not_counted
    assert fast.rows[0].macs > 0 and len(fast.rows) == 5


class _Leaves(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn, self.act = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(inplace=True)
        self.gn, self.drop, self.ln = nn.GroupNorm(2, 4), nn.Dropout(), nn.LayerNorm(4)
        self.bn1, self.pool, self.up = nn.BatchNorm1d(4), nn.MaxPool2d(2), nn.Upsample(scale_factor=2)
        self.squeeze, self.soft = nn.AdaptiveAvgPool2d(1), nn.Softmax(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.gn(self.up(self.pool(self.act(self.bn(self.conv(x)))))))
        return self.soft(self.bn1(self.ln(self.squeeze(x).flatten(1))))


@pytest.mark.parametrize("training", [False, True])
def test_fast_leaf_modules_trace_as_their_own_forward(monkeypatch, training):
    from trainlab.convnets import summary, tracing

    model = _Leaves()
    fast = summary(model, (3, 8, 8), training=training)
    monkeypatch.setattr(tracing, "_FAST_CALLS", {})
    slow = summary(model, (3, 8, 8), training=training)
    assert [r.as_dict() for r in fast.rows] == [r.as_dict() for r in slow.rows]
    assert fast.not_counted == slow.not_counted


def test_fast_leaf_forwards_are_removed_and_never_replace_a_users_own():
    from trainlab.convnets import summary

    model = _Leaves()
    own = model.act.forward = lambda x: x * 2  # the user's own instance forward stays in charge
    summary(model, (3, 8, 8))
    assert model.act.__dict__["forward"] is own
    assert all("forward" not in m.__dict__ for name, m in model.named_modules() if name != "act")
    with pytest.raises(ShapeError):
        summary(model, (3, 8, 9, 9))  # fails inside the trace: still restored
    assert all("forward" not in m.__dict__ for name, m in model.named_modules() if name != "act")
    with pytest.raises(ValueError, match="expected 4D input"):
        summary(nn.BatchNorm2d(3).eval(), (3, 5))  # the module's own input check
