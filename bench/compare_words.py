#!/usr/bin/env python3
"""Training speed of the words example's models, nabla against PyTorch, alternated in one run.

Usage: python3 bench/compare_words.py [--words-exe build/examples/words/words] [--rounds 3]
           [--mlp-steps 2000] [--transformer-steps 100] [--threads 1,2]

For each model (mlp: batch 32, transformer: batch 64) and thread count, runs
`words train` (nabla) and bench/words_pytorch.py (PyTorch, under /usr/bin/python3
where Debian's python3-torch lives) one after the other, `rounds` times, and
prints the medians of the samples/s each reports for its training steps (data
loading and evaluation excluded) and their ratio. Both sides get the same
BLIS_ARCH_TYPE: the value in the environment, or else the one nabla's library
picks by itself (0, BLIS's Skylake-X kernels, on a CPU with AVX-512 F/DQ/BW/VL;
unset otherwise), so neither runs BLIS's slow generic kernels while the other
runs the fast ones. It is printed with the results.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def nabla_blis_arch():
    """BLIS_ARCH_TYPE as nabla's library constructor would set it when unset."""
    if "BLIS_ARCH_TYPE" in os.environ:
        return os.environ["BLIS_ARCH_TYPE"]
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return None
    return "0" if all(x in flags for x in ("avx512f", "avx512dq", "avx512bw", "avx512vl")) else None


def samples_per_s(cmd, env):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    for line in out.splitlines():
        if line.startswith("trained ") and "samples/s" in line:
            return float(line.split(": ", 1)[1].split()[0])
    raise RuntimeError(f"no 'trained ... samples/s' line from {' '.join(cmd)}:\n{out}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--words-exe", default=os.path.join(HERE, "..", "build", "examples", "words", "words"))
    ap.add_argument("--python", default="/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--mlp-steps", type=int, default=2000)
    ap.add_argument("--transformer-steps", type=int, default=100)
    ap.add_argument("--threads", default="1,2")
    a = ap.parse_args()
    if not os.path.exists(a.words_exe):
        print(f"compare_words: {a.words_exe} not found; build first (meson compile -C build)")
        return 1
    if subprocess.run([a.python, "-c", "import torch"], capture_output=True).returncode != 0:
        print(f"compare_words: PyTorch is not importable by {a.python} (apt-get install python3-torch); skipping")
        return 0
    env = dict(os.environ)
    arch = nabla_blis_arch()
    if arch is not None:
        env["BLIS_ARCH_TYPE"] = arch
    print(f"BLIS_ARCH_TYPE={arch if arch is not None else '(unset: BLIS chooses)'} for both; {os.cpu_count()} cpus; "
          f"{a.rounds} alternated rounds, medians; training steps only")
    print(f"{'model':12} {'batch':>5} {'steps':>6} {'thr':>3} {'nabla samples/s':>16} {'torch samples/s':>16} "
          f"{'ratio':>6}")
    tmp = tempfile.mkdtemp(prefix="compare_words_")
    model_file = os.path.join(tmp, "bench.nb")
    for model, batch, steps in (("mlp", 32, a.mlp_steps), ("transformer", 64, a.transformer_steps)):
        for threads in (int(t) for t in a.threads.split(",")):
            nb, tr = [], []
            common = ["--model", model, "--steps", str(steps), "--batch", str(batch), "--threads", str(threads)]
            for r in range(a.rounds):
                nb.append(samples_per_s([a.words_exe, "train", "--seed", str(r + 1), "--model-file", model_file]
                                        + common, env))
                tr.append(samples_per_s([a.python, os.path.join(HERE, "words_pytorch.py"), "--seed", str(r + 1)]
                                        + common, env))
            x, y = statistics.median(nb), statistics.median(tr)
            print(f"{model:12} {batch:5d} {steps:6d} {threads:3d} {x:16.0f} {y:16.0f} {x / y:5.2f}x", flush=True)
    try:
        os.remove(model_file)
        os.rmdir(tmp)
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
