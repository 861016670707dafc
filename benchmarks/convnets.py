"""Speed and memory of ``trainlab.convnets.summary`` against torchinfo, measured in one run.

    python benchmarks/convnets.py [--repeat 5]

For VGG-16 and ResNet-50 (written out below; no torchvision) at 3×224×224 it times, in the
same process and interleaved:

* trainlab: ``summary(model, (3, 224, 224))`` (meta-device tracing, the model untouched);
* torchinfo, default mode: a real forward pass on the CPU;
* torchinfo on the meta device: ``device="meta"``, on a deep copy made beforehand and not
  timed (torchinfo moves the model it is given to meta, losing the weights).

and prints the median times and the ratios (goal: trainlab ≥ 10× faster than torchinfo). A zoo
table follows (``--zoo``, on by default): over the 30+ architectures written out in
``tests/convnets/zoo.py`` (VGG, ResNet, ResNet-D/SE, MobileNet-style, UNet, DCGAN, ConvNeXt,
ShuffleNet, space-to-depth stems, ViT with matmul and einsum attention, RegNet-style, an LSTM
mixer, ...) it times trainlab against torchinfo's default (a real forward pass, eval mode) and
checks trainlab's MACs against ``FlopCounterMode`` on a meta copy in eval mode, timing that too
(the cheapest exact rival; the copy is made beforehand, not timed). Goals: ≥ 5× torchinfo on
every model and ≥ 15× its median; ≥ 3× FlopCounterMode on every model; MACs equal on all. It
then measures trainlab's peak memory at 2048² against 224² (goal: within 1.2×), as the growth
of the process's peak resident set (Linux ``VmHWM``, reset through ``/proc/self/clear_refs``
before each call) and, separately, the peak of Python-heap allocations (``tracemalloc``).
Numbers on a shared machine are noisy; the ratios come from the same run.
"""

from __future__ import annotations

import argparse
import copy
import gc
import importlib.util
import statistics
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from trainlab.convnets import summary

VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def vgg16() -> nn.Module:
    layers: list[nn.Module] = []
    c = 3
    for v in VGG16:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
            c = v
    return nn.Sequential(
        *layers,
        nn.AdaptiveAvgPool2d(7),
        nn.Flatten(),
        nn.Linear(512 * 49, 4096),
        nn.ReLU(True),
        nn.Dropout(),
        nn.Linear(4096, 4096),
        nn.ReLU(True),
        nn.Dropout(),
        nn.Linear(4096, 1000),
    )


class Bottleneck(nn.Module):
    def __init__(self, c_in: int, c: int, stride: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c_in, c, 1, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, stride, 1, bias=False), nn.BatchNorm2d(c)
        self.conv3, self.bn3 = nn.Conv2d(c, 4 * c, 1, bias=False), nn.BatchNorm2d(4 * c)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or c_in != 4 * c:
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, 4 * c, 1, stride, bias=False), nn.BatchNorm2d(4 * c)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def resnet50() -> nn.Module:
    layers: list[nn.Module] = [
        nn.Conv2d(3, 64, 7, 2, 3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(True),
        nn.MaxPool2d(3, 2, 1),
    ]
    c_in = 64
    for i, (c, n) in enumerate(zip([64, 128, 256, 512], [3, 4, 6, 3], strict=True)):
        for j in range(n):
            layers.append(Bottleneck(c_in, c, 2 if (j == 0 and i > 0) else 1))
            c_in = 4 * c
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2048, 1000))


