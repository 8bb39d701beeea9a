"""Validation of the trainer's config.json: every problem is reported, each with its field and value."""

import json
import os

from .events import TrainerError

TASKS = ("detection", "segmentation", "classification")
MODELS = {
    "detection": (
        "fasterrcnn_resnet50_fpn",
        "fasterrcnn_mobilenet_v3_large_fpn",
        "fasterrcnn_mobilenet_v3_large_320_fpn",
    ),
    "segmentation": ("deeplabv3_resnet50", "fcn_resnet50", "unet"),
    "classification": ("resnet50", "resnet18"),
}
DEFAULT_MODEL = {"detection": "fasterrcnn_resnet50_fpn", "segmentation": "deeplabv3_resnet50", "classification": "resnet50"}
DEFAULT_IMAGE_SIZE = {"fasterrcnn_mobilenet_v3_large_320_fpn": 320, "resnet50": 224, "resnet18": 224}

# field -> default (None = optional null); required fields are checked separately
DEFAULTS = {
    "model": None,
    "weights": "default",
    "allowScratch": False,
    "epochs": 10,
    "batchSize": 4,
    "lr": None,
    "optimizer": "sgd",
    "momentum": 0.9,
    "weightDecay": 0.0001,
    "imageSize": None,
    "workers": 0,
    "seed": 0,
    "device": "auto",
    "amp": True,
    "channelsLast": True,
    "maxStepsPerEpoch": None,
    "threads": None,
    "onnx": True,
    "stopAfterEpoch": None,
}
REQUIRED = ("version", "task", "data", "classes", "checkpointDir", "outputDir")
DATA_FIELDS = ("root", "train", "val", "imagesDir")


