#!/usr/bin/python3
"""PyTorch CPU baseline: MNIST MLP training speed.

Reads the four MNIST IDX .gz files itself (numpy), keeps the whole data set
in memory as tensors, trains an MLP (784-h1-h2-...-10, ReLU) with Adam and
CrossEntropyLoss, and prints one JSON line per epoch plus a JSON summary.

  /usr/bin/python3 train_mnist.py --threads 1 --epochs 15 --hidden 128,64 \
      --batch 64 --data DIR

Timing: "epoch_seconds" covers only the training loop of that epoch
(shuffle + forward/backward/step over all batches); test evaluation is run
after the clock stops and is not included in any training time.
"""
import argparse
import ctypes
import gzip
import json
import os
import statistics
import sys
import time


def _threads_from_argv(argv):
    for i, v in enumerate(argv):
        if v == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if v.startswith("--threads="):
            return v.split("=", 1)[1]
    return "1"


# torch.set_num_threads() only sizes torch's OpenMP pool. Debian's torch calls
# the system BLAS (libblas.so.3 -> OpenBLAS pthread), whose own thread pool
# defaults to all cores. Pin both to --threads, before torch is imported.
_T = _threads_from_argv(sys.argv)
os.environ["OMP_NUM_THREADS"] = _T
os.environ["OPENBLAS_NUM_THREADS"] = _T

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

IMAGES_MAGIC = 2051  # 0x00000803: unsigned byte, 3 dims
LABELS_MAGIC = 2049  # 0x00000801: unsigned byte, 1 dim


def read_idx_images(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 16:
        raise ValueError(f"{path}: too short for an IDX image header")
    magic, n, rows, cols = np.frombuffer(raw, dtype=">i4", count=4, offset=0)
    if magic != IMAGES_MAGIC:
        raise ValueError(f"{path}: bad magic {magic}, want {IMAGES_MAGIC}")
    if len(raw) != 16 + int(n) * int(rows) * int(cols):
        raise ValueError(f"{path}: size {len(raw)} does not match header "
                         f"{n}x{rows}x{cols}")
    a = np.frombuffer(raw, dtype=np.uint8, offset=16)
    return a.reshape(int(n), int(rows) * int(cols))


def read_idx_labels(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: too short for an IDX label header")
    magic, n = np.frombuffer(raw, dtype=">i4", count=2, offset=0)
    if magic != LABELS_MAGIC:
        raise ValueError(f"{path}: bad magic {magic}, want {LABELS_MAGIC}")
    if len(raw) != 8 + int(n):
        raise ValueError(f"{path}: size {len(raw)} does not match header n={n}")
    a = np.frombuffer(raw, dtype=np.uint8, offset=8)
    if a.max() > 9:
        raise ValueError(f"{path}: label > 9")
    return a


def load_split(data_dir, prefix):
    x = read_idx_images(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    y = read_idx_labels(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{prefix}: {x.shape[0]} images but {y.shape[0]} labels")
    if x.shape[1] != 784:
        raise ValueError(f"{prefix}: images are not 28x28")
    xt = torch.from_numpy(x.astype(np.float32) / np.float32(255.0))
    yt = torch.from_numpy(y.astype(np.int64))
    return xt.contiguous(), yt.contiguous()


def build_model(hidden):
    layers, d = [], 784
    for h in hidden:
        layers += [nn.Linear(d, h), nn.ReLU()]
        d = h
    layers.append(nn.Linear(d, 10))
    return nn.Sequential(*layers)


@torch.no_grad()
def accuracy(model, x, y, chunk=10000):
    model.eval()
    correct = 0
    for i in range(0, x.shape[0], chunk):
        correct += (model(x[i:i + chunk]).argmax(1) == y[i:i + chunk]).sum().item()
    model.train()
    return correct / x.shape[0]


def openblas_info(threads):
    try:
        ob = ctypes.CDLL("libopenblas.so.0")
    except OSError:
        return {"openblas": None}
    ob.openblas_set_num_threads(int(threads))
    ob.openblas_get_corename.restype = ctypes.c_char_p
    ob.openblas_get_config.restype = ctypes.c_char_p
    return {
        "openblas_threads": ob.openblas_get_num_threads(),
        "openblas_core": ob.openblas_get_corename().decode(),
        "openblas_config": ob.openblas_get_config().decode(),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--hidden", default="128,64",
                   help="comma-separated hidden layer widths")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", required=True,
                   help="folder holding the four MNIST *-ubyte.gz files")
    a = p.parse_args()
    hidden = [int(h) for h in a.hidden.split(",") if h.strip()]

    torch.set_num_threads(a.threads)
    blas = openblas_info(a.threads)
    torch.manual_seed(a.seed)

    xtr, ytr = load_split(a.data, "train")
    xte, yte = load_split(a.data, "t10k")

    model = build_model(hidden)
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    gen = torch.Generator().manual_seed(a.seed)

    print(json.dumps({
        "config": {
            "threads": a.threads, "epochs": a.epochs, "hidden": hidden,
            "batch": a.batch, "lr": a.lr, "seed": a.seed,
            "train": int(xtr.shape[0]), "test": int(xte.shape[0]),
            "torch": torch.__version__, "numpy": np.__version__,
            "torch_threads": torch.get_num_threads(),
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
            "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE"),
            **blas,
        }
    }), flush=True)

    n = xtr.shape[0]
    epoch_secs, cum, hit = [], 0.0, {"97.5": None, "98.0": None}
    acc = best = None
    for epoch in range(1, a.epochs + 1):
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, a.batch):
            idx = perm[i:i + a.batch]
            xb = xtr.index_select(0, idx)
            yb = ytr.index_select(0, idx)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
        dt = time.perf_counter() - t0
        epoch_secs.append(dt)
        cum += dt
        acc = accuracy(model, xte, yte)  # not timed
        best = acc if best is None else max(best, acc)
        for k in hit:
            if hit[k] is None and acc >= float(k) / 100.0:
                hit[k] = round(cum, 3)
        print(json.dumps({"epoch": epoch, "epoch_seconds": round(dt, 3),
                          "cumulative_seconds": round(cum, 3),
                          "test_accuracy": round(acc, 4)}), flush=True)

    rest = epoch_secs[1:]
    print(json.dumps({"summary": {
        "threads": a.threads, "hidden": hidden, "batch": a.batch,
        "epochs": a.epochs,
        "median_epoch_seconds_excl_first":
            round(statistics.median(rest), 3) if rest else None,
        "first_epoch_seconds": round(epoch_secs[0], 3) if epoch_secs else None,
        "total_train_seconds": round(cum, 3),
        "seconds_to_97.5": hit["97.5"],
        "seconds_to_98.0": hit["98.0"],
        "final_test_accuracy": round(acc, 4) if acc is not None else None,
        "best_test_accuracy": round(best, 4) if best is not None else None,
    }}), flush=True)


if __name__ == "__main__":
    main()