def median_seconds(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _hwm_kib() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _rss_kib() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_rss_growth_mib(fn: Callable[[], object]) -> float | None:
    """Peak resident set during ``fn`` minus the resident set before it (Linux only)."""
    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    except OSError:
        return None
    before = _rss_kib()
    fn()
    peak = _hwm_kib()
    if before is None or peak is None:
        return None
    return (peak - before) / 1024


def tracemalloc_peak_mib(fn: Callable[[], object]) -> float:
    gc.collect()
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def load_zoo() -> dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]]:
    """The architectures of tests/convnets/zoo.py at the sizes they are used at (the tests run
    small versions), 33 in all: ImageNet-size CNNs at 224², ViT-Ti and ConvNeXt-T shapes, a YOLO
    stem at 640², audio-length 1-D and video-size 3-D convnets, attention over 196 tokens."""
    path = Path(__file__).resolve().parents[1] / "tests" / "convnets" / "zoo.py"
    spec = importlib.util.spec_from_file_location("convnets_zoo", path)
    zoo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(zoo)  # type: ignore[union-attr]
    image = (3, 224, 224)
    return {
        "vgg11": (lambda: zoo.VGG(11), image),
        "vgg16": (lambda: zoo.VGG(16), image),
        "resnet18": (zoo.resnet18, image),
        "resnet50": (zoo.resnet50, image),
        "mobilenet-style": (zoo.DepthwiseSeparable, image),
        "unet": (zoo.UNet, (1, 256, 256)),
        "dcgan-decoder": (zoo.DCGANDecoder, (100, 1, 1)),
        "convtranspose-net": (lambda: zoo.ConvTransposeNet(1, 32, 24), (1, 256, 256)),
        "attention-block": (lambda: zoo.AttentionBlock(384, 6), (196, 384)),
        "sdpa-block": (lambda: zoo.SDPABlock(384, 6), (196, 384)),
        "mha-block": (lambda: zoo.MHABlock(384, 6), (196, 384)),
        "se-net": (zoo.SENet, image),
        "conv1d-audio": (zoo.Conv1dNet, (2, 16000)),
        "conv3d-video": (zoo.Conv3dNet, (1, 16, 112, 112)),
        "convnext-t": (lambda: zoo.ConvNeXt((96, 192, 384, 768), (3, 3, 9, 3), 1000), image),
        "convnext-small-input": (zoo.ConvNeXt, (3, 32, 32)),
        "shufflenet": (zoo.ShuffleNet, image),
        "space-to-depth": (zoo.SpaceToDepthNet, image),
        "focus-yolo-stem": (zoo.FocusNet, (3, 640, 640)),
        "resnet-d": (zoo.ResNetD, image),
        "resnet-d-se": (lambda: zoo.ResNetD(se=True), image),
        "se-linear-gate": (zoo.SEGateLinear, image),
        "vit-ti": (lambda: zoo.ViT(224, 16, 192, 12), image),
        "vit-ti-einsum": (lambda: zoo.ViT(224, 16, 192, 12, einsum=True), image),
        "vit-small-input": (zoo.ViT, (3, 32, 32)),
        "regnet-style": (lambda: zoo.RegNetStyle(8, 24.0, 36.0, 2.5), image),
        "aux-head": (zoo.AuxHeadNet, image),
        "sequencer": (lambda: zoo.Sequencer(192, 48, 4), image),
        "sequencer-small-input": (zoo.Sequencer, (3, 32, 32)),
        "unet-small-input": (zoo.UNet, (1, 32, 32)),
        "resnet18-small-input": (zoo.resnet18, (3, 64, 64)),
        "mobilenet-small-input": (zoo.DepthwiseSeparable, (3, 64, 64)),
        "shufflenet-small-input": (zoo.ShuffleNet, (3, 32, 32)),
    }