def _show(value):
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def validate(raw, source="config"):
    """Returns the config with defaults filled in, or raises TrainerError('config') listing every problem."""
    problems = []

    def bad(field, value, rule):
        problems.append(f"'{field}' = {_show(value)}: {rule}")

    if not isinstance(raw, dict):
        raise TrainerError("config", f"{source}: expected a JSON object, got {_show(raw)}")
    cfg = dict(raw)
    for key in sorted(cfg):
        if key not in REQUIRED and key not in DEFAULTS:
            bad(key, cfg[key], f"unknown field (valid: {', '.join(REQUIRED + tuple(DEFAULTS))})")
    for key in REQUIRED:
        if key not in cfg:
            problems.append(f"'{key}' is missing (required)")
    for key, default in DEFAULTS.items():
        if cfg.get(key) is None:
            cfg[key] = default

    if "version" in cfg and cfg["version"] != 1:
        bad("version", cfg["version"], "must be 1")
    task = cfg.get("task")
    if "task" in cfg and task not in TASKS:
        bad("task", task, f"must be one of {', '.join(TASKS)}")
        task = None
    if task:
        if cfg["model"] is None:
            cfg["model"] = DEFAULT_MODEL[task]
        elif cfg["model"] not in MODELS[task]:
            bad("model", cfg["model"], f"must be one of {', '.join(MODELS[task])} for task '{task}'")
    if cfg["weights"] not in ("default", "none"):
        bad("weights", cfg["weights"], "must be 'default' or 'none'")
    for key in ("allowScratch", "amp", "channelsLast", "onnx"):
        if not isinstance(cfg[key], bool):
            bad(key, cfg[key], "must be true or false")
    for key, low in (("epochs", 1), ("batchSize", 1), ("workers", 0)):
        if not _is_int(cfg[key]) or cfg[key] < low:
            bad(key, cfg[key], f"must be an integer >= {low}")
    if not _is_int(cfg["seed"]) or cfg["seed"] < 0:
        bad("seed", cfg["seed"], "must be an integer >= 0")
    for key in ("maxStepsPerEpoch", "threads", "stopAfterEpoch"):
        if cfg[key] is not None and (not _is_int(cfg[key]) or cfg[key] < 1):
            bad(key, cfg[key], "must be null or an integer >= 1")
    if cfg["optimizer"] not in ("sgd", "adamw"):
        bad("optimizer", cfg["optimizer"], "must be 'sgd' or 'adamw'")
    if cfg["lr"] is None:
        cfg["lr"] = 0.001 if cfg["optimizer"] == "adamw" else 0.01
    elif not _is_num(cfg["lr"]) or not 0 < cfg["lr"] <= 10:
        bad("lr", cfg["lr"], "must be a number in (0, 10]")
    if not _is_num(cfg["momentum"]) or not 0 <= cfg["momentum"] < 1:
        bad("momentum", cfg["momentum"], "must be a number in [0, 1)")
    if not _is_num(cfg["weightDecay"]) or cfg["weightDecay"] < 0:
        bad("weightDecay", cfg["weightDecay"], "must be a number >= 0")
    if cfg["imageSize"] is None:
        cfg["imageSize"] = DEFAULT_IMAGE_SIZE.get(cfg["model"], 512)
    elif not _is_int(cfg["imageSize"]) or not 32 <= cfg["imageSize"] <= 4096:
        bad("imageSize", cfg["imageSize"], "must be an integer in [32, 4096]")
    if cfg["device"] not in ("auto", "cpu", "cuda"):
        bad("device", cfg["device"], "must be 'auto', 'cpu' or 'cuda'")
    for key in ("checkpointDir", "outputDir"):
        if key in cfg and (not isinstance(cfg[key], str) or not os.path.isabs(cfg[key])):
            bad(key, cfg[key], "must be an absolute path")

    data = cfg.get("data")
    if "data" in cfg:
        if not isinstance(data, dict):
            bad("data", data, "must be an object {root, train, val, imagesDir}")
        else:
            data = dict(data)
            data.setdefault("imagesDir", "images")
            for key in sorted(data):
                if key not in DATA_FIELDS:
                    bad(f"data.{key}", data[key], f"unknown field (valid: {', '.join(DATA_FIELDS)})")
            for key in DATA_FIELDS:
                if key not in data:
                    problems.append(f"'data.{key}' is missing (required)")
                elif not isinstance(data[key], str) or not data[key]:
                    bad(f"data.{key}", data[key], "must be a non-empty string")
            root = data.get("root")
            if isinstance(root, str) and root:
                if not os.path.isabs(root):
                    bad("data.root", root, "must be an absolute path")
                elif not os.path.isdir(root):
                    bad("data.root", root, "directory does not exist")
            cfg["data"] = data

    classes = cfg.get("classes")
    if "classes" in cfg:
        if not isinstance(classes, list) or not classes:
            bad("classes", classes, "must be a non-empty list of {id, name}")
        else:
            ids, names = set(), set()
            for i, c in enumerate(classes):
                if not isinstance(c, dict) or not _is_int(c.get("id")) or not isinstance(c.get("name"), str):
                    bad(f"classes[{i}]", c, "must be {\"id\": <integer>, \"name\": <string>}")
                    continue
                if c["id"] in ids:
                    bad(f"classes[{i}].id", c["id"], "duplicate class id")
                if c["name"] in names or not c["name"]:
                    bad(f"classes[{i}].name", c["name"], "class names must be unique and non-empty")
                ids.add(c["id"])
                names.add(c["name"])
            cfg["classes"] = [{"id": c["id"], "name": c["name"]} for c in classes if isinstance(c, dict)]

    if problems:
        raise TrainerError("config", f"{source}: {len(problems)} problem(s): " + "; ".join(problems))
    return cfg


def load(path):
    try:
        with open(path, "r", encoding="utf-8") as f:
            raw = json.load(f)
    except FileNotFoundError:
        raise TrainerError("config", f"config file {path} does not exist")
    except (OSError, ValueError) as e:
        raise TrainerError("config", f"config file {path} is not readable JSON: {e}")
    return validate(raw, source=path)
