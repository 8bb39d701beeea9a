"""ONNX export (opset 11, fixed input size) and the onnx-check files the harness compares with onnxruntime.

Segmentation and classification are exported with a dynamic batch axis (input `image` and the
outputs, axis 0), so that prediction can run several windows at once; detection stays at batch 1
(the Faster R-CNN wrapper handles one image per run)."""

import copy
import inspect
import json
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

OPSET = 11


def torchscript_export_options(export=None):
    """Keyword arguments that make torch.onnx.export use the TorchScript-based exporter.

    PyTorch 2.9 made the dynamo-based exporter the default, and it imports onnx and onnxscript,
    which the pytorch/pytorch images lack. The TorchScript exporter (the only one in 1.13) needs
    neither: ask for it wherever torch.onnx.export has a `dynamo` parameter."""
    export = export or torch.onnx.export
    return {"dynamo": False} if "dynamo" in inspect.signature(export).parameters else {}


class DetectionExport(nn.Module):
    """torchvision Faster R-CNN, one image: [1,3,S,S] in [0, 1] -> boxes [N,4] xyxy, labels [N], scores [N]."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, image):
        out = self.model([image[0]])[0]
        return out["boxes"], out["labels"], out["scores"]


class ClassifierExport(nn.Module):
    """MultiLabelNet: [B,3,S,S] in [0, 1] -> scores [B,K] (sigmoid) and embedding [B,F].

    `embedding` is the backbone's globally average-pooled features (the input of the ResNet's fc,
    which MultiLabelNet replaces by its MLP head: 512 for resnet18, 2048 for resnet50), divided by
    their L2 norm inside the graph, so that any consumer of model.onnx compares them by cosine
    (dot product) without knowing a convention."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, image):
        features = self.model.backbone(self.model.norm(image))
        scores = torch.sigmoid(self.model.head(features))
        return scores, F.normalize(features, p=2.0, dim=1, eps=EMBEDDING_EPS)


# a zero feature vector (every pooled ReLU output 0) stays zero instead of dividing by 0
EMBEDDING_EPS = 1e-12

EMBEDDING_OUTPUT = "embedding"

OUTPUT_NAMES = {
    "detection": ["boxes", "labels", "scores"],
    "segmentation": ["logits"],
    # scores first: predict reads a classifier's scores as the bundle's first output
    "classification": ["scores", EMBEDDING_OUTPUT],
}


def export_module(model, task):
    """A CPU float32 eval-mode copy wrapped so that it maps the image tensor to the output tensors."""
    m = copy.deepcopy(model).cpu().float().eval()
    m = m.to(memory_format=torch.contiguous_format)
    if task == "detection":
        return DetectionExport(m).eval()
    if task == "classification":
        return ClassifierExport(m).eval()
    return m


def dynamic_axes(task):
    """The `dynamic_axes` of torch.onnx.export: the batch axis of the input and the output, or None (detection)."""
    if task == "detection":
        return None
    return {name: {0: "batch"} for name in ["image", *OUTPUT_NAMES[task]]}


def check_input(image_size, sample=None):
    """The deterministic check input [1,3,S,S]: a validation image when given, else a fixed pattern."""
    if sample is not None:
        return sample.detach().cpu().float().reshape(1, 3, image_size, image_size).contiguous()
    yy, xx = np.meshgrid(np.arange(image_size), np.arange(image_size), indexing="ij")
    planes = [0.5 + 0.5 * np.sin((xx * (c + 1) + yy * (3 - c)) / 7.0) for c in range(3)]
    return torch.from_numpy(np.stack(planes)[None].astype(np.float32))


def _write_atomic(path, data):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _tensor_bytes(t):
    a = t.detach().cpu().numpy()
    dtype = "int64" if a.dtype.kind in "iu" else "float32"
    return np.ascontiguousarray(a.astype("<i8" if dtype == "int64" else "<f4")).tobytes(), dtype


def export_onnx(model, task, image_size, out_dir, sample=None):
    """Writes model.onnx, onnx-check-input.bin, onnx-check-<output>.bin and onnx-check.json (last).
    Returns [(artifact name, path)]."""
    module = export_module(model, task)
    x = check_input(image_size, sample)
    names = OUTPUT_NAMES[task]
    axes = dynamic_axes(task)
    onnx_path = os.path.join(out_dir, "model.onnx")
    tmp = f"{onnx_path}.tmp-{os.getpid()}"
    with torch.no_grad():
        torch.onnx.export(
            module,
            (x,),
            tmp,
            opset_version=OPSET,
            input_names=["image"],
            output_names=names,
            do_constant_folding=True,
            **({"dynamic_axes": axes} if axes else {}),
            **torchscript_export_options(),
        )
    try:
        import onnx  # optional: not installed on the CPU test machine

        onnx.checker.check_model(tmp)
    except ImportError:
        pass
    os.replace(tmp, onnx_path)
    module.eval()  # torch.onnx.export restores the wrapper's original mode
    with torch.no_grad():
        outs = module(x)
    if isinstance(outs, torch.Tensor):
        outs = (outs,)
    check = {"input": {"name": "image", "shape": list(x.shape), "dtype": "float32", "file": "onnx-check-input.bin"}}
    _write_atomic(os.path.join(out_dir, check["input"]["file"]), _tensor_bytes(x)[0])
    check["outputs"] = []
    for name, t in zip(names, outs):
        data, dtype = _tensor_bytes(t)
        file = f"onnx-check-{name}.bin"
        _write_atomic(os.path.join(out_dir, file), data)
        check["outputs"].append({"name": name, "shape": list(t.shape), "dtype": dtype, "file": file})
    check_path = os.path.join(out_dir, "onnx-check.json")
    _write_atomic(check_path, (json.dumps(check, indent=2) + "\n").encode("utf-8"))
    return [("model.onnx", onnx_path), ("onnx-check.json", check_path)]
