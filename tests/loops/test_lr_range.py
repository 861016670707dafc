"""The LR range test works on copies, is reproducible under a seed and reports its spread."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trainlab.errors import ArgumentError
from trainlab.loops.lr_range import copy_training_state, lr_find, lr_range_test
from trainlab.problems import load_problem


def _data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(256, 10, generator=g)
    return x, (x[:, :3].sum(1) > 0).long()


def _trained(optimizer: str) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))
    opt = (
        torch.optim.Adam(model.parameters(), lr=1e-3)
        if optimizer == "adam"
        else torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    )
    x, y = _data()
    for _ in range(3):  # give the optimizer state (moments, momentum buffers, step counts)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    return model, opt


def _snapshot(obj) -> dict:
    import copy

    return copy.deepcopy(obj.state_dict())


def _bitwise_equal(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_bitwise_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_bitwise_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_range_test_leaves_model_optimizer_and_global_rng_bitwise_unchanged(optimizer: str) -> None:
    model, opt = _trained(optimizer)
    model_before, opt_before = _snapshot(model), _snapshot(opt)
    rng_before = torch.get_rng_state()
    x, y = _data(1)
    r = lr_range_test(model, opt, nn.functional.cross_entropy, x, y, num_steps=40, batch_size=32, seed=5)
    assert len(r.lrs) >= 3
    assert _bitwise_equal(model.state_dict(), model_before)
    assert _bitwise_equal(opt.state_dict(), opt_before)
    assert opt.param_groups[0]["lr"] == opt_before["param_groups"][0]["lr"]
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert not model.training  # its mode too


def test_copied_optimizer_has_the_same_state_in_new_tensors() -> None:
    model, opt = _trained("adam")
    model2, opt2 = copy_training_state(model, opt)
    assert _bitwise_equal(opt2.state_dict(), opt.state_dict())
    for p, q in zip(model.parameters(), model2.parameters(), strict=True):
        assert p.data_ptr() != q.data_ptr()
        assert opt.state[p]["exp_avg"].data_ptr() != opt2.state[q]["exp_avg"].data_ptr()


def test_same_seed_same_curve_other_seed_other_batches() -> None:
    model, opt = _trained("sgd")
    x, y = _data(2)
    a, b, c = (
        lr_range_test(model, opt, nn.functional.cross_entropy, x, y, num_steps=50, batch_size=16, seed=s)
        for s in (3, 3, 4)
    )
    assert a.raw_losses == b.raw_losses and a.suggested_lr == b.suggested_lr  # dropout too: seeded
    assert a.raw_losses != c.raw_losses


def test_lr_find_reports_each_seeds_suggestion_and_their_median() -> None:
    p = load_problem("digits-mlp", seed=0)
    r = lr_find(p, seeds=5, seed=10, batch_size=32, num_steps=60, min_lr=1e-4, max_lr=10)
    assert [run.seed for run in r.runs] == [10, 11, 12, 13, 14]
    assert len(r.spread) == 5 and all(s is not None for s in r.spread)
    assert sorted(r.spread)[2] == pytest.approx(r.suggested_lr)
    assert r.spread_ratio >= 1 and r.divergence_lr is not None and r.suggested_lr < r.divergence_lr
    again = lr_find(p, seeds=1, seed=12, batch_size=32, num_steps=60, min_lr=1e-4, max_lr=10)
    assert again.spread == [r.spread[2]]  # one seed of the sweep, repeated alone


def test_on_a_quadratic_the_range_test_diverges_only_past_two_over_lambda() -> None:
    for seed in range(3):
        p = load_problem("linreg", n=10, d=40, seed=seed)
        r = lr_find(p, min_lr=1e-4, max_lr=10, num_steps=150)
        assert r.divergence_lr is not None and r.divergence_lr > p.stable_lr_bound
        losses = r.runs[0].raw_losses
        first_above = next(i for i, lr in enumerate(r.runs[0].lrs) if lr > p.stable_lr_bound)
        assert all(b <= a for a, b in zip(losses[:first_above], losses[1:first_above], strict=False))


def test_suggestion_rules() -> None:
    p = load_problem("linreg", n=10, d=40, seed=0)
    steep = lr_find(p, num_steps=120, min_lr=1e-4, max_lr=10)
    tenth = lr_find(p, num_steps=120, min_lr=1e-4, max_lr=10, suggest="min/10")
    best = min(range(len(tenth.runs[0].losses)), key=tenth.runs[0].losses.__getitem__)
    assert tenth.suggested_lr == pytest.approx(tenth.runs[0].lrs[best] / 10)
    assert steep.suggested_lr != tenth.suggested_lr


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"min_lr": 1.0, "max_lr": 0.5}, "max_lr"),
        ({"min_lr": 0.0}, "min_lr"),
        ({"num_steps": 2}, "num_steps"),
        ({"seeds": 0}, "seeds"),
        ({"suggest": "valley"}, "suggest"),
        ({"smoothing": 0.0}, "smoothing"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict, name: str) -> None:
    with pytest.raises(ArgumentError, match=name):
        lr_find(load_problem("linreg", n=4, d=8), **kwargs)


def test_full_batch_curve_is_torch_lr_finders_curve() -> None:
    pytest.importorskip("torch_lr_finder")
    import contextlib
    import io

    from torch_lr_finder import LRFinder

    p = load_problem("digits-mlp", seed=0)
    x, y = p.x[:200], p.y[:200]
    model = p.fresh_model()
    finder = LRFinder(model, torch.optim.SGD(model.parameters(), lr=1e-5), p.criterion, device="cpu")
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=200)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        finder.range_test(loader, end_lr=30, num_iter=60, smooth_f=0.05, diverge_th=5)
    ours = lr_range_test(
        p.model,
        torch.optim.SGD(p.model.parameters(), lr=1e-5),
        p.criterion,
        x,
        y,
        min_lr=1e-5,
        max_lr=30,
        num_steps=60,
    )
    assert ours.lrs == pytest.approx(finder.history["lr"], rel=1e-12)
    assert ours.losses == pytest.approx(finder.history["loss"], rel=1e-6)  # same ops: equal in practice


def test_an_optimizer_over_other_parameters_is_refused() -> None:
    model, _ = _trained("sgd")
    stranger = torch.optim.SGD([torch.nn.Parameter(torch.zeros(3))], lr=0.1)
    x, y = _data()
    with pytest.raises(ArgumentError, match="optimizer"):
        lr_range_test(model, stranger, nn.functional.cross_entropy, x, y, num_steps=5)


def test_a_range_that_ends_before_the_loss_rises_marks_its_suggestion_unbounded() -> None:
    """GD on linreg is stable below 2/λ_max ≈ 0.108: up to 0.01 the loss only falls, so the
    suggestion is the top of the range and must say it is a lower bound, not an answer."""
    p = load_problem("linreg", n=20, d=50, seed=0)
    short = lr_find(p, max_lr=0.01, num_steps=60)
    assert short.divergence_lr is None and not short.bounded and not short.runs[0].bounded
    assert short.suggested_lr == pytest.approx(0.01)
    assert short.as_dict()["suggestion_bounded"] is False and short.as_dict()["unbounded_seeds"] == [0]
    full = lr_find(p, max_lr=10.0, num_steps=60)  # diverges inside the range: an answer
    assert full.bounded and full.divergence_lr is not None and full.suggested_lr < full.divergence_lr
    assert full.as_dict()["unbounded_seeds"] == []
