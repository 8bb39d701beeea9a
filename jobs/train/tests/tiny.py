"""Tiny generated datasets (bright rectangles on dark noise, PNG + COCO) and a trainer runner for the tests."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
from PIL import Image

TRAIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # jobs/train
CLASSES = [{"id": 1, "name": "building"}, {"id": 7, "name": "vehicle"}]
COLORS = {1: (250, 250, 250), 7: (40, 250, 40)}


def make_dataset(root, n_train=4, n_val=2, size=64, seed=0):
    """Writes <root>/images/*.png, train.json and val.json. Each image holds 1-2 rectangles; class
    'building' is white, 'vehicle' green; every third validation image is a negative (no objects)."""
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(root, "images"), exist_ok=True)
    for split, n in (("train", n_train), ("val", n_val)):
        images, annotations = [], []
        for i in range(n):
            arr = rng.integers(0, 40, size=(size, size, 3), dtype=np.uint8)
            name = f"{split}-{i}.png"
            objects = [] if split == "val" and i % 3 == 2 else [1, 7][: 1 + i % 2]
            for j, cat in enumerate(objects):
                w, h = int(rng.integers(size // 5, size // 3)), int(rng.integers(size // 5, size // 3))
                x = int(rng.integers(0, size // 2 - w)) + (size // 2 if j else 0)
                y = int(rng.integers(0, size - h))
                arr[y : y + h, x : x + w] = COLORS[cat]
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": i + 1,
                        "category_id": cat,
                        "bbox": [x, y, w, h],
                        "area": w * h,
                        "iscrowd": 0,
                        "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]],
                    }
                )
            Image.fromarray(arr).save(os.path.join(root, "images", name))
            images.append({"id": i + 1, "file_name": name, "width": size, "height": size})
        coco = {"images": images, "annotations": annotations, "categories": [dict(c) for c in CLASSES]}
        with open(os.path.join(root, f"{split}.json"), "w") as f:
            json.dump(coco, f)
    return root


def base_config(tmp, task, model, **overrides):
    cfg = {
        "version": 1,
        "task": task,
        "model": model,
        "weights": "none",
        "allowScratch": False,
        "data": {"root": os.path.join(tmp, "data"), "train": "train.json", "val": "val.json", "imagesDir": "images"},
        "classes": CLASSES,
        "epochs": 1,
        "batchSize": 2,
        "lr": 0.01,
        "optimizer": "sgd",
        "momentum": 0.9,
        "weightDecay": 0.0,
        "imageSize": 64,
        "workers": 0,
        "seed": 0,
        "device": "cpu",
        "amp": True,
        "channelsLast": True,
        "maxStepsPerEpoch": None,
        "threads": 1,
        "onnx": False,
        "checkpointDir": os.path.join(tmp, "ckpt"),
        "outputDir": os.path.join(tmp, "out"),
    }
    cfg.update(overrides)
    return cfg


def run_trainer(cfg, path, nproc=None, env=None, timeout=600):
    """Writes cfg to path and runs the trainer; returns (exit code, events, stderr)."""
    with open(path, "w") as f:
        json.dump(cfg, f)
    cmd = [sys.executable, "-m", "geobatch_trainer", "--config", path]
    full_env = dict(os.environ, PYTHONPATH=TRAIN_DIR, OMP_NUM_THREADS="1")
    full_env.update(env or {})
    if nproc:
        code, stdout, stderr = _launch_distributed(cmd, nproc, full_env, timeout)
    else:
        p = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout)
        code, stdout, stderr = p.returncode, p.stdout, p.stderr
    evs = []
    for line in stdout.splitlines():
        evs.append(json.loads(line))  # stdout must carry only JSON lines
    return code, evs, stderr


def of(evs, kind):
    return [e for e in evs if e["event"] == kind]


def _launch_distributed(cmd, nproc, env, timeout):
    """Starts nproc trainer processes with the environment torch.distributed.run gives its workers
    (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT). torch.distributed.run
    itself is unusable with Debian's torch 1.13 on Python 3.11: its default `--redirects 0` maps to
    None (IntFlag iteration changed in 3.11) and the launcher fails before starting any worker."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for rank in range(nproc):
        e = dict(env, RANK=str(rank), WORLD_SIZE=str(nproc), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(nproc))
        e.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e))
    outs = [p.communicate(timeout=timeout) for p in procs]
    for rank, (out, _) in enumerate(outs[1:], 1):
        if out.strip():
            raise AssertionError(f"rank {rank} printed on stdout: {out[:500]}")
    code = max(abs(p.returncode) for p in procs)
    return code, outs[0][0], "".join(f"--- rank {r}\n{err}" for r, (_, err) in enumerate(outs))