def flop_counter_macs(meta: nn.Module, size: tuple[int, ...]) -> int:
    """MACs of ``meta`` (a copy of the model on the meta device, eval mode) by FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        meta(torch.empty(1, *size, device="meta"))
    return counter.get_total_flops() // 2


def zoo_table(repeat: int, torchinfo) -> bool:
    print("\nzoo: trainlab vs torchinfo (real forward, eval mode) and MACs vs FlopCounterMode (meta, eval)")
    print(f"{'model':<24} {'input':>10} {'params':>11} {'MACs':>14} {'FlopCounter':>8} "
          f"{'trainlab':>10} {'torchinfo':>10} {'ratio':>7} {'FlopCounter':>11} {'ratio':>7}")
    ratios, flop_ratios, agree, rows = [], [], 0, 0
    for name, (factory, size) in load_zoo().items():
        torch.manual_seed(0)
        model = factory()
        meta = copy.deepcopy(model).to("meta").eval()  # made once, not timed (the cheapest exact rival)
        result = summary(model, size)
        reference = flop_counter_macs(meta, size)
        same = "=" if reference == result.total_macs else f"{result.total_macs - reference:+,}"
        agree += reference == result.total_macs
        rows += 1
        ours = median_seconds(lambda m=model, s=size: summary(m, s), repeat)
        counter = median_seconds(lambda m=meta, s=size: flop_counter_macs(m, s), repeat)
        flop_ratios.append(counter / ours)
        theirs = float("nan")
        if torchinfo is not None:
            theirs = median_seconds(
                lambda m=model, s=size: torchinfo.summary(m, input_size=(1, *s), verbose=0), repeat)
            ratios.append(theirs / ours)
        shape = "x".join(map(str, size))
        print(f"{name:<24} {shape:>10} {result.total_params:>11,} {result.total_macs:>14,} "
              f"{same:>8} {ours * 1e3:8.2f}ms {theirs * 1e3:8.2f}ms {theirs / ours:6.1f}× "
              f"{counter * 1e3:9.2f}ms {counter / ours:6.1f}×")
    print(f"{rows} models; MACs equal to FlopCounterMode on {agree}")
    low_flop = min(flop_ratios)
    print(f"speed vs FlopCounterMode on a meta copy: median {statistics.median(flop_ratios):.1f}×, "
          f"minimum {low_flop:.1f}× (goal: every model ≥ 3×)")
    ok = low_flop >= 3 and agree == rows
    if ratios:
        low, mid = min(ratios), statistics.median(ratios)
        print(f"speed vs torchinfo: median {mid:.1f}×, minimum {low:.1f}× "
              "(goal: median ≥ 15×, every model ≥ 5×)")
        ok = ok and low >= 5 and mid >= 15
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed calls per measurement (median)")
    parser.add_argument("--skip-real", action="store_true", help="skip torchinfo's real forward pass")
    parser.add_argument("--no-zoo", action="store_true", help="skip the zoo table")
    parser.add_argument("--zoo-only", action="store_true", help="only the zoo table")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    try:
        import torchinfo
    except ImportError:
        torchinfo = None
        print("torchinfo is not installed (pip install torchinfo): timing trainlab only")

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; median of {args.repeat} calls")
    if args.zoo_only:
        ok = zoo_table(args.repeat, torchinfo)
        print("\nzoo speed goal met" if ok else "\nzoo speed goal NOT met on this run")
        return
    print(
        f"{'model':<10} {'trainlab':>10} {'torchinfo':>10} {'ratio':>7} {'torchinfo meta':>15} {'ratio':>7}"
    )
    ok = True
    for name, factory in [("VGG-16", vgg16), ("ResNet-50", resnet50)]:
        torch.manual_seed(0)
        model = factory()
        ours = median_seconds(lambda m=model: summary(m, (3, 224, 224)), args.repeat)
        real = meta = float("nan")
        if torchinfo is not None:
            if not args.skip_real:
                real = median_seconds(
                    lambda m=model: torchinfo.summary(m, input_size=(1, 3, 224, 224), verbose=0),
                    max(1, args.repeat // 2),
                )
            copies = [copy.deepcopy(model) for _ in range(args.repeat + 1)]
            meta = median_seconds(
                lambda cs=copies: torchinfo.summary(
                    cs.pop(), input_size=(1, 3, 224, 224), device="meta", verbose=0
                ),
                args.repeat,
            )
            del copies
        r_real, r_meta = real / ours, meta / ours
        ok &= not (r_meta < 10 or r_real < 10)
        print(
            f"{name:<10} {ours * 1e3:8.1f}ms {real * 1e3:8.1f}ms {r_real:6.1f}× "
            f"{meta * 1e3:13.1f}ms {r_meta:6.1f}×"
        )

    print("\ntrainlab peak memory, 224² vs 2048² input (goal: ratio ≤ 1.2)")
    print(f"{'model':<10} {'measure':<26} {'224²':>9} {'2048²':>9} {'ratio':>7}")
    for name, factory in [("VGG-16", vgg16), ("ResNet-50", resnet50)]:
        model = factory()
        summary(model, (3, 64, 64))  # warm-up: imports, caches
        for label, measure in [
            ("peak RSS growth (VmHWM)", peak_rss_growth_mib),
            ("tracemalloc peak", tracemalloc_peak_mib),
        ]:
            small = measure(lambda m=model: summary(m, (3, 224, 224)))
            big = measure(lambda m=model: summary(m, (3, 2048, 2048)))
            if small is None or big is None:
                print(f"{name:<10} {label:<26} {'n/a':>9}")
                continue
            ratio = big / small if small > 0 else float("inf") if big > 0 else 1.0
            print(f"{name:<10} {label:<26} {small:7.2f}MB {big:7.2f}MB {ratio:6.2f}×")
    if not args.no_zoo:
        ok &= zoo_table(args.repeat, torchinfo)
    print("\nspeed goal met" if ok else "\nspeed goal NOT met on this run")


if __name__ == "__main__":
    main()
