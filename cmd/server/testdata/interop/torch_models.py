"""PyTorch side of cmd/server's interop test (interop_test.go).

  torch_models.py build DIR   trains four MLPs briefly on DIR/train.f32 and DIR/train.labels, exports each with
                              torch.onnx.export to DIR/NAME.onnx, and writes PyTorch's class probabilities on
                              DIR/test.f32 to DIR/NAME.torch.f32
  torch_models.py check FILE  runs onnx.checker (with shape inference) on FILE

Inputs are little-endian float32 rows of 784 pixels in 0..1; labels are one byte each. It prints one JSON line
per model or file. Run it with Debian's /usr/bin/python3 (python3-torch, python3-onnx).
"""
import json
import sys

import numpy as np


def build(d):
    import torch
    import torch.nn as nn

    class View(nn.Module):
        """x.view(x.size(0), -1), which exports as Shape, Gather, Unsqueeze and Concat computing a Reshape's target."""

        def forward(self, x):
            return x.view(x.size(0), -1)

    torch.manual_seed(1)
    xs = torch.from_numpy(np.fromfile(f"{d}/train.f32", dtype="<f4").reshape(-1, 784))
    ys = torch.from_numpy(np.fromfile(f"{d}/train.labels", dtype=np.uint8).astype(np.int64))
    tx = torch.from_numpy(np.fromfile(f"{d}/test.f32", dtype="<f4").reshape(-1, 784))
    # name: (network, input shape of one example, opset, whether its last module turns logits into the output)
    models = {
        "relu-softmax": (nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                                       nn.Linear(64, 10), nn.Softmax(dim=1)), (784,), 17, True),
        "tanh-logits": (nn.Sequential(nn.Linear(784, 300), nn.Tanh(), nn.Linear(300, 100), nn.Tanh(),
                                      nn.Linear(100, 10)), (784,), 13, False),
        "flatten-1x28x28": (nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Dropout(0.2),
                                          nn.Linear(64, 10), nn.LogSoftmax(dim=1)), (1, 28, 28), 11, True),
        "view-1x28x28": (nn.Sequential(View(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10), nn.Softmax(dim=1)),
                         (1, 28, 28), 9, True),
    }
    for name, (m, shape, opset, final) in models.items():
        logits = m[:-1] if final else m
        opt = torch.optim.Adam(m.parameters(), lr=1e-3)
        m.train()
        for _ in range(2):
            perm = torch.randperm(len(xs))
            for i in range(0, len(xs), 64):
                idx = perm[i:i + 64]
                loss = nn.functional.cross_entropy(logits(xs[idx].reshape(-1, *shape)), ys[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        m.eval()
        torch.onnx.export(m, torch.zeros(1, *shape), f"{d}/{name}.onnx", input_names=["input"],
                          output_names=["output"], dynamic_axes={"input": {0: "N"}, "output": {0: "N"}},
                          opset_version=opset)
        with torch.no_grad():
            x = tx.reshape(-1, *shape)
            # What a PyTorch user takes as the probabilities: the softmax the model ends with, else the softmax of
            # its logits (LogSoftmax's exp would add a rounding of its own).
            probs = m(x) if isinstance(m[-1], nn.Softmax) else torch.softmax(logits(x), dim=1)
            train_acc = (logits(xs.reshape(-1, *shape)).argmax(1) == ys).float().mean().item()
        probs.numpy().astype("<f4").tofile(f"{d}/{name}.torch.f32")
        print(json.dumps({"model": name, "torch": torch.__version__, "opset": opset,
                          "train_accuracy": round(train_acc, 4)}))


def check(path):
    import onnx

    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    print(json.dumps({"file": path, "onnx": onnx.__version__, "ir_version": m.ir_version,
                      "opset": m.opset_import[0].version, "checker": "ok"}))


if __name__ == "__main__":
    {"build": build, "check": check}[sys.argv[1]](sys.argv[2])
