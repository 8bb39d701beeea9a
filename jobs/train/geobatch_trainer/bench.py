"""CPU training throughput: `python3 -m geobatch_trainer.bench [--threads 2] [--steps 3]`.

Random-init models, batch 4, synthetic inputs (one rectangle per image), SGD; prints images/s per
model after one warm-up step. Figures only: nothing here is asserted."""

import argparse
import json
import time

import torch

from .models import build_model
from .train import compute_loss

CASES = [
    ("detection", "fasterrcnn_mobilenet_v3_large_320_fpn", 320),
    ("segmentation", "unet", 256),
    ("segmentation", "deeplabv3_resnet50", 256),
    ("classification", "resnet18", 224),
]


def batch(task, size, n=4, k=2):
    g = torch.Generator().manual_seed(0)
    images = torch.rand(n, 3, size, size, generator=g) * 0.2
    s = size // 4
    images[:, :, s : 2 * s, s : 3 * s] = 1.0
    if task == "detection":
        box = torch.tensor([[s, s, 3 * s, 2 * s]], dtype=torch.float32)
        return list(images), [{"boxes": box, "labels": torch.tensor([1])} for _ in range(n)]
    if task == "segmentation":
        mask = torch.zeros(n, size, size, dtype=torch.int64)
        mask[:, s : 2 * s, s : 3 * s] = 1
        return images, mask
    return images, torch.tensor([[1.0, 0.0]] * n)


def main():
    parser = argparse.ArgumentParser(prog="python3 -m geobatch_trainer.bench")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--only", help="one model name")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    for task, name, size in CASES:
        if args.only and name != args.only:
            continue
        model, _ = build_model(task, name, 2, "none", False, size, lambda m: None)
        model.train()
        opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.001, momentum=0.9)
        images, targets = batch(task, size)
        times = []
        for _ in range(args.steps + 1):
            t0 = time.time()
            loss = compute_loss(task, model, images, targets)
            opt.zero_grad()
            loss.backward()
            opt.step()
            times.append(time.time() - t0)
        per_step = sum(times[1:]) / args.steps
        print(json.dumps({"task": task, "model": name, "imageSize": size, "batch": 4, "threads": args.threads,
                          "secondsPerStep": round(per_step, 3), "imagesPerSecond": round(4 / per_step, 2)}), flush=True)


if __name__ == "__main__":
    main()
