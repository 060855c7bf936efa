#!/usr/bin/python3
"""Compare nabla with PyTorch on the Keras "simple MNIST convnet", alternating
the two in one run.

Usage: /usr/bin/python3 bench/compare_cnn.py [--nabla build/bench/bench_cnn] [--rounds 3]
           [--samples 1920] [--infer-samples 4000] [--threads 1,2] [--quick]

For every configuration (training at batch 32 and 128, inference at batch 1000,
each on 1 and 2 threads) it runs nabla's bench_cnn and bench/cnn_pytorch.py as
subprocesses, one after the other, `rounds` times, and prints the medians, the
range and nabla / PyTorch; "cpu ratio" is the same from per-process CPU time,
which leaves out the time other jobs held the cores (steadier on a shared
machine; with 2 threads it also counts spin-waiting). Both sides get the same
BLIS_ARCH_TYPE (Debian's PyTorch does its BLAS through the system BLAS, BLIS
when that is the selected alternative): the value nabla picks for itself when it is unset (see
"BLIS kernels" in core/base.c), or the one in the environment. Data are
synthetic, MNIST-shaped. Needs Debian's python3-torch (/usr/bin/python3);
says so and exits 0 without it.
"""
import argparse
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def fields(text, prefix):
    for line in text.splitlines():
        if line.startswith(prefix):
            return dict(f.split("=", 1) for f in line.split()[2:] if "=" in f)
    raise RuntimeError(f"no line starting with {prefix!r} in: {text}")


def run(cmd, env):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nabla", default=os.path.join(HERE, "..", "build", "bench", "bench_cnn"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--samples", type=int, default=1920, help="training samples per epoch (3 epochs, first dropped)")
    ap.add_argument("--infer-samples", type=int, default=4000)
    ap.add_argument("--quick", action="store_true", help="one thread count, fewer samples (a smoke run)")
    ap.add_argument("--threads", default="1,2", help="thread counts to compare (1,2)")
    args = ap.parse_args()
    try:
        import torch  # noqa: F401  (only to know it is there; the timing runs in a subprocess)
    except ImportError:
        print("compare_cnn: PyTorch is not installed (apt-get install python3-torch); skipping the comparison")
        return 0
    if not os.path.exists(args.nabla):
        print(f"compare_cnn: {args.nabla} not found; build first (meson compile -C build)")
        return 1
    env = dict(os.environ)
    arch = fields(run([args.nabla, "--mode", "arch"], env), "nabla arch")
    if not env.get("BLIS_ARCH_TYPE"):
        env["BLIS_ARCH_TYPE"] = arch["blis_arch_type"] or "0"
    arch = fields(run([args.nabla, "--mode", "arch"], env), "nabla arch")
    print(f"blis kernels: {arch['blis']} (BLIS_ARCH_TYPE={env['BLIS_ARCH_TYPE']}) for both")
    if args.quick:
        args.samples, args.infer_samples = 640, 2000
    threads = [1] if args.quick else [int(t) for t in args.threads.split(",")]
    configs = [("train", b, t) for b in (32, 128) for t in threads] + [("infer", 1000, t) for t in threads]
    torch_py = [sys.executable if "python3" in os.path.basename(sys.executable) else "/usr/bin/python3",
                os.path.join(HERE, "cnn_pytorch.py")]
    print(f"{args.rounds} rounds alternating nabla and torch; training {args.samples} samples x 3 epochs "
          f"(median of the last 2), inference {args.infer_samples} samples (best of 2 passes)")
    print(f"{'mode':6} {'batch':>5} {'thr':>3} {'nabla samples/s (range)':>26} {'torch samples/s (range)':>26} "
          f"{'ratio':>6} {'cpu ratio':>9} {'allocs/step':>11}")
    for mode, batch, thr in configs:
        nb, tr, nbc, trc, allocs = [], [], [], [], "-"
        samples, epochs = (args.samples, 3) if mode == "train" else (args.infer_samples, 2)
        common = ["--batch", str(batch), "--threads", str(thr), "--samples", str(samples), "--epochs", str(epochs)]
        for _ in range(args.rounds):
            f = fields(run([args.nabla, "--mode", mode] + common, env), "nabla " + mode)
            nb.append(float(f["samples_per_s"]))
            nbc.append(float(f["cpu_samples_per_s"]))
            allocs = f.get("allocs_per_step", allocs)
            f = fields(run(torch_py + [mode] + common, env), "torch " + mode)
            tr.append(float(f["samples_per_s"]))
            trc.append(float(f["cpu_samples_per_s"]))
        a, b = statistics.median(nb), statistics.median(tr)
        print(f"{mode:6} {batch:5d} {thr:3d} {a:9.0f} ({min(nb):6.0f}-{max(nb):6.0f}) "
              f"{b:9.0f} ({min(tr):6.0f}-{max(tr):6.0f}) {a / b:5.2f}x "
              f"{statistics.median(nbc) / statistics.median(trc):8.2f}x {allocs:>11}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
