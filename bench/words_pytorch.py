#!/usr/bin/env python3
"""The words example's models in PyTorch, on the same data split, for comparison.

Usage: /usr/bin/python3 bench/words_pytorch.py [--model mlp|transformer] [--steps N] [--batch B]
           [--seed S] [--lr 0.001] [--threads N] [--init torch|keras] [--words FILE]

Reimplements examples/words: the word list's lines of lowercase a-z only (lines
with a byte >= 0x80 or over 64 bytes skipped), shuffled with nabla's generator
(PCG32, stream 54, Fisher-Yates as nb_rng_shuffle) seeded with 2003, the first
90 % (floor) for training; each word framed by '.', examples (the previous
`context` symbols, '.'-padded -> the next). Batches are drawn uniformly with
replacement (torch's generator, seeded with --seed). Adam(lr, eps 1e-7),
cross-entropy from logits. --init keras draws the weights as nabla does
(embeddings U[-0.05, 0.05], Glorot-uniform kernels and positions, zero biases);
--init torch keeps PyTorch's defaults. The last line is
"validation loss: X.XXXX nats/char"; the line before it gives the samples/s of
the training steps.
"""
import argparse
import math
import os
import sys
import time

try:
    import torch
except ImportError:
    if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") \
            and not os.environ.get("NB_COMPARE_REEXEC"):
        os.environ["NB_COMPARE_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    print("words_pytorch: PyTorch is not installed (apt-get install python3-torch)")
    sys.exit(1)

SPLIT_SEED = 2003
MASK64 = (1 << 64) - 1


class Pcg32:
    """nabla's nb_rng: PCG32 (XSH-RR), pcg32_srandom_r with stream 54."""

    def __init__(self, seed):
        self.state, self.inc = 0, (54 << 1) | 1
        self.next()
        self.state = (self.state + seed) & MASK64
        self.next()

    def next(self):
        old = self.state
        self.state = (old * 6364136223846793005 + self.inc) & MASK64
        xorshifted = (((old >> 18) ^ old) >> 27) & 0xFFFFFFFF
        rot = old >> 59
        return ((xorshifted >> rot) | (xorshifted << ((-rot) & 31))) & 0xFFFFFFFF

    def below(self, n):
        threshold = ((1 << 32) - n) % n
        while True:
            x = self.next()
            if x >= threshold:
                return x % n

    def shuffle(self, items):
        for i in range(len(items) - 1, 0, -1):
            j = self.below(i + 1)
            items[i], items[j] = items[j], items[i]


def read_words(path):
    with open(path, "rb") as f:
        data = f.read()
    words = []
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for line in lines:
        if line.endswith(b"\r"):
            line = line[:-1]
        if any(c >= 0x80 for c in line) or len(line) > 64:
            continue
        if line and all(97 <= c <= 122 for c in line):
            words.append(line.decode())
    return words


def examples(words, context):
    xs, ys = [], []
    for w in words:
        s = [0] * context + [ord(c) - 96 for c in w] + [0]
        for i in range(len(w) + 1):
            xs.append(s[i:i + context])
            ys.append(s[i + context])
    return torch.tensor(xs, dtype=torch.long), torch.tensor(ys, dtype=torch.long)


class Mlp(torch.nn.Module):
    """Bengio et al. 2003: Embedding(27, 16) -> Flatten -> Dense(256, tanh) -> Dense(27)."""
    context = 3

    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(27, 16)
        self.hidden = torch.nn.Linear(3 * 16, 256)
        self.out = torch.nn.Linear(256, 27)

    def forward(self, x):
        return self.out(torch.tanh(self.hidden(self.emb(x).flatten(1))))


class Block(torch.nn.Module):
    """Pre-LayerNorm: x + MHA(LN(x)) causal; x + Dense(64)(Dense(256, gelu)(LN(x)))."""

    def __init__(self, d=64, heads=4):
        super().__init__()
        self.ln1 = torch.nn.LayerNorm(d, eps=1e-5)
        self.attn = torch.nn.MultiheadAttention(d, heads, batch_first=True)
        self.ln2 = torch.nn.LayerNorm(d, eps=1e-5)
        self.up = torch.nn.Linear(d, 4 * d)
        self.down = torch.nn.Linear(4 * d, d)

    def forward(self, x, mask):
        a = self.ln1(x)
        x = x + self.attn(a, a, a, attn_mask=mask, need_weights=False)[0]
        return x + self.down(torch.nn.functional.gelu(self.up(self.ln2(x))))


class Transformer(torch.nn.Module):
    context = 16

    def __init__(self, d=64):
        super().__init__()
        self.tok = torch.nn.Embedding(27, d)
        self.pos = torch.nn.Parameter(torch.zeros(16, d))
        torch.nn.init.normal_(self.pos, std=0.02)
        self.blocks = torch.nn.ModuleList([Block(d), Block(d)])
        self.ln = torch.nn.LayerNorm(d, eps=1e-5)
        self.out = torch.nn.Linear(d, 27)
        self.register_buffer("mask", torch.triu(torch.ones(16, 16, dtype=torch.bool), 1))

    def forward(self, x):
        h = self.tok(x) + self.pos
        for b in self.blocks:
            h = b(h, self.mask)
        return self.out(self.ln(h)[:, -1])


def glorot_(w, fan_in, fan_out):
    lim = math.sqrt(6.0 / (fan_in + fan_out))
    torch.nn.init.uniform_(w, -lim, lim)


def keras_init(model):
    """nabla's (Keras's) initialisers: embeddings U[-0.05, 0.05], Glorot-uniform kernels
    (per projection for attention) and positions, zero biases, LayerNorm 1 / 0."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Embedding):
                torch.nn.init.uniform_(m.weight, -0.05, 0.05)
            elif isinstance(m, torch.nn.Linear):
                glorot_(m.weight, m.in_features, m.out_features)
                torch.nn.init.zeros_(m.bias)
            elif isinstance(m, torch.nn.MultiheadAttention):
                d = m.embed_dim
                for i in range(3):
                    glorot_(m.in_proj_weight[i * d:(i + 1) * d], d, d)
                torch.nn.init.zeros_(m.in_proj_bias)
        if isinstance(model, Transformer):
            glorot_(model.pos, 16, model.pos.shape[1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["mlp", "transformer"], default="mlp")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--init", choices=["torch", "keras"], default="torch")
    ap.add_argument("--words", default="/usr/share/dict/american-english")
    a = ap.parse_args()
    steps = a.steps or (20000 if a.model == "mlp" else 5000)
    batch = a.batch or (32 if a.model == "mlp" else 64)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    words = read_words(a.words)
    order = list(range(len(words)))
    Pcg32(SPLIT_SEED).shuffle(order)
    words = [words[i] for i in order]
    n_train = len(words) * 9 // 10
    model = Mlp() if a.model == "mlp" else Transformer()
    if a.init == "keras":
        keras_init(model)
    xt, yt = examples(words[:n_train], model.context)
    xv, yv = examples(words[n_train:], model.context)
    print(f"{len(words)} words: {n_train} training ({len(yt)} examples), {len(words) - n_train} validation "
          f"({len(yv)} examples); torch {torch.__version__}, {a.threads} thread(s), "
          f"BLIS_ARCH_TYPE={os.environ.get('BLIS_ARCH_TYPE', '(unset)')}")
    print(f"model: {a.model}, {sum(p.numel() for p in model.parameters())} weights, init {a.init}")

    opt = torch.optim.Adam(model.parameters(), lr=a.lr, eps=1e-7)
    lossf = torch.nn.CrossEntropyLoss()
    draws = torch.randint(0, len(yt), (steps, batch))
    t0 = time.perf_counter()
    running = 0.0
    for step in range(steps):
        idx = draws[step]
        loss = lossf(model(xt[idx]), yt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        running += loss.item()
        if (step + 1) % max(1, steps // 10) == 0:
            print(f"step {step + 1:6d}/{steps}  loss {running / max(1, steps // 10):.4f}  {time.perf_counter() - t0:.1f} s",
                  flush=True)
            running = 0.0
    secs = time.perf_counter() - t0
    print(f"trained {steps} steps in {secs:.2f} s: {steps * batch / secs:.0f} samples/s")
    model.eval()
    with torch.no_grad():
        total = 0.0
        for i in range(0, len(yv), 4096):
            total += torch.nn.functional.cross_entropy(model(xv[i:i + 4096]), yv[i:i + 4096], reduction="sum").item()
    print(f"validation loss: {total / len(yv):.4f} nats/char")
    return 0


if __name__ == "__main__":
    sys.exit(main())
