"""Quick check that torch's CPU SGEMM goes through a fast BLAS (OpenBLAS).

Usage: /usr/bin/python3 matmul_check.py [--threads N] [--n 1024] [--reps 20]
Prints one JSON line with the best and median GFLOP/s of an NxN float32 matmul.
"""
import argparse, ctypes, json, os, statistics, sys, time

# torch.set_num_threads() sets only the OpenMP pool; Debian's OpenBLAS
# (pthread flavour) keeps its own pool, sized to all cores by default, so
# set it explicitly too (env before import, plus the runtime call).
_t = "1"
for i, v in enumerate(sys.argv):
    if v == "--threads" and i + 1 < len(sys.argv):
        _t = sys.argv[i + 1]
    elif v.startswith("--threads="):
        _t = v.split("=", 1)[1]
os.environ["OPENBLAS_NUM_THREADS"] = _t
os.environ["OMP_NUM_THREADS"] = _t
import torch

p = argparse.ArgumentParser()
p.add_argument("--threads", type=int, default=1)
p.add_argument("--n", type=int, default=1024)
p.add_argument("--reps", type=int, default=20)
a = p.parse_args()
torch.set_num_threads(a.threads)
ob = ctypes.CDLL("libopenblas.so.0")
ob.openblas_set_num_threads(a.threads)
ob.openblas_get_corename.restype = ctypes.c_char_p
g = torch.Generator().manual_seed(0)
x = torch.rand(a.n, a.n, generator=g)
y = torch.rand(a.n, a.n, generator=g)
for _ in range(3):
    torch.mm(x, y)
ts = []
for _ in range(a.reps):
    t0 = time.perf_counter()
    torch.mm(x, y)
    ts.append(time.perf_counter() - t0)
flop = 2.0 * a.n ** 3
print(json.dumps({
    "n": a.n, "torch_threads": torch.get_num_threads(),
    "openblas_threads": ob.openblas_get_num_threads(),
    "openblas_core": ob.openblas_get_corename().decode(),
    "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
    "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE"),
    "best_gflops": round(flop / min(ts) / 1e9, 1),
    "median_gflops": round(flop / statistics.median(ts) / 1e9, 1),
}))
