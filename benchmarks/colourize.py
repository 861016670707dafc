"""Training throughput of trainlab's colourization trainer against a course-style loop.

Run: ``python benchmarks/colourize.py [--model unet] [--max-train 1000] [--epochs 1]``, and on a
machine with a CUDA GPU ``python benchmarks/colourize.py --gpu-only`` (under 5 minutes).

Everything is measured in this run, on this machine:

- the anchor: a straightforward loop written the way the course's notebook trains
  (float32, NCHW, default threads; the data kept as NumPy arrays and converted to tensors
  every step, logits transposed and flattened for the loss, the loss pulled to Python
  every step for logging);
- trainlab's trainer (:func:`trainlab.colourize.train.train`) on the same model, data,
  palette, batch size and learning rate, in each of its speed settings;
- this CPU's fp32 matmul peak (a large ``torch.mm``), against which the achieved training
  GFLOP/s is reported. Training FLOPs per image are counted by
  ``torch.utils.flop_counter.FlopCounterMode`` over one forward + backward and checked
  against the analytic count 3 × 2 × Σ k²·C_in·C_out·H_out·W_out (backward ≈ 2 × forward).

Timings on a shared 2-core machine are noisy: each variant is run ``--repeats`` times,
interleaved with the anchor, and the median is reported as a ratio to the anchor's median.
Next to each speed the final validation accuracy of the variant's runs is printed (mean over the
repeats, which use seeds 0, 1, …), so a faster setting can be seen to learn as well as fp32.

Wherever a CUDA GPU exists (or with ``--gpu-only``) the course's whole protocol is timed on
it: 3 networks × 25 epochs × 5,000 random 32×32 images, batch 100, Adam 1e-3, data resident on
the GPU, once as a plain fp32 loop (the anchor) and once through the trainer with
``compile`` (CUDA graphs, "reduce-overhead") and bf16; target ≤ 7 s for all three networks.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from trainlab.colourize.data import load_data, to_grey
from trainlab.colourize.models import build_model
from trainlab.colourize.palette import fit_palette
from trainlab.colourize.train import TrainConfig, resolve_precision, train


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Best observed fp32 GFLOP/s of an n×n matmul (2n³ FLOPs) with the default threads."""
    a, b = torch.rand(n, n), torch.rand(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def analytic_train_flops(model: nn.Module, size: int = 32) -> float:
    """3 × 2 × multiply-accumulates of the convolutions for one image (forward + backward)."""
    macs = 0

    def hook(module: nn.Module, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
        nonlocal macs
        k = module.kernel_size[0] * module.kernel_size[1]
        if isinstance(module, nn.ConvTranspose2d):  # every input pixel meets every kernel tap
            macs += k * module.in_channels * module.out_channels * inputs[0].shape[-2] * inputs[0].shape[-1]
        else:
            macs += k * module.in_channels * module.out_channels * output.shape[-2] * output.shape[-1]

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    with torch.no_grad():
        model(torch.zeros(1, 1, size, size))
    for h in handles:
        h.remove()
    return 3 * 2 * macs


def counted_train_flops(model: nn.Module, num_colours: int, size: int = 32, batch: int = 4) -> float:
    """FLOPs per image of one forward + backward, counted by torch's FlopCounterMode."""
    x = torch.rand(batch, 1, size, size)
    t = torch.randint(num_colours, (batch, size, size))
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), t).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / batch


