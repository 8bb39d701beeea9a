"""The training loop: data, model, optimiser, per-epoch evaluation and checkpoints, resume, DDP, artifacts."""

import datetime
import glob
import json
import math
import os
import random
import re
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from . import events
from .data import CocoDataset, collate_for
from .events import DataError, TrainerError, emit, log
from .export import export_onnx
from .metrics import DetectionEvaluator, SegmentationEvaluator, classification_metrics
from .models import build_model

PRIMARY_METRIC = {"detection": "mAP", "segmentation": "mIoU", "classification": "f1Samples"}
CHECKPOINT_RE = re.compile(r"^epoch-(\d+)\.pt$")


# ---------------------------------------------------------------- environment


class Dist:
    def __init__(self, rank=0, world=1, local_rank=0, local_world=1):
        self.rank, self.world, self.local_rank, self.local_world = rank, world, local_rank, local_world

    @property
    def main(self):
        return self.rank == 0

    def barrier(self):
        if self.world > 1:
            dist.barrier()


def _version_at_least(version, major, minor):
    m = re.match(r"(\d+)\.(\d+)", version)
    return bool(m) and (int(m.group(1)), int(m.group(2))) >= (major, minor)


def make_grad_scaler():
    if _version_at_least(torch.__version__, 2, 3):
        return torch.amp.GradScaler("cuda")
    return torch.cuda.amp.GradScaler()


def setup(cfg):
    world = int(os.environ.get("WORLD_SIZE", "1"))
    d = Dist(
        int(os.environ.get("RANK", "0")),
        world,
        int(os.environ.get("LOCAL_RANK", "0")),
        int(os.environ.get("LOCAL_WORLD_SIZE", str(world))),
    )
    if cfg["device"] == "cuda" and not torch.cuda.is_available():
        raise TrainerError("config", "'device' = \"cuda\" but torch.cuda.is_available() is false (use auto or cpu)")
    use_cuda = cfg["device"] == "cuda" or (cfg["device"] == "auto" and torch.cuda.is_available())
    if use_cuda:
        torch.cuda.set_device(d.local_rank)
        device = torch.device("cuda", d.local_rank)
    else:
        device = torch.device("cpu")
    if world > 1:
        dist.init_process_group(
            backend="nccl" if use_cuda else "gloo", timeout=datetime.timedelta(hours=2), rank=d.rank, world_size=world
        )
    threads = cfg["threads"] or max(1, (os.cpu_count() or 1) // max(1, d.local_world))
    torch.set_num_threads(threads)
    events.set_enabled(d.main)
    return d, device


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def rng_state():
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    state["cuda"] = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    return state


def set_rng_state(state):
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------- checkpoints


def torch_load(path):
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except TypeError:  # torch without the weights_only argument
        return torch.load(path, map_location="cpu")


def save_atomic(obj, path):
    tmp = f"{path}.tmp-{os.getpid()}"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def latest_checkpoint(directory):
    best = None
    for path in glob.glob(os.path.join(directory, "epoch-*.pt")):
        m = CHECKPOINT_RE.match(os.path.basename(path))
        if m and (best is None or int(m.group(1)) > best[0]):
            best = (int(m.group(1)), path)
    return best


def load_checkpoint(cfg):
    found = latest_checkpoint(cfg["checkpointDir"])
    if not found:
        return None
    epoch, path = found
    try:
        ckpt = torch_load(path)
    except Exception as e:
        raise TrainerError("runtime", f"checkpoint {path} cannot be read ({type(e).__name__}: {e}); delete it to resume from the one before")
    for key, name in (("task", "task"), ("modelName", "model"), ("classes", "classes")):
        if ckpt.get(key) != cfg[name]:
            raise TrainerError(
                "config",
                f"checkpoint {path} was written for {name} = {json.dumps(ckpt.get(key))} but the config has "
                f"'{name}' = {json.dumps(cfg[name])}; use another checkpointDir or delete the checkpoints",
            )
    if ckpt.get("epoch") != epoch:
        raise TrainerError("runtime", f"checkpoint {path} holds epoch {ckpt.get('epoch')}, not {epoch}")
    if epoch > cfg["epochs"]:
        raise TrainerError(
            "config", f"'epochs' = {cfg['epochs']} but checkpoint {path} is already at epoch {epoch}"
        )
    return ckpt


# ---------------------------------------------------------------- steps


def _to_device(task, images, targets, device, channels_last):
    nb = device.type == "cuda"
    if task == "detection":
        images = [im.to(device, non_blocking=nb) for im in images]
        targets = [{k: v.to(device, non_blocking=nb) for k, v in t.items()} for t in targets]
        return images, targets
    images = images.to(device, non_blocking=nb)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return images, targets.to(device, non_blocking=nb)


def compute_loss(task, model, images, targets):
    if task == "detection":
        return sum(model(images, targets).values())
    out = model(images)
    if task == "segmentation":
        return F.cross_entropy(out.float(), targets)
    return F.binary_cross_entropy_with_logits(out.float(), targets)


@torch.no_grad()
def evaluate(task, model, loader, class_names, device, amp, channels_last):
    model.eval()
    if task == "detection":
        ev = DetectionEvaluator(class_names)
    elif task == "segmentation":
        ev = SegmentationEvaluator(class_names)
    probs, targets_all = [], []
    for images, targets in loader:
        images, targets = _to_device(task, images, targets, device, channels_last)
        with torch.autocast(device_type="cuda", enabled=amp) if amp else _null():
            if task == "detection":
                for o, t in zip(model(images), targets):
                    ev.add(o["boxes"].float().cpu(), o["scores"].float().cpu(), o["labels"].cpu(), t["boxes"].cpu(), t["labels"].cpu())
            elif task == "segmentation":
                ev.add(model(images).argmax(1).cpu(), targets.cpu())
            else:
                probs.append(torch.sigmoid(model(images).float()).cpu())
                targets_all.append(targets.cpu())
    if task == "classification":
        k = len(class_names)
        p = torch.cat(probs).numpy() if probs else np.zeros((0, k))
        t = torch.cat(targets_all).numpy() if targets_all else np.zeros((0, k))
        return classification_metrics(p, t, class_names)
    return ev.compute()


class _null:
    def __enter__(self):
        return None

    def __exit__(self, *a):
        return False


def lr_lambda(total_steps):
    warmup = min(500, total_steps // 10)

    def f(step):
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress))

    return f


