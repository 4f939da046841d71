#!/usr/bin/python3
"""`cxrd model-run` into an OUTDIR that does not exist yet: the folder is created with its
parents and receives one .npy per graph output; an OUTDIR that cannot be created (under a
regular file) is an error naming it, with exit status 1.

Usage: model_run_outdir.py CXRD TOOLS_EXPORT_DIR WORK_DIR"""
import os
import shutil
import subprocess
import sys

import numpy as np

cxrd, tools, work = sys.argv[1:4]
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
model = os.path.join(work, "model.onnx")
subprocess.run(["/usr/bin/python3", os.path.join(tools, "test_model.py"), "--out", model,
                "--size", "32"], check=True, stdout=subprocess.DEVNULL)
image = os.path.join(work, "image.npy")
np.save(image, np.zeros((1, 1, 32, 32), dtype=np.float32))

outdir = os.path.join(work, "new", "deeper")
result = subprocess.run([cxrd, "model-run", model, image, outdir], capture_output=True)
assert result.returncode == 0, result.stderr
assert sorted(os.listdir(outdir)) == ["cam.npy", "probabilities.npy"], os.listdir(outdir)
probabilities = np.load(os.path.join(outdir, "probabilities.npy"))
assert probabilities.shape == (1, 11) and np.all((probabilities >= 0) & (probabilities <= 1))

blocker = os.path.join(work, "file")
open(blocker, "w").close()
result = subprocess.run([cxrd, "model-run", model, image, os.path.join(blocker, "out")],
                        capture_output=True)
assert result.returncode == 1, result.returncode
assert result.stderr.startswith(b"cxrd model-run: ") and b"/file" in result.stderr, result.stderr
print("cxrd model-run OUTDIR: ok")