def course_style_loop(model: nn.Module, grey: np.ndarray, labels: np.ndarray, *, epochs: int,
                      batch_size: int, lr: float, seed: int) -> float:
    """The anchor: images/s of a plain loop written like the course's notebook."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    criterion = nn.CrossEntropyLoss()
    rng = np.random.RandomState(seed)
    num_colours = model.num_colours
    model.train()
    losses = []
    seen = 0
    t0 = time.perf_counter()
    for _ in range(epochs):
        order = rng.permutation(len(grey))
        for i in range(0, len(grey), batch_size):
            idx = order[i: i + batch_size]
            xs = torch.from_numpy(grey[idx]).float()
            ys = torch.from_numpy(labels[idx]).long()
            optimizer.zero_grad()
            outputs = model(xs)
            # (B, K, H, W) -> (B, W, H, K) -> (B·W·H, K), labels likewise, as the notebook does
            flat_out = outputs.transpose(1, 3).contiguous().view(-1, num_colours)
            flat_lab = ys.transpose(1, 2).contiguous().view(-1)
            loss = criterion(flat_out, flat_lab)
            loss.backward()
            optimizer.step()
            losses.append(loss.data.item())
            seen += len(idx)
    return seen / (time.perf_counter() - t0)


def course_protocol_timing(device: str = "cuda", epochs: int = 25, num_images: int = 5000,
                           fast: bool = True) -> None:
    """Seconds for the course's protocol (3 networks) on ``device``: plain loop vs the trainer.

    The trainer runs in fp32 and (``fast``) with compile (CUDA graphs on a GPU) + bf16.
    """
    from trainlab.colourize.data import ColourData
    from trainlab.colourize.palette import Palette

    if device == "cuda" and not torch.cuda.is_available():
        print("no CUDA GPU: the GPU figures are not measured here")
        return
    dev = torch.device(device)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    g = torch.Generator().manual_seed(0)
    rgb = torch.rand(num_images, 3, 32, 32, generator=g)
    data = ColourData(rgb, torch.rand(200, 3, 32, 32, generator=g), "random")
    palette = Palette(torch.rand(24, 3, generator=g))
    grey, labels = to_grey(rgb).to(dev), palette.labels(rgb).to(dev)
    name = torch.cuda.get_device_name() if dev.type == "cuda" else "CPU"
    print(f"{name}: course protocol, 3 networks × {epochs} epochs × {num_images} images, batch 100")

    def plain(model_name: str) -> float:
        model = build_model(model_name).to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        sync()
        t0 = time.perf_counter()
        for _ in range(epochs):
            order = torch.randperm(num_images, device=dev)
            for i in range(0, num_images, 100):
                idx = order[i: i + 100]
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(model(grey[idx]), labels[idx]).backward()
                opt.step()
        sync()
        return time.perf_counter() - t0

    variants = {"trainer fp32": {}}
    if fast:
        variants["trainer compile+bf16"] = {"compile": True, "precision": "bf16"}
    rows: dict[str, list[float]] = {"plain fp32 loop": [], **{v: [] for v in variants}}
    for m in ("pool", "transpose", "unet"):
        rows["plain fp32 loop"].append(plain(m))
        for label, kw in variants.items():
            config = TrainConfig(model=m, epochs=epochs, batch_size=100, device=device, data="random", **kw)
            if kw:  # compile and capture the graphs once, outside the timing
                train(replace(config, epochs=1), data, palette=palette, figures=False)
            result = train(config, data, palette=palette, figures=False)
            rows[label].append(sum(h.seconds for h in result.history))
    anchor = sum(rows["plain fp32 loop"])
    for label, secs in rows.items():
        met = "met" if sum(secs) <= 7 else "not met"
        print(f"{label:<24}{sum(secs):>8.2f} s  (pool {secs[0]:.2f}, transpose {secs[1]:.2f}, "
              f"unet {secs[2]:.2f})  {anchor / sum(secs):.2f}× the plain loop; target ≤ 7 s: {met}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="unet", choices=["pool", "transpose", "unet"])
    parser.add_argument("--num-filters", type=int, default=32)
    parser.add_argument("--max-train", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variants", default="default,fp32,channels_last,compile,bf16,fp16,"
                        "compile+channels_last,"
                        "compile+bf16,compile+channels_last+bf16",
                        help="trainer settings to time (comma-separated)")
    parser.add_argument("--gpu-only", action="store_true", help="only the course protocol on a CUDA GPU")
    args = parser.parse_args()
    if args.gpu_only:
        course_protocol_timing("cuda")
        return

    data = load_data("builtin").subset(args.max_train, 50, seed=0)
    palette = fit_palette(data.train, 24, seed=0)
    base = TrainConfig(model=args.model, num_filters=args.num_filters, epochs=args.epochs,
                       batch_size=args.batch_size, seed=0, device="cpu")
    # "default": the speed settings ``trainlab colourize train`` uses when none is given
    # (--precision auto: bf16 where this CPU runs it natively, else fp32).
    settings = {
        "default": {"precision": "auto"},
        "fp32": {"precision": "fp32"},
        "channels_last": {"channels_last": True},
        "compile": {"compile": True},
        "bf16": {"precision": "bf16"},
        "fp16": {"precision": "fp16"},
        "compile+channels_last": {"compile": True, "channels_last": True},
        "compile+bf16": {"compile": True, "precision": "bf16"},
        "channels_last+bf16": {"channels_last": True, "precision": "bf16"},
        "compile+channels_last+bf16": {"compile": True, "channels_last": True, "precision": "bf16"},
    }
    variants = [v for v in args.variants.split(",") if v]
    grey_np = to_grey(data.train).numpy()
    labels_np = palette.labels(data.train).numpy()
    model = build_model(args.model, num_filters=args.num_filters)
    counted, analytic = counted_train_flops(model, 24), analytic_train_flops(model)
    peak = matmul_peak_gflops()
    print(f"{args.model}, NF={args.num_filters}, {len(data.train)} images × {args.epochs} epoch(s), "
          f"batch {args.batch_size}, {torch.get_num_threads()} threads; default precision here: "
          f"{resolve_precision('auto', torch.device('cpu'))}")
    print(f"training FLOPs/image: {counted / 1e6:.1f} M (FlopCounterMode), "
          f"{analytic / 1e6:.1f} M (analytic 3·2·MACs); fp32 matmul peak {peak:.1f} GFLOP/s")

    results: dict[str, list[float]] = {"reference": [], **{v: [] for v in variants}}
    accuracy: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(args.repeats):
        ref_model = build_model(args.model, num_filters=args.num_filters, seed=r)
        results["reference"].append(course_style_loop(ref_model, grey_np, labels_np, epochs=args.epochs,
                                                      batch_size=args.batch_size, lr=1e-3, seed=r))
        for v in variants:
            config = replace(base, seed=r, **settings[v])
            if r == 0 and "compile" in v:  # compilation happens once per process: warm it up
                train(replace(config, epochs=1), data.subset(2 * args.batch_size, 10, seed=0),
                      palette=palette, figures=False)
            result = train(config, data, palette=palette, figures=False)
            seconds = sum(m.seconds for m in result.history)
            results[v].append(len(data.train) * args.epochs / seconds)
            accuracy[v].append(result.evaluation.accuracy)

    anchor = statistics.median(results["reference"])
    print(f"{'loop':<28}{'images/s':>10}{'× reference':>13}{'GFLOP/s':>10}{'% of peak':>11}"
          f"{'valid acc':>11}   runs")
    for name, values in results.items():
        med = statistics.median(values)
        gflops = med * counted / 1e9
        acc = f"{100 * statistics.mean(accuracy[name]):.1f}%" if accuracy.get(name) else "-"
        print(f"{name:<28}{med:>10.0f}{med / anchor:>13.2f}{gflops:>10.1f}{100 * gflops / peak:>10.1f}%"
              f"{acc:>11}   " + " ".join(f"{v:.0f}" for v in values))
    if torch.cuda.is_available():
        course_protocol_timing("cuda")


if __name__ == "__main__":
    main()
