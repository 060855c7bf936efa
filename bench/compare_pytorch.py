#!/usr/bin/env python3
"""Compare nabla with PyTorch on the same MLPs, fairly, alternating the two in one run.

Usage: python3 bench/compare_pytorch.py [--nabla build/bench/bench_mlp] [--rounds 3] [--quick]
                                        [--mnist build/examples/mnist/mnist] [--no-mnist]

Runs when PyTorch is importable (Debian's python3-torch, which lives under
/usr/bin/python3); otherwise it says so and exits 0.

Fairness:
- Same matrix kernels. nabla selects BLIS's kernel set itself (on AVX-512 CPUs
  Debian's BLIS would otherwise fall back to its slow generic kernels); PyTorch
  reaches BLIS through the system BLAS (libblas.so.3) and would get the generic
  ones. The script asks nabla which set it uses (`bench_mlp --mode kernels`) and
  runs every PyTorch measurement with the same BLIS_ARCH_TYPE, then checks that
  both reach the same GEMM speed (512^3). When PyTorch's BLAS is not BLIS
  (OpenBLAS, MKL) the header says which, and the kernels are that library's.
- Same threads. nabla's thread count is --threads; PyTorch gets
  torch.set_num_threads(N), and for its BLIS GEMMs BLIS_NUM_THREADS (which
  set_num_threads does not reach): with N > 1 it runs with both 1 and N BLIS
  threads and keeps the faster, so PyTorch is shown at its best.
- Each measurement is a fresh process (nabla's bench_mlp, or this script as a
  PyTorch worker), nabla and PyTorch alternated, `rounds` times; medians.
- Data are synthetic (uniform pixels, random labels) with MNIST's shapes.

The whole-process view then runs the real 5-epoch Fashion-MNIST training
(`mnist train`, and bench/mnist_pytorch.py, the same model in PyTorch) under
/usr/bin/time -v: wall time, peak resident memory and test accuracy.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
N_SAMPLES = 60000


def reexec_with_torch():
    """The pyenv python on PATH may lack torch while Debian's python3 has it."""
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        pass
    if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") \
            and not os.environ.get("NB_COMPARE_REEXEC"):
        os.environ["NB_COMPARE_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    return False


# ---- the PyTorch side (runs in a worker process: --worker ...) -------------------

def mlp(torch, layers):
    mods = []
    for i in range(len(layers) - 1):
        mods.append(torch.nn.Linear(layers[i], layers[i + 1]))
        if i < len(layers) - 2:
            mods.append(torch.nn.ReLU())
    return torch.nn.Sequential(*mods)


def torch_train(torch, layers, batch, samples, epochs):
    """samples/s of Adam training (Keras defaults, eps 1e-7): the median epoch after the first."""
    torch.manual_seed(0)
    model = mlp(torch, layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    lossf = torch.nn.CrossEntropyLoss()
    x = torch.rand(samples, layers[0])
    y = torch.randint(0, layers[-1], (samples,))
    times = []
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
        times.append(time.perf_counter() - t0)
    times = times[1:] if len(times) > 1 else times
    return samples / statistics.median(times)


def torch_infer(torch, layers, batch, samples, epochs):
    """samples/s of the forward pass in batches of `batch`: the best of `epochs` passes."""
    model = mlp(torch, layers).eval()
    x = torch.rand(samples, layers[0])
    best = None
    with torch.no_grad():
        model(x[:batch])
        for _ in range(epochs):
            t0 = time.perf_counter()
            for s in range(0, samples, batch):
                model(x[s:s + batch])
            dt = time.perf_counter() - t0
            best = dt if best is None else min(best, dt)
    return samples / best


def torch_blas():
    """(kind, path): the BLAS library mapped into this process after a product."""
    paths = []
    with open("/proc/self/maps") as f:
        for line in f:
            p = line.split()[-1] if len(line.split()) >= 6 else ""
            base = os.path.basename(p).lower()
            if p not in paths and re.search(r"blas|blis|mkl", base):
                paths.append(p)
    real = [os.path.realpath(p) for p in paths]
    text = " ".join(real).lower()
    kind = "BLIS" if "blis" in text else "OpenBLAS" if "openblas" in text else "MKL" if "mkl" in text else \
        "a BLAS" if real else "none found"
    return kind, ",".join(real) or "-"


def torch_sgemm_gflops(torch, n=512):
    """Best of three medians of nine products, after a warm-up: one slow median
    (seen: a third of the speed in one process of three) does not decide."""
    a, b = torch.rand(n, n), torch.rand(n, n)
    for _ in range(3):
        torch.mm(a, b)
    best = float("inf")
    for _ in range(3):
        ts = []
        for _ in range(9):
            t0 = time.perf_counter()
            torch.mm(a, b)
            ts.append(time.perf_counter() - t0)
        best = min(best, statistics.median(ts))
    return 2.0 * n ** 3 / best * 1e-9


def worker(argv):
    """--worker MODE LAYERS BATCH THREADS SAMPLES EPOCHS: print one key=value line."""
    import torch
    mode, layers, batch, threads, samples, epochs = argv
    layers = [int(v) for v in layers.split(",")]
    batch, threads, samples, epochs = int(batch), int(threads), int(samples), int(epochs)
    torch.set_num_threads(threads)
    if mode == "info":
        g = torch_sgemm_gflops(torch)
        kind, path = torch_blas()
        info = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
        print(f"torch version={torch.__version__} blas={kind} blas_info={info.group(1) if info else '?'} "
              f"blas_path={path} sgemm512_gflops={g:.1f}")
        return 0
    f = torch_train if mode == "train" else torch_infer
    print(f"torch {mode} samples_per_s={f(torch, layers, batch, samples, epochs):.0f}")
    return 0


# ---- the driver -----------------------------------------------------------------

def fields(line):
    return dict(f.split("=", 1) for f in line.split() if "=" in f)


def run_line(cmd, env=None, prefix=None):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    for line in out.splitlines():
        if prefix is None or line.startswith(prefix):
            return fields(line)
    raise RuntimeError(f"{cmd[0]} printed no '{prefix}' line: {out}")


def nabla_run(exe, mode, layers, batch, threads, samples, epochs):
    cmd = [exe, "--mode", mode, "--layers", ",".join(map(str, layers)), "--batch", str(batch),
           "--threads", str(threads), "--samples", str(samples), "--epochs", str(epochs)]
    return float(run_line(cmd, prefix="nabla")["samples_per_s"])


def torch_env(arch_type, blis_threads):
    env = dict(os.environ)
    env.pop("NB_COMPARE_REEXEC", None)
    if arch_type != "unset":
        env["BLIS_ARCH_TYPE"] = arch_type
    if blis_threads:
        env["BLIS_NUM_THREADS"] = str(blis_threads)
        env["OMP_NUM_THREADS"] = str(blis_threads)
    return env


def torch_run(env, mode, layers, batch, threads, samples, epochs):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", mode, ",".join(map(str, layers)), str(batch),
           str(threads), str(samples), str(epochs)]
    return float(run_line(cmd, env=env, prefix="torch")["samples_per_s"])


def header(args):
    kern = run_line([args.nabla, "--mode", "kernels"], prefix="nabla")
    arch_type = kern["blis_arch_type"]
    env = torch_env(arch_type, 1)
    info = run_line([sys.executable, os.path.abspath(__file__), "--worker", "info", "1", "1", "1", "1", "1"],
                    env=env, prefix="torch")
    if info["blas"] == "BLIS":
        kernels = f"blis kernels: {kern['blis']} for both (BLIS_ARCH_TYPE={arch_type})"
    else:
        kernels = (f"blis kernels: nabla {kern['blis']}; PyTorch's BLAS is {info['blas']}, not BLIS "
                   f"(its own kernels; BLIS_ARCH_TYPE does not apply)")
    print(f"{kernels}; torch {info['version']} BLAS {info['blas']} ({info['blas_path']}, "
          f"BLAS_INFO={info['blas_info']})")
    ng, tg = float(kern["sgemm512_gflops"]), float(info["sgemm512_gflops"])
    same = abs(ng - tg) <= 0.15 * max(ng, tg)
    print(f"sgemm 512^3, 1 thread: nabla {ng:.1f} GFLOP/s, torch {tg:.1f} GFLOP/s "
          + ("(the same speed: the same kernels)" if same else "(NOT the same speed: the kernels or threads differ)"))
    peak = None
    exe = os.path.join(os.path.dirname(args.nabla), "bench_peak")
    if os.path.exists(exe):
        peak = float(run_line([exe], prefix="nabla")["gflops"])
        print(f"one core's float32 multiply-add peak (bench_peak): {peak:.1f} GFLOP/s")
    return arch_type, info["blas"] == "BLIS", peak


def flops_per_sample(layers, mode):
    """Multiply-adds of one sample's forward (x2 flops); training triples it."""
    f = 2.0 * sum(a * b for a, b in zip(layers, layers[1:]))
    return 3 * f if mode == "train" else f


def compare(args, arch_type, blis, peak):
    samples = 6000 if args.quick else N_SAMPLES
    mnist, wide = [784, 128, 10], [784, 1024, 1024, 10]
    configs = [("train", mnist, 32, 1), ("train", mnist, 32, 2), ("train", mnist, 128, 1), ("train", mnist, 128, 2),
               ("infer", mnist, 1000, 1), ("infer", mnist, 1000, 2), ("infer", mnist, 1, 1)]
    if not args.quick:
        configs += [("infer", mnist, 1, 2), ("train", wide, 256, 2)]
    print(f"{os.cpu_count()} cpus, {samples} samples (wide model: a tenth), {args.rounds} alternated rounds, medians; "
          f"torch BLIS threads: the faster of 1 and N")
    print(f"{'mode':6} {'model':16} {'batch':>5} {'thr':>3} {'nabla samples/s':>16} {'torch samples/s':>16} "
          f"{'ratio':>6}  torch BLIS thr")
    chosen = {}
    for mode, layers, batch, threads in configs:
        n_samp = samples if layers is mnist else max(samples // 10, batch)
        if batch == 1:
            n_samp = min(n_samp, 20000)
        epochs = 3 if mode == "train" else 5
        variants = sorted({1, threads}) if blis else [0]
        nb, tr = [], {v: [] for v in variants}
        for _ in range(args.rounds):
            nb.append(nabla_run(args.nabla, mode, layers, batch, threads, n_samp, epochs))
            for v in variants:
                tr[v].append(torch_run(torch_env(arch_type, v), mode, layers, batch, threads, n_samp, epochs))
        best = max(variants, key=lambda v: statistics.median(tr[v]))
        chosen[(mode, tuple(layers), batch, threads)] = best
        a, b = statistics.median(nb), statistics.median(tr[best])
        model = "-".join(map(str, layers))
        extra = f"  ({1e6 / a:.1f} vs {1e6 / b:.1f} us per sample)" if batch == 1 else ""
        if mode == "infer" and batch > 1:  # where the hardware puts the ceiling
            f = flops_per_sample(layers, mode) * 1e-9
            extra = f"  ({a * f:.0f} vs {b * f:.0f} GFLOP/s"
            if peak:
                extra += f"; the cores' peak is {peak * threads / (b * f):.2f}x torch's"
            extra += ")"
        print(f"{mode:6} {model:16} {batch:5d} {threads:3d} {a:16.0f} {b:16.0f} {a / b:5.2f}x  "
              f"{best if blis else '-'}{extra}", flush=True)
    return chosen


def timed(cmd, env=None):
    """(wall s, peak RSS MB, stdout) of cmd under /usr/bin/time -v."""
    r = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr[-2000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", r.stderr).group(1)
    secs = 0.0
    for part in wall.split(":"):
        secs = secs * 60 + float(part)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1)) / 1024
    return secs, rss, r.stdout


def accuracy(text):
    m = re.search(r"test accuracy: ([0-9.]+)", text)
    return float(m.group(1)) if m else float("nan")


def whole_process(args, arch_type, blis, chosen):
    data = args.data
    if not os.path.isdir(data):
        print(f"\nwhole process: {data} not found (scripts/setup.sh installs Debian's dataset-fashion-mnist); skipped")
        return
    if not os.path.exists("/usr/bin/time"):
        print("\nwhole process: /usr/bin/time not found (apt-get install time); skipped")
        return
    if not os.path.exists(args.mnist):
        print(f"\nwhole process: {args.mnist} not found; build first; skipped")
        return
    model = f"/tmp/compare_pytorch_{os.getpid()}.nb"
    print(f"\nwhole process: 5 epochs of Fashion-MNIST, 784-128-10, Adam, batch 32, then the test set; "
          f"/usr/bin/time -v, {args.rounds} alternated rounds, medians")
    print(f"{'thr':>3} {'nabla wall s':>12} {'torch wall s':>12} {'ratio':>6} {'nabla RSS MB':>12} "
          f"{'torch RSS MB':>12} {'nabla acc':>9} {'torch acc':>9}")
    for threads in (1, 2):
        rows = []
        for _ in range(args.rounds):
            n = timed([args.mnist, "train", "--data", data, "--threads", str(threads), "--verbose", "0",
                       "--model", model])
            # PyTorch's BLIS threads: the faster setting of the batch-32 training comparison
            env = torch_env(arch_type, chosen.get(("train", (784, 128, 10), 32, threads), threads) if blis else 0)
            t = timed([sys.executable, os.path.join(HERE, "mnist_pytorch.py"), "--data", data, "--threads",
                       str(threads)], env=env)
            rows.append((n, t))
        nw, tw = statistics.median(r[0][0] for r in rows), statistics.median(r[1][0] for r in rows)
        nr, trss = statistics.median(r[0][1] for r in rows), statistics.median(r[1][1] for r in rows)
        print(f"{threads:3d} {nw:12.2f} {tw:12.2f} {tw / nw:5.1f}x {nr:12.0f} {trss:12.0f} "
              f"{accuracy(rows[-1][0][2]):9.4f} {accuracy(rows[-1][1][2]):9.4f}", flush=True)
    if os.path.exists(model):
        os.remove(model)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        return worker(sys.argv[2:])
    if not reexec_with_torch():
        print("compare_pytorch: PyTorch is not installed (apt-get install python3-torch); skipping the comparison")
        return 0
    root = os.path.join(HERE, "..")
    ap = argparse.ArgumentParser()
    ap.add_argument("--nabla", default=os.path.join(root, "build", "bench", "bench_mlp"))
    ap.add_argument("--mnist", default=os.path.join(root, "build", "examples", "mnist", "mnist"))
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="fewer samples and configurations (a smoke run)")
    ap.add_argument("--no-mnist", action="store_true", help="skip the whole-process MNIST runs")
    args = ap.parse_args()
    if not os.path.exists(args.nabla):
        print(f"compare_pytorch: {args.nabla} not found; build first (meson compile -C build)")
        return 1
    arch_type, blis, peak = header(args)
    chosen = compare(args, arch_type, blis, peak)
    if not args.no_mnist and not args.quick:
        whole_process(args, arch_type, blis, chosen)
    return 0


if __name__ == "__main__":
    sys.exit(main())
