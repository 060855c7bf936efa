#!/usr/bin/python3
"""The Keras "simple MNIST convnet" in PyTorch, for comparison with nabla.

  Conv2d(1, 32, 3) -> ReLU -> MaxPool2d(2) -> Conv2d(32, 64, 3) -> ReLU -> MaxPool2d(2)
  -> Flatten -> Dropout(0.5) -> Linear(1600, 10) logits; cross-entropy from logits;
  Adam(lr 1e-3, betas 0.9/0.999, eps 1e-7 as Keras); Keras's initialisation
  (Glorot-uniform kernels, zero biases).

Usage (Debian's python3-torch lives under /usr/bin/python3):
  cnn_pytorch.py train --batch 32 --threads 1 [--samples 6400] [--epochs 3]
      samples/s of training on synthetic data (uniform pixels, random labels): the
      median epoch after the first; prints one key=value line like bench_cnn
      (cpu_samples_per_s: per second of the process's CPU time)
  cnn_pytorch.py infer --batch 1000 --threads 1 [--samples 10000] [--epochs 3]
      samples/s of inference (eval mode, no_grad), best pass
  cnn_pytorch.py fit --data /usr/share/datasets/fashion-mnist [--epochs 5] [--batch 32]
                     [--seed 1] [--threads 2]
      trains on the real IDX files (pixels / 255), prints the test accuracy and
      the training time, like `mnist train --arch cnn`
"""
import argparse
import gzip
import os
import statistics
import struct
import sys
import time

import torch
import torch.nn as nn


def make_model():
    m = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                      nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.5), nn.Linear(1600, 10))
    for layer in m:
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    return m


def make_optimizer(m):
    return torch.optim.Adam(m.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)


def train_epochs(model, opt, x, y, batch, epochs, on_epoch=None):
    """Shuffled epochs of training; returns each epoch's (wall, CPU) seconds."""
    lossf = nn.CrossEntropyLoss()
    model.train()
    times = []
    n = x.shape[0]
    for e in range(epochs):
        perm = torch.randperm(n)
        t0, c0 = time.perf_counter(), time.process_time()
        for s in range(0, n, batch):
            idx = perm[s:s + batch]
            opt.zero_grad()
            loss = lossf(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
        times.append((time.perf_counter() - t0, time.process_time() - c0))
        if on_epoch:
            on_epoch(e, times[-1][0])
    return times


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return torch.frombuffer(bytearray(data[4 + 4 * ndim:]), dtype=torch.uint8).reshape(dims)


def load_set(folder, prefix):
    def find(stem):
        for name in (stem, stem + ".gz"):
            if os.path.exists(os.path.join(folder, name)):
                return os.path.join(folder, name)
        raise SystemExit(f"cnn_pytorch: no {stem}[.gz] in {folder}")
    x = read_idx(find(prefix + "-images-idx3-ubyte")).float().div_(255.0).unsqueeze(1)  # (n, 1, 28, 28)
    y = read_idx(find(prefix + "-labels-idx1-ubyte")).long()
    return x, y


def cmd_fit(a):
    torch.manual_seed(a.seed)
    x, y = load_set(a.data, "train")
    xt, yt = load_set(a.data, "t10k")
    model = make_model()
    opt = make_optimizer(model)
    t0 = time.perf_counter()
    train_epochs(model, opt, x, y, a.batch, a.epochs,
                 lambda e, dt: print(f"epoch {e + 1}/{a.epochs}: {dt:.1f} s", flush=True))
    secs = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(xt[s:s + 1000]).argmax(1) == yt[s:s + 1000]).sum()) for s in range(0, len(yt), 1000))
    print(f"torch fit batch={a.batch} seed={a.seed} threads={a.threads} epochs={a.epochs} train_s={secs:.1f} "
          f"test_accuracy={correct / len(yt):.4f}")


def settle_allocator():
    """Put glibc's allocator in the state a real training script reaches: reading
    a data set frees mmap'ed buffers of several MB, and each such free raises
    malloc's dynamic mmap threshold to the buffer's size (when under 32 MB), so
    PyTorch's per-step activations of a few MB then come from the heap instead
    of fresh mmap'ed, page-faulted memory. Without it this model trains 3-5x
    slower on synthetic data than in `fit` on the real files."""
    buf = bytearray(24 << 20)  # above any activation of this model at batch 128
    del buf


def cmd_bench(a):
    settle_allocator()
    torch.manual_seed(0)
    x = torch.rand(a.samples, 1, 28, 28)
    model = make_model()
    if a.mode == "train":
        y = torch.randint(0, 10, (a.samples,))
        times = train_epochs(model, make_optimizer(model), x, y, a.batch, a.epochs)
        times = times[1:] if len(times) > 1 else times
        dt = statistics.median(t[0] for t in times)
        dc = statistics.median(t[1] for t in times)
    else:
        model.eval()
        with torch.no_grad():
            model(x[:a.batch])
            dt = dc = float("inf")
            for _ in range(a.epochs):
                t0, c0 = time.perf_counter(), time.process_time()
                for s in range(0, a.samples, a.batch):
                    model(x[s:s + a.batch])
                dt = min(dt, time.perf_counter() - t0)
                dc = min(dc, time.process_time() - c0)
    print(f"torch {a.mode} model=cnn batch={a.batch} threads={a.threads} epoch_s={dt:.4f} "
          f"samples_per_s={a.samples / dt:.0f} cpu_samples_per_s={a.samples / dc:.0f}")


def main():
    ap = argparse.ArgumentParser(description="the Keras simple MNIST convnet in PyTorch")
    ap.add_argument("mode", choices=["train", "infer", "fit"])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--samples", type=int, default=6400)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.epochs is None:
        a.epochs = 5 if a.mode == "fit" else 3
    if a.mode == "fit":
        cmd_fit(a)
    else:
        cmd_bench(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
