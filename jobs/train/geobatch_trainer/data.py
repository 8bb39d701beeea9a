"""COCO datasets for detection, segmentation (polygons -> class-index masks) and multi-label classification."""

import json
import os

import numpy as np
import torch
from PIL import Image, ImageDraw

from .events import DataError

_BILINEAR = getattr(Image, "Resampling", Image).BILINEAR
_FLIP = getattr(Image, "Transpose", Image).FLIP_LEFT_RIGHT


def _fail(path, message):
    raise DataError(f"{path}: {message}")


def read_coco(path, classes):
    """Reads a COCO file; returns (images, warnings). Each image: {file_name, anns: [(class_index, bbox, seg)]}."""
    try:
        with open(path, "r", encoding="utf-8") as f:
            coco = json.load(f)
    except FileNotFoundError:
        _fail(path, "file does not exist")
    except (OSError, ValueError) as e:
        _fail(path, f"not readable COCO JSON ({e})")
    if not isinstance(coco, dict) or not isinstance(coco.get("images"), list):
        _fail(path, "expected a COCO object with an 'images' list")
    index_of = {c["id"]: i for i, c in enumerate(classes)}
    images, by_id = [], {}
    for i, im in enumerate(coco["images"]):
        if not isinstance(im, dict) or "id" not in im or not isinstance(im.get("file_name"), str):
            _fail(path, f"images[{i}] = {json.dumps(im)[:200]} needs 'id' and 'file_name'")
        entry = {"id": im["id"], "file_name": im["file_name"], "anns": []}
        by_id[im["id"]] = entry
        images.append(entry)
    unknown_categories, orphans = set(), 0
    for i, a in enumerate(coco.get("annotations") or []):
        if not isinstance(a, dict) or "image_id" not in a or "category_id" not in a:
            _fail(path, f"annotations[{i}] needs 'image_id' and 'category_id'")
        image = by_id.get(a["image_id"])
        if image is None:
            orphans += 1
            continue
        k = index_of.get(a["category_id"])
        if k is None:
            unknown_categories.add(a["category_id"])
            continue
        bbox = a.get("bbox")
        if bbox is not None and (not isinstance(bbox, list) or len(bbox) != 4):
            _fail(path, f"annotations[{i}].bbox = {json.dumps(bbox)}: expected [x, y, width, height]")
        seg = a.get("segmentation")
        if isinstance(seg, dict):
            _fail(path, f"annotations[{i}].segmentation is RLE; only polygon segmentations are supported")
        image["anns"].append((k, bbox, seg if isinstance(seg, list) else None))
    warnings = []
    if unknown_categories:
        ids = ", ".join(str(c) for c in sorted(unknown_categories, key=str))
        warnings.append(f"{path}: annotations of category ids {ids} are not in 'classes' and were ignored")
    if orphans:
        warnings.append(f"{path}: {orphans} annotation(s) reference no image and were ignored")
    return images, warnings


def _to_tensor(img):
    arr = np.asarray(img, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


def load_image(path, size):
    """Reads an image as RGB and resizes it to size x size; returns (PIL image, sx, sy)."""
    try:
        with Image.open(path) as im:
            rgb = im.convert("RGB")
    except FileNotFoundError:
        raise DataError(f"image {path} does not exist")
    except (OSError, ValueError) as e:
        raise DataError(f"image {path} is not readable ({e})")
    w, h = rgb.size
    if (w, h) != (size, size):
        rgb = rgb.resize((size, size), _BILINEAR)
    return rgb, size / w, size / h


class CocoDataset(torch.utils.data.Dataset):
    """Items are (image float tensor 3xSxS in [0, 1], target); the target depends on the task:
    detection {'boxes' [N,4] xyxy, 'labels' [N] (class index + 1)}, segmentation a long SxS mask,
    classification a float multi-hot vector over the classes."""

    def __init__(self, coco_path, images_dir, classes, task, image_size, train):
        self.images, self.warnings = read_coco(coco_path, classes)
        self.images_dir = images_dir
        self.num_classes = len(classes)
        self.task = task
        self.size = image_size
        self.train = train
        for im in self.images:
            p = os.path.join(images_dir, im["file_name"])
            if not os.path.isfile(p):
                raise DataError(f"{coco_path}: image '{im['file_name']}' not found at {p}")

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        entry = self.images[i]
        img, sx, sy = load_image(os.path.join(self.images_dir, entry["file_name"]), self.size)
        flip = self.train and bool(torch.rand(1).item() < 0.5)
        s = self.size
        if self.task == "detection":
            boxes, labels = [], []
            for k, bbox, _ in entry["anns"]:
                if bbox is None:
                    continue
                x, y, w, h = bbox
                x1, y1 = max(0.0, x * sx), max(0.0, y * sy)
                x2, y2 = min(float(s), (x + w) * sx), min(float(s), (y + h) * sy)
                if x2 - x1 < 1 or y2 - y1 < 1:
                    continue
                if flip:
                    x1, x2 = s - x2, s - x1
                boxes.append([x1, y1, x2, y2])
                labels.append(k + 1)
            target = {
                "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                "labels": torch.tensor(labels, dtype=torch.int64),
            }
        elif self.task == "segmentation":
            mask = Image.new("L", (s, s), 0)
            draw = ImageDraw.Draw(mask)
            for k, bbox, seg in entry["anns"]:
                polygons = [p for p in (seg or []) if isinstance(p, list) and len(p) >= 6]
                if polygons:
                    for p in polygons:
                        draw.polygon([(p[j] * sx, p[j + 1] * sy) for j in range(0, len(p) - 1, 2)], fill=k + 1)
                elif bbox is not None:
                    x, y, w, h = bbox
                    draw.rectangle([x * sx, y * sy, (x + w) * sx - 1, (y + h) * sy - 1], fill=k + 1)
            if flip:
                mask = mask.transpose(_FLIP)
            target = torch.from_numpy(np.asarray(mask, dtype=np.int64).copy())
        else:
            target = torch.zeros(self.num_classes, dtype=torch.float32)
            for k, _, _ in entry["anns"]:
                target[k] = 1.0
        if flip:
            img = img.transpose(_FLIP)
        return _to_tensor(img), target


def collate_detection(batch):
    return [b[0] for b in batch], [b[1] for b in batch]


def collate_dense(batch):
    return torch.stack([b[0] for b in batch]), torch.stack([b[1] for b in batch])


def collate_for(task):
    return collate_detection if task == "detection" else collate_dense
