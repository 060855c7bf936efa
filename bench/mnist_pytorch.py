#!/usr/bin/env python3
"""The mnist example's training run in PyTorch, for the whole-process comparison.

Usage: /usr/bin/python3 bench/mnist_pytorch.py [--data /usr/share/datasets/fashion-mnist]
                                              [--epochs 5] [--batch 32] [--threads 1] [--seed 42]

The same model and procedure as `mnist train`: Flatten -> Dense(128, relu) ->
Dense(10) logits with Keras's initialisation (Glorot-uniform kernels, zero
biases), sparse categorical cross-entropy from logits, Adam(0.001, eps 1e-7),
batch 32, 5 epochs, shuffled every epoch; the images stay bytes in memory and are
scaled to [0, 1] per batch, as nabla does. Then the test loss and accuracy.
Prints "trained N epochs in S s" and "test loss: L - test accuracy: A" like the
example; compare_pytorch.py runs both under /usr/bin/time -v.
"""
import argparse
import gzip
import os
import struct
import sys
import time

import torch


def read_idx(folder, stem):
    """An IDX file (plain or .gz) as a uint8 tensor of its shape."""
    path = os.path.join(folder, stem)
    opener = open
    if not os.path.exists(path):
        path, opener = path + ".gz", gzip.open
    with opener(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    if magic >> 8 != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    shape = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return torch.frombuffer(bytearray(data[4 + 4 * ndim:]), dtype=torch.uint8).reshape(shape)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    x_train = read_idx(args.data, "train-images-idx3-ubyte").reshape(-1, 784)
    y_train = read_idx(args.data, "train-labels-idx1-ubyte").long()
    x_test = read_idx(args.data, "t10k-images-idx3-ubyte").reshape(-1, 784)
    y_test = read_idx(args.data, "t10k-labels-idx1-ubyte").long()
    print(f"{len(x_train)} training and {len(x_test)} test images of 28x28")

    model = torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    for layer in (model[0], model[2]):
        torch.nn.init.xavier_uniform_(layer.weight)  # Keras's glorot_uniform
        torch.nn.init.zeros_(layer.bias)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    lossf = torch.nn.CrossEntropyLoss()
    n = len(x_train)
    t0 = time.perf_counter()
    for _ in range(args.epochs):
        perm = torch.randperm(n)
        for s in range(0, n, args.batch):
            idx = perm[s:s + args.batch]
            xb = x_train[idx].float() / 255.0
            opt.zero_grad()
            loss = lossf(model(xb), y_train[idx])
            loss.backward()
            opt.step()
    secs = time.perf_counter() - t0
    print(f"trained {args.epochs} epochs in {secs:.2f} s: {secs / args.epochs:.3f} s/epoch, "
          f"{n * args.epochs / secs:.0f} samples/s")
    with torch.no_grad():
        total_loss, correct = 0.0, 0
        for s in range(0, len(x_test), 1000):
            logits = model(x_test[s:s + 1000].float() / 255.0)
            total_loss += torch.nn.functional.cross_entropy(logits, y_test[s:s + 1000], reduction="sum").item()
            correct += (logits.argmax(1) == y_test[s:s + 1000]).sum().item()
    print(f"test loss: {total_loss / len(x_test):.4f} - test accuracy: {correct / len(x_test):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
