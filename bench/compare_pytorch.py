#!/usr/bin/env python3
"""Compare nabla with PyTorch on the same MLPs, alternating the two in one run.

Usage: python3 bench/compare_pytorch.py [--nabla build/bench/bench_mlp] [--rounds 3] [--quick]

Runs when PyTorch is importable (Debian's python3-torch, which lives under
/usr/bin/python3); otherwise it says so and exits 0. For every configuration
(model, batch size, threads) it alternates nabla's bench_mlp (a subprocess) and
the same model in torch, `rounds` times, and prints the medians and the ratio.
Data are synthetic (uniform pixels, random labels), identical in shape to MNIST.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

try:
    import torch
except ImportError:
    # the pyenv python on PATH may lack torch while Debian's python3 has it
    if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") \
            and not os.environ.get("NB_COMPARE_REEXEC"):
        os.environ["NB_COMPARE_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    print("compare_pytorch: PyTorch is not installed (apt-get install python3-torch); skipping the comparison")
    sys.exit(0)

N_SAMPLES = 60000


def torch_train(layers, batch, threads, samples, epochs=1):
    """samples/s of Adam training (Keras defaults, eps 1e-7) over `samples` synthetic rows."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    mods = []
    for i in range(len(layers) - 1):
        mods.append(torch.nn.Linear(layers[i], layers[i + 1]))
        if i < len(layers) - 2:
            mods.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*mods)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    lossf = torch.nn.CrossEntropyLoss()
    x = torch.rand(samples, layers[0])
    y = torch.randint(0, layers[-1], (samples,))
    best = None
    for _ in range(epochs):
        perm = torch.randperm(samples)
        t0 = time.perf_counter()
        for s in range(0, samples, batch):
            idx = perm[s:s + batch]
            xb, yb = x[idx], y[idx]
            opt.zero_grad()
            loss = lossf(model(xb), yb)
            loss.backward()
            opt.step()
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    return samples / best


def torch_infer(layers, batch, threads, samples):
    torch.set_num_threads(threads)
    mods = []
    for i in range(len(layers) - 1):
        mods.append(torch.nn.Linear(layers[i], layers[i + 1]))
        if i < len(layers) - 2:
            mods.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*mods).eval()
    x = torch.rand(samples, layers[0])
    with torch.no_grad():
        model(x[:batch])
        t0 = time.perf_counter()
        for s in range(0, samples, batch):
            model(x[s:s + batch])
        dt = time.perf_counter() - t0
    return samples / dt


def nabla_run(exe, mode, layers, batch, threads, samples):
    cmd = [exe, "--mode", mode, "--layers", ",".join(map(str, layers)), "--batch", str(batch),
           "--threads", str(threads), "--samples", str(samples), "--epochs", "1"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        for field in line.split():
            if field.startswith("samples_per_s="):
                return float(field.split("=", 1)[1])
    raise RuntimeError("bench_mlp printed no samples_per_s: " + out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nabla", default=os.path.join(os.path.dirname(__file__), "..", "build", "bench", "bench_mlp"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="fewer samples and configurations (a smoke run)")
    args = ap.parse_args()
    if not os.path.exists(args.nabla):
        print(f"compare_pytorch: {args.nabla} not found; build first (meson compile -C build)")
        return 1
    samples = 6000 if args.quick else N_SAMPLES
    mnist = [784, 128, 10]
    wide = [784, 1024, 1024, 10]
    configs = [("train", mnist, 32, 1), ("train", mnist, 32, 2), ("train", mnist, 128, 2), ("infer", mnist, 1000, 2)]
    if not args.quick:
        configs += [("train", mnist, 128, 1), ("infer", mnist, 1000, 1), ("train", wide, 256, 2)]
    print(f"torch {torch.__version__}, {os.cpu_count()} cpus, {samples} samples, {args.rounds} rounds (medians)")
    print(f"{'mode':6} {'model':16} {'batch':>5} {'thr':>3} {'nabla samples/s':>16} {'torch samples/s':>16} {'ratio':>6}")
    for mode, layers, batch, threads in configs:
        nb, tr = [], []
        for _ in range(args.rounds):
            n_samp = samples if layers is mnist else max(samples // 10, batch)
            nb.append(nabla_run(args.nabla, mode, layers, batch, threads, n_samp))
            if mode == "train":
                tr.append(torch_train(layers, batch, threads, n_samp))
            else:
                tr.append(torch_infer(layers, batch, threads, n_samp))
        a, b = statistics.median(nb), statistics.median(tr)
        model = "-".join(map(str, layers))
        print(f"{mode:6} {model:16} {batch:5d} {threads:3d} {a:16.0f} {b:16.0f} {a / b:5.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
