"""Metrics on hand-made cases whose answers are worked out by hand."""

import os
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from geobatch_trainer.metrics import (  # noqa: E402
    DetectionEvaluator,
    SegmentationEvaluator,
    box_iou,
    choose_threshold,
    classification_metrics,
    multilabel_f1,
)


class DetectionAP(unittest.TestCase):
    def test_perfect_detector_scores_one(self):
        ev = DetectionEvaluator(["a", "b"])
        gts = [([[0, 0, 10, 10], [20, 20, 40, 30]], [1, 2]), ([[5, 5, 15, 25]], [1])]
        for boxes, labels in gts:
            ev.add(boxes, [0.9] * len(boxes), labels, boxes, labels)
        m = ev.compute()
        self.assertEqual(m["mAP50"], 1.0)
        self.assertEqual(m["mAP"], 1.0)
        self.assertEqual(m["perClass"], {"a": {"AP50": 1.0, "AP": 1.0}, "b": {"AP50": 1.0, "AP": 1.0}})

    def test_shifted_box_scores_what_its_iou_implies(self):
        gt, pred = [0, 0, 10, 10], [2.5, 0, 12.5, 10]  # overlap 75, union 125
        self.assertAlmostEqual(float(box_iou([gt], [pred])[0, 0]), 0.6)
        ev = DetectionEvaluator(["a"])
        ev.add([pred], [0.8], [1], [gt], [1])
        m = ev.compute()
        self.assertEqual(m["mAP50"], 1.0)
        # matched at IoU thresholds .50, .55, .60 and missed at .65 ... .95: 3 of 10
        self.assertAlmostEqual(m["mAP"], 0.3)

    def test_missed_object_and_false_positive(self):
        # Two objects; one found (score .9), one missed; a false positive (score .8) elsewhere.
        # Ranked: TP, FP -> recall .5, .5; precision 1, .5. Recall points 0, .01 ... .50 (51 of 101)
        # get precision 1, the rest 0: AP = 51/101 at every IoU threshold.
        ev = DetectionEvaluator(["a"])
        ev.add([[0, 0, 10, 10]], [0.9], [1], [[0, 0, 10, 10]], [1])
        ev.add([[50, 50, 60, 60]], [0.8], [1], [[0, 0, 10, 10]], [1])
        m = ev.compute()
        self.assertAlmostEqual(m["mAP50"], 51 / 101)
        self.assertAlmostEqual(m["mAP"], 51 / 101)

    def test_false_positive_ranked_first(self):
        # FP (.95) before TP (.9), two objects: precision 0 then .5 -> interpolated .5 up to recall .5.
        ev = DetectionEvaluator(["a"])
        ev.add([[0, 0, 10, 10]], [0.9], [1], [[0, 0, 10, 10]], [1])
        ev.add([[50, 50, 60, 60]], [0.95], [1], [[0, 0, 10, 10]], [1])
        self.assertAlmostEqual(ev.compute()["mAP50"], 0.5 * 51 / 101)

    def test_duplicate_detection_is_a_false_positive_and_wrong_class_does_not_match(self):
        ev = DetectionEvaluator(["a", "b"])
        # class a: TP (.9) then a duplicate on the same object (.8) = FP -> AP 1 (recall 1 reached at precision 1)
        # class b: its only detection is on the class-a object -> no b ground truth -> b is None, not in the mean
        ev.add([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], [0.9, 0.8, 0.7], [1, 1, 2], [[0, 0, 10, 10]], [1])
        m = ev.compute()
        self.assertEqual(m["perClass"]["a"]["AP50"], 1.0)
        self.assertIsNone(m["perClass"]["b"]["AP50"])
        self.assertEqual(m["mAP50"], 1.0)

    def test_no_detections_scores_zero(self):
        ev = DetectionEvaluator(["a"])
        ev.add(np.zeros((0, 4)), [], [], [[0, 0, 10, 10]], [1])
        self.assertEqual(ev.compute()["mAP"], 0.0)


class SegmentationIoU(unittest.TestCase):
    def test_hand_made_masks(self):
        target = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 2], [0, 0, 0, 0]])
        pred = np.array([[1, 1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 2], [0, 0, 0, 0]])
        ev = SegmentationEvaluator(["a", "b", "c"])
        ev.add(pred, target)
        m = ev.compute()
        # class a: tp 2, fp 2, fn 2 -> IoU 2/6, F1 4/8; class b: perfect; class c: absent everywhere
        self.assertAlmostEqual(m["perClass"]["a"]["IoU"], 1 / 3)
        self.assertAlmostEqual(m["perClass"]["a"]["F1"], 0.5)
        self.assertEqual(m["perClass"]["b"], {"IoU": 1.0, "F1": 1.0})
        self.assertEqual(m["perClass"]["c"], {"IoU": None, "F1": None})
        self.assertAlmostEqual(m["mIoU"], (1 / 3 + 1) / 2)
        self.assertAlmostEqual(m["meanF1"], 0.75)

    def test_accumulates_over_batches(self):
        ev = SegmentationEvaluator(["a"])
        ev.add(np.array([[1, 0]]), np.array([[1, 1]]))
        ev.add(np.array([[1, 1]]), np.array([[0, 1]]))
        # tp 2, fn 1, fp 1
        self.assertAlmostEqual(ev.compute()["mIoU"], 0.5)


class MultiLabelF1(unittest.TestCase):
    def test_f1_by_hand(self):
        probs = np.array([[0.9, 0.2, 0.6], [0.1, 0.8, 0.4], [0.7, 0.7, 0.1], [0.2, 0.1, 0.3]])
        targets = np.array([[1, 0, 0], [0, 1, 1], [1, 0, 0], [0, 0, 0]])
        samples, macro, per_class = multilabel_f1(probs, targets, 0.5)
        # sample F1: 2*1/(2+1), 2*1/(1+2), 2*1/(2+1), empty & empty = 1
        self.assertAlmostEqual(samples, (2 / 3 * 3 + 1) / 4)
        # class 0: tp 2 fp 0 fn 0 -> 1; class 1: tp 1 fp 1 -> 2/3; class 2: tp 0 fp 1 fn 1 -> 0
        self.assertEqual(per_class[0], 1.0)
        self.assertAlmostEqual(per_class[1], 2 / 3)
        self.assertEqual(per_class[2], 0.0)
        self.assertAlmostEqual(macro, (1 + 2 / 3 + 0) / 3)

    def test_threshold_choice(self):
        # positives score .3, negatives .1: any threshold in (.1, .3] separates them; the tie goes
        # to the one nearest .5, i.e. .3
        probs = np.array([[0.3, 0.1], [0.1, 0.3], [0.3, 0.3], [0.1, 0.1]])
        targets = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
        self.assertAlmostEqual(choose_threshold(probs, targets), 0.3)
        m = classification_metrics(probs, targets, ["a", "b"])
        self.assertAlmostEqual(m["threshold"], 0.3)
        self.assertEqual(m["f1Samples"], 1.0)
        self.assertEqual(m["perClass"], {"a": {"F1": 1.0}, "b": {"F1": 1.0}})
        # at .5 nothing is predicted: only the negative sample scores
        self.assertAlmostEqual(multilabel_f1(probs, targets, 0.5)[0], 0.25)


if __name__ == "__main__":
    unittest.main()
