"""Evaluation metrics: COCO-style detection AP, segmentation IoU/F1, multi-label F1 and threshold search.

Per-class values are None when a class has no ground truth (and, for IoU/F1, no prediction either);
such classes are left out of the means, as COCO does."""

import numpy as np

IOU_THRESHOLDS = np.round(np.linspace(0.5, 0.95, 10), 2)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)
MAX_DETECTIONS = 100


def box_iou(a, b):
    """IoU matrix of xyxy boxes a [N,4] and b [M,4] (areas without COCO's legacy +1)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _average_precision(scores, matched, n_gt):
    """101-point interpolated AP from detections (score, matched flag) pooled over images."""
    if n_gt == 0:
        return None
    if len(scores) == 0:
        return 0.0
    order = np.argsort(-np.asarray(scores), kind="mergesort")
    tp = np.asarray(matched, dtype=np.float64)[order]
    tp_sum, fp_sum = np.cumsum(tp), np.cumsum(1.0 - tp)
    recall = tp_sum / n_gt
    precision = tp_sum / np.maximum(tp_sum + fp_sum, np.finfo(np.float64).eps)
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # make it non-increasing
    idx = np.searchsorted(recall, RECALL_POINTS, side="left")
    sampled = np.where(idx < len(precision), precision[np.minimum(idx, len(precision) - 1)], 0.0)
    return float(np.mean(sampled))


class DetectionEvaluator:
    """Accumulates per-image predictions and ground truth (xyxy boxes, labels 1..K)."""

    def __init__(self, class_names):
        self.class_names = list(class_names)
        self.images = []

    def add(self, pred_boxes, pred_scores, pred_labels, gt_boxes, gt_labels):
        self.images.append(
            (
                np.asarray(pred_boxes, dtype=np.float64).reshape(-1, 4),
                np.asarray(pred_scores, dtype=np.float64).reshape(-1),
                np.asarray(pred_labels, dtype=np.int64).reshape(-1),
                np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4),
                np.asarray(gt_labels, dtype=np.int64).reshape(-1),
            )
        )

    def _class_ap(self, label):
        """APs of one class at each IoU threshold (None when the class has no ground truth)."""
        n_gt = 0
        scores = []
        matched = [[] for _ in IOU_THRESHOLDS]
        for pb, ps, pl, gb, gl in self.images:
            g = gb[gl == label]
            keep = pl == label
            d, s = pb[keep], ps[keep]
            order = np.argsort(-s, kind="mergesort")[:MAX_DETECTIONS]
            d, s = d[order], s[order]
            n_gt += len(g)
            scores.extend(s.tolist())
            ious = box_iou(d, g)
            for t_i, t in enumerate(IOU_THRESHOLDS):
                used = np.zeros(len(g), dtype=bool)
                for j in range(len(d)):
                    ok = False
                    if len(g):
                        cand = np.where(~used & (ious[j] >= t), ious[j], -1.0)
                        k = int(np.argmax(cand))
                        ok = cand[k] >= 0
                        used[k] |= ok
                    matched[t_i].append(ok)
        return [_average_precision(scores, m, n_gt) for m in matched]

    def compute(self):
        per_class, ap50s, aps = {}, [], []
        for i, name in enumerate(self.class_names):
            by_t = self._class_ap(i + 1)
            if by_t[0] is None:
                per_class[name] = {"AP50": None, "AP": None}
                continue
            ap50, ap = by_t[0], float(np.mean(by_t))
            per_class[name] = {"AP50": ap50, "AP": ap}
            ap50s.append(ap50)
            aps.append(ap)
        return {
            "mAP50": float(np.mean(ap50s)) if ap50s else None,
            "mAP": float(np.mean(aps)) if aps else None,
            "perClass": per_class,
        }


class SegmentationEvaluator:
    """Confusion matrix over class-index masks (0 = background)."""

    def __init__(self, class_names):
        self.class_names = list(class_names)
        n = len(self.class_names) + 1
        self.confusion = np.zeros((n, n), dtype=np.int64)

    def add(self, pred, target):
        n = self.confusion.shape[0]
        p = np.asarray(pred, dtype=np.int64).reshape(-1)
        t = np.asarray(target, dtype=np.int64).reshape(-1)
        self.confusion += np.bincount(t * n + p, minlength=n * n).reshape(n, n)

    def compute(self):
        c = self.confusion
        per_class, ious, f1s = {}, [], []
        for i, name in enumerate(self.class_names):
            k = i + 1
            tp = c[k, k]
            fn = c[k, :].sum() - tp
            fp = c[:, k].sum() - tp
            if tp + fn + fp == 0:
                per_class[name] = {"IoU": None, "F1": None}
                continue
            iou = float(tp / (tp + fp + fn))
            f1 = float(2 * tp / (2 * tp + fp + fn))
            per_class[name] = {"IoU": iou, "F1": f1}
            ious.append(iou)
            f1s.append(f1)
        return {
            "mIoU": float(np.mean(ious)) if ious else None,
            "meanF1": float(np.mean(f1s)) if f1s else None,
            "perClass": per_class,
        }


def multilabel_f1(probs, targets, threshold):
    """Returns (f1Samples, f1Macro, per-class F1 list). A sample with no true and no predicted label
    scores 1; a class with neither scores None and is left out of the macro mean."""
    probs = np.asarray(probs, dtype=np.float64)
    t = np.asarray(targets, dtype=bool)
    p = probs >= threshold
    tp = (p & t).sum(1)
    denom = p.sum(1) + t.sum(1)
    samples = np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), 1.0)
    ctp = (p & t).sum(0)
    cden = p.sum(0) + t.sum(0)
    per_class = [float(2 * ctp[k] / cden[k]) if cden[k] > 0 else None for k in range(t.shape[1])]
    valid = [v for v in per_class if v is not None]
    return (
        float(samples.mean()) if len(samples) else None,
        float(np.mean(valid)) if valid else None,
        per_class,
    )


THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.05), 2)


def choose_threshold(probs, targets):
    """The threshold in 0.05..0.95 maximising sample F1; ties go to the one nearest 0.5."""
    best, best_f1 = 0.5, -1.0
    for th in sorted(THRESHOLDS.tolist(), key=lambda v: (abs(v - 0.5), v)):
        f1 = multilabel_f1(probs, targets, th)[0]
        if f1 is not None and f1 > best_f1 + 1e-12:
            best, best_f1 = th, f1
    return float(best)


def classification_metrics(probs, targets, class_names):
    probs = np.asarray(probs, dtype=np.float64).reshape(-1, len(class_names))
    targets = np.asarray(targets).reshape(-1, len(class_names))
    threshold = choose_threshold(probs, targets) if len(probs) else 0.5
    samples, macro, per_class = multilabel_f1(probs, targets, threshold)
    return {
        "f1Samples": samples,
        "f1Macro": macro,
        "threshold": threshold,
        "perClass": {name: {"F1": per_class[i]} for i, name in enumerate(class_names)},
    }
