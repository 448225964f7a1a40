"""A "what a typical Python user would write" MNIST serving baseline for perceptron.

FastAPI + uvicorn + PIL + PyTorch, serving the same network as the Go server: the weights are read from
perceptron's model file (internal/model/default/mnist-mlp.pcpt by default, or $PCPT_MODEL).

  POST /predict  multipart/form-data, one or more file parts named "image"
                 -> {"predictions": [{"label", "index", "confidence", "probabilities": {"0": p, ...}}, ...]}
  POST /floor    reads the multipart image part(s), answers a constant JSON (framework + multipart cost only)

Preprocessing is deliberately the naive one: PIL convert("L"), plain resize to 28x28, /255. No polarity
detection, background removal, cropping or centring as the Go server does, so it is only correct for
MNIST-like input (white digit on black, already 28x28).

Run: OPENBLAS_NUM_THREADS=1 /usr/bin/python3 -m uvicorn server:app --host 127.0.0.1 --port 8000 --workers 1
"""
import os

# One BLAS / OpenMP thread per worker: must be set before torch (and its OpenBLAS) is loaded.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import hashlib
import io
import json
import struct
from typing import List

import numpy as np
import torch
from fastapi import FastAPI, File, HTTPException, UploadFile
from PIL import Image

torch.set_num_threads(1)

DEFAULT_MODEL = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                             "..", "..", "internal", "model", "default", "mnist-mlp.pcpt")
MAGIC = b"PCPTRON\n"


def load_pcpt(path):
    """Reads a perceptron model file (format version 1) into a torch nn.Sequential and its labels."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != MAGIC:
        raise ValueError(f"{path}: not a perceptron model (bad magic)")
    body, digest = data[:-32], data[-32:]
    if hashlib.sha256(body).digest() != digest:
        raise ValueError(f"{path}: SHA-256 checksum mismatch")
    version, hlen = struct.unpack_from("<II", data, 8)
    if version != 1:
        raise ValueError(f"{path}: format version {version}, expected 1")
    off = 16
    header = json.loads(data[off:off + hlen])
    off += hlen
    (count,) = struct.unpack_from("<Q", data, off)
    off += 8
    layers = header["layers"]
    if header.get("activation", "relu") != "relu":
        raise ValueError(f"{path}: activation {header.get('activation')}, this baseline only does relu")
    need = sum(i * o + o for i, o in zip(layers, layers[1:]))
    # A gate (a second network that answers "not a digit") follows the digit network's parameters; this baseline
    # serves the digit network alone, so it only checks that the gate's parameters account for the rest.
    gate = header.get("gate", {}).get("layers", [])
    extra = sum(i * o + o for i, o in zip(gate, gate[1:]))
    if count != need + extra or len(body) - off != 4 * (need + extra):
        raise ValueError(f"{path}: {count} parameters stored, {layers} (and gate {gate}) needs {need + extra}")
    params = np.frombuffer(body, dtype="<f4", count=need, offset=off)

    mods, p = [], 0
    for k, (i, o) in enumerate(zip(layers, layers[1:])):
        lin = torch.nn.Linear(i, o)
        w = params[p:p + i * o].reshape(i, o)  # In x Out, row-major
        p += i * o
        b = params[p:p + o]
        p += o
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w.T.copy()))  # torch stores Out x In
            lin.bias.copy_(torch.from_numpy(b.copy()))
        mods.append(lin)
        if k < len(layers) - 2:
            mods.append(torch.nn.ReLU())
    mods.append(torch.nn.Softmax(dim=1))
    model = torch.nn.Sequential(*mods).eval()
    return model, header["labels"], header


model, labels, header = load_pcpt(os.environ.get("PCPT_MODEL", DEFAULT_MODEL))
app = FastAPI(title="perceptron FastAPI baseline")


def to_input(raw: bytes) -> np.ndarray:
    try:
        img = Image.open(io.BytesIO(raw))
        img = img.convert("L").resize((28, 28))
    except Exception as e:  # PIL raises many kinds
        raise HTTPException(status_code=400, detail=f"cannot decode image: {e}")
    return np.asarray(img, dtype=np.float32).reshape(784) / 255.0


@app.post("/predict")
async def predict(image: List[UploadFile] = File(...)):
    x = np.stack([to_input(await f.read()) for f in image])
    with torch.inference_mode():
        probs = model(torch.from_numpy(x)).numpy()
    out = []
    for row in probs:
        i = int(row.argmax())
        out.append({
            "label": labels[i],
            "index": i,
            "confidence": float(row[i]),
            "probabilities": {labels[j]: float(v) for j, v in enumerate(row)},
        })
    return {"model": {"name": header.get("name"), "version": header.get("version")}, "predictions": out}


@app.post("/floor")
async def floor(image: List[UploadFile] = File(...)):
    for f in image:
        await f.read()
    return {"ok": True}