# ---------------------------------------------------------------- run


def run(cfg):
    d, device = setup(cfg)
    try:
        return _run(cfg, d, device)
    finally:
        if d.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _run(cfg, d, device):
    task, name = cfg["task"], cfg["model"]
    class_names = [c["name"] for c in cfg["classes"]]
    use_cuda = device.type == "cuda"
    amp = bool(cfg["amp"] and use_cuda)
    channels_last = bool(cfg["channelsLast"] and use_cuda)
    seed_everything(cfg["seed"])

    data = cfg["data"]
    images_dir = os.path.join(data["root"], data["imagesDir"])
    try:
        train_ds = CocoDataset(os.path.join(data["root"], data["train"]), images_dir, cfg["classes"], task, cfg["imageSize"], True)
        val_ds = CocoDataset(os.path.join(data["root"], data["val"]), images_dir, cfg["classes"], task, cfg["imageSize"], False)
    except DataError as e:
        raise TrainerError("data", str(e))
    if len(train_ds) == 0:
        raise TrainerError("data", f"{os.path.join(data['root'], data['train'])}: no images to train on")
    for w in train_ds.warnings + val_ds.warnings:
        emit("warning", message=w)

    ckpt = load_checkpoint(cfg)
    if d.main and cfg["checkpointDir"]:
        os.makedirs(cfg["checkpointDir"], exist_ok=True)
    weights = cfg["weights"]
    if ckpt is not None and ckpt.get("weights") in ("none", "scratch"):
        weights = "none"  # the checkpoint replaces the initial weights: don't fetch them
    model, weights_used = build_model(
        task, name, len(class_names), weights, cfg["allowScratch"], cfg["imageSize"], lambda m: emit("warning", message=m)
    )
    if ckpt is not None:
        weights_used = ckpt.get("weights", weights_used)
        model.load_state_dict(ckpt["model"])
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)

    params = [p for p in model.parameters() if p.requires_grad]
    if cfg["optimizer"] == "adamw":
        optimizer = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=cfg["weightDecay"])
    else:
        optimizer = torch.optim.SGD(params, lr=cfg["lr"], momentum=cfg["momentum"], weight_decay=cfg["weightDecay"])

    per_rank = math.ceil(len(train_ds) / d.world)
    sampler = torch.utils.data.DistributedSampler(train_ds, num_replicas=d.world, rank=d.rank, shuffle=True, seed=cfg["seed"])
    loader_args = {"num_workers": cfg["workers"], "pin_memory": use_cuda, "collate_fn": collate_for(task)}
    train_loader = torch.utils.data.DataLoader(
        train_ds, batch_size=cfg["batchSize"], sampler=sampler, drop_last=per_rank >= cfg["batchSize"], **loader_args
    )
    val_loader = torch.utils.data.DataLoader(val_ds, batch_size=cfg["batchSize"], shuffle=False, **loader_args)
    steps = len(train_loader)
    if cfg["maxStepsPerEpoch"]:
        steps = min(steps, cfg["maxStepsPerEpoch"])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(steps * cfg["epochs"]))
    scaler = make_grad_scaler() if amp else None

    history, start_epoch = [], 1
    if ckpt is not None:
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if scaler is not None and ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        history = list(ckpt.get("history") or [])
        start_epoch = ckpt["epoch"] + 1
        set_rng_state(ckpt["rng"])
        if d.rank > 0:
            torch.manual_seed(cfg["seed"] + 1000 * ckpt["epoch"] + d.rank)
    elif d.rank > 0:
        torch.manual_seed(cfg["seed"] + d.rank)  # different augmentation draws per rank; weights come from rank 0

    net = model
    if d.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[d.local_rank] if use_cuda else None)

    emit(
        "start",
        task=task,
        model=name,
        device=str(device),
        worldSize=d.world,
        epochs=cfg["epochs"],
        stepsPerEpoch=steps,
        trainImages=len(train_ds),
        valImages=len(val_ds),
        resumedFrom=ckpt["epoch"] if ckpt is not None else None,
        weights=weights_used,
    )

    for epoch in range(start_epoch, cfg["epochs"] + 1):
        sampler.set_epoch(epoch)
        net.train()
        t0 = last_emit = time.time()
        seen, loss_sum = 0, 0.0
        for step, (images, targets) in enumerate(train_loader):
            if step >= steps:
                break
            images, targets = _to_device(task, images, targets, device, channels_last)
            with torch.autocast(device_type="cuda", enabled=True) if amp else _null():
                loss = compute_loss(task, net, images, targets)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(params, 10.0)
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 10.0)
                optimizer.step()
            scheduler.step()
            value = float(loss.detach().item())
            if not math.isfinite(value):
                raise TrainerError(
                    "runtime", f"the loss became {value} at epoch {epoch} step {step + 1}; lower 'lr' (now {cfg['lr']})"
                )
            loss_sum += value
            seen += len(images) * d.world
            now = time.time()
            if now - last_emit >= 1.0 or step == steps - 1:
                last_emit = now
                emit(
                    "step",
                    epoch=epoch,
                    step=step + 1,
                    steps=steps,
                    loss=value,
                    lr=optimizer.param_groups[0]["lr"],
                    imagesPerSecond=seen / max(now - t0, 1e-9),
                )
        train_loss = loss_sum / max(1, steps)
        if d.world > 1:
            t = torch.tensor([train_loss], dtype=torch.float64, device=device)
            dist.all_reduce(t)
            train_loss = float(t.item()) / d.world
        seconds = time.time() - t0
        metrics = None
        if d.main:
            metrics = evaluate(task, model, val_loader, class_names, device, amp, channels_last)
            record = {
                "epoch": epoch,
                "trainLoss": train_loss,
                "seconds": seconds,
                "imagesPerSecond": seen / max(seconds, 1e-9),
                "metrics": metrics,
            }
            history.append(record)
            emit("epoch", **record)
            path = os.path.join(cfg["checkpointDir"], f"epoch-{epoch:04d}.pt")
            save_atomic(
                {
                    "format": 1,
                    "epoch": epoch,
                    "task": task,
                    "modelName": name,
                    "classes": cfg["classes"],
                    "weights": weights_used,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict() if scaler is not None else None,
                    "rng": rng_state(),
                    "history": history,
                },
                path,
            )
            emit("checkpoint", epoch=epoch, path=path)
        d.barrier()
        if cfg["stopAfterEpoch"] == epoch and epoch < cfg["epochs"]:
            emit("warning", message=f"stopAfterEpoch = {epoch}: stopping early (test hook); a rerun resumes")
            return 0

    if d.main:
        write_artifacts(cfg, model, task, history, weights_used, d.world, val_ds)
    d.barrier()
    return 0


