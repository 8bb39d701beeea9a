"""Model builders. Every model takes float images in [0, 1] (normalisation is inside the model)."""

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision.models import detection as tvdet
from torchvision.models import segmentation as tvseg

from .events import TrainerError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_DETECTION = {
    "fasterrcnn_resnet50_fpn": (tvdet.fasterrcnn_resnet50_fpn, tvdet.FasterRCNN_ResNet50_FPN_Weights),
    "fasterrcnn_mobilenet_v3_large_fpn": (
        tvdet.fasterrcnn_mobilenet_v3_large_fpn,
        tvdet.FasterRCNN_MobileNet_V3_Large_FPN_Weights,
    ),
    "fasterrcnn_mobilenet_v3_large_320_fpn": (
        tvdet.fasterrcnn_mobilenet_v3_large_320_fpn,
        tvdet.FasterRCNN_MobileNet_V3_Large_320_FPN_Weights,
    ),
}
_SEGMENTATION = {
    "deeplabv3_resnet50": (tvseg.deeplabv3_resnet50, tvseg.DeepLabV3_ResNet50_Weights),
    "fcn_resnet50": (tvseg.fcn_resnet50, tvseg.FCN_ResNet50_Weights),
}
_CLASSIFICATION = {
    "resnet50": (torchvision.models.resnet50, torchvision.models.ResNet50_Weights),
    "resnet18": (torchvision.models.resnet18, torchvision.models.ResNet18_Weights),
}


class Normalize(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


class SegmentationNet(nn.Module):
    """Wraps a torchvision segmentation model: [N,3,H,W] in [0, 1] -> logits [N,K+1,H,W]."""

    def __init__(self, net):
        super().__init__()
        self.norm = Normalize()
        self.net = net

    def forward(self, x):
        return self.net(self.norm(x))["out"]


def _block(cin, cout):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """A small U-Net (4 levels, 32..256 channels): [N,3,H,W] in [0, 1] -> logits [N,K+1,H,W]."""

    def __init__(self, num_outputs, width=32):
        super().__init__()
        self.norm = Normalize()
        w = [width, width * 2, width * 4, width * 8]
        self.down = nn.ModuleList([_block(3, w[0]), _block(w[0], w[1]), _block(w[1], w[2]), _block(w[2], w[3])])
        self.up = nn.ModuleList([_block(w[3] + w[2], w[2]), _block(w[2] + w[1], w[1]), _block(w[1] + w[0], w[0])])
        self.head = nn.Conv2d(w[0], num_outputs, 1)

    def forward(self, x):
        x = self.norm(x)
        skips = []
        for i, block in enumerate(self.down):
            if i:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        for block, skip in zip(self.up, reversed(skips[:-1])):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], 1))
        return self.head(x)


class MultiLabelNet(nn.Module):
    """ResNet backbone + MLP head: [N,3,H,W] in [0, 1] -> logits [N,K]."""

    def __init__(self, backbone, num_classes, hidden=512):
        super().__init__()
        self.norm = Normalize()
        features = backbone.fc.in_features
        backbone.fc = nn.Identity()
        self.backbone = backbone
        self.head = nn.Sequential(
            nn.Linear(features, hidden), nn.ReLU(inplace=True), nn.Dropout(0.2), nn.Linear(hidden, num_classes)
        )

    def forward(self, x):
        return self.head(self.backbone(self.norm(x)))


def _pretrained(name, build, weights_enum, allow_scratch, warn, **kwargs):
    """Builds with torchvision's default weights; returns (model, 'default') or (None, 'scratch')."""
    try:
        return build(weights=weights_enum.DEFAULT, progress=False, **kwargs), "default"
    except Exception as e:  # no network, not cached, corrupt file: all mean "cannot load"
        url = getattr(weights_enum.DEFAULT, "url", "?")
        weights = f"{weights_enum.__name__}.{weights_enum.DEFAULT.name}"
        reason = f"{type(e).__name__}: {e}"
        if not allow_scratch:
            raise TrainerError(
                "weights",
                f"cannot load the default pretrained weights of '{name}' ({weights}) from {url} ({reason}). "
                "Put the file in $TORCH_HOME/hub/checkpoints (the GPU image bakes it in), give the trainer "
                "network access, or set allowScratch: true (or weights: none) to train from random init.",
            )
        warn(f"cannot load the default pretrained weights of '{name}' ({reason}); training from random init")
        return None, "scratch"


def build_model(task, name, num_classes, weights, allow_scratch, image_size, warn):
    """Returns (model, weights_used) with weights_used in 'default' | 'none' | 'scratch'.
    num_classes excludes the background; detection/segmentation heads get num_classes + 1 outputs."""
    want = weights == "default"
    if task == "detection":
        build, enum = _DETECTION[name]
        sizes = {"min_size": image_size, "max_size": image_size}
        model, used = (None, "none")
        if want:
            model, used = _pretrained(name, build, enum, allow_scratch, warn, **sizes)
        if model is None:
            return build(weights=None, weights_backbone=None, num_classes=num_classes + 1, **sizes), used
        in_features = model.roi_heads.box_predictor.cls_score.in_features
        model.roi_heads.box_predictor = tvdet.faster_rcnn.FastRCNNPredictor(in_features, num_classes + 1)
        return model, used
    if task == "segmentation":
        if name == "unet":
            if want:
                warn("unet has no pretrained weights; training from random init")
            return UNet(num_classes + 1), "none"
        build, enum = _SEGMENTATION[name]
        net, used = (None, "none")
        if want:
            net, used = _pretrained(name, build, enum, allow_scratch, warn)
        if net is None:
            net = build(weights=None, weights_backbone=None, num_classes=num_classes + 1, aux_loss=False)
        else:
            head = net.classifier[4]
            net.classifier[4] = nn.Conv2d(head.in_channels, num_classes + 1, 1)
            net.aux_classifier = None
        return SegmentationNet(net), used
    build, enum = _CLASSIFICATION[name]
    backbone, used = (None, "none")
    if want:
        backbone, used = _pretrained(name, build, enum, allow_scratch, warn)
    if backbone is None:
        backbone = build(weights=None)
    return MultiLabelNet(backbone, num_classes), used