def best_epoch(task, history):
    key = PRIMARY_METRIC[task]
    best = None
    for rec in history:
        v = (rec.get("metrics") or {}).get(key)
        if v is not None and (best is None or v > best[0]):
            best = (v, rec["epoch"])
    return best[1] if best else (history[-1]["epoch"] if history else None)


def write_artifacts(cfg, model, task, history, weights_used, world, val_ds):
    out = cfg["outputDir"]
    os.makedirs(out, exist_ok=True)
    final = history[-1]["metrics"] if history else {}
    threshold = final.get("threshold") if task == "classification" else None
    model_path = os.path.join(out, "model.pt")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_atomic(
        {
            "format": 1,
            "state_dict": state,
            "task": task,
            "model": cfg["model"],
            "classes": cfg["classes"],
            "threshold": threshold,
            "imageSize": cfg["imageSize"],
            "weights": weights_used,
        },
        model_path,
    )
    emit("artifact", name="model.pt", path=model_path)
    best = best_epoch(task, history)
    summary = {
        "task": task,
        "model": cfg["model"],
        "classes": cfg["classes"],
        "config": {
            k: cfg[k]
            for k in ("epochs", "batchSize", "lr", "optimizer", "momentum", "weightDecay", "imageSize", "seed", "weights", "maxStepsPerEpoch")
        },
        "weightsUsed": weights_used,
        "worldSize": world,
        "epochs": history,
        "final": final,
        "bestEpoch": best,
        "threshold": threshold,
    }
    metrics_path = os.path.join(out, "metrics.json")
    tmp = f"{metrics_path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(events._clean(summary), indent=2, allow_nan=False) + "\n")
    os.replace(tmp, metrics_path)
    emit("artifact", name="metrics.json", path=metrics_path)
    if cfg["onnx"]:
        sample = val_ds[0][0] if len(val_ds) else None
        for name, path in export_onnx(model, task, cfg["imageSize"], out, sample):
            emit("artifact", name=name, path=path)
    emit("done", epochs=cfg["epochs"], metrics=final, bestEpoch=best)
