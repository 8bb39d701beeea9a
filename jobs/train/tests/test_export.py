"""ONNX export with the TorchScript exporter on every PyTorch: 1.13 here, 2.9+ in the GPU image."""

import json
import os
import shutil
import sys
import tempfile
import unittest
from unittest import mock

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from geobatch_trainer import export  # noqa: E402
from geobatch_trainer.models import build_model  # noqa: E402

torch.set_num_threads(1)
REAL_EXPORT = torch.onnx.export


def small_model():
    model, _ = build_model("classification", "resnet18", 2, "none", False, 32, lambda m: None)
    return model


class Export(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="geobatch-export-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def test_exports_with_the_installed_torch(self):
        artifacts = export.export_onnx(small_model(), "classification", 32, self.tmp)
        self.assertEqual([name for name, _ in artifacts], ["model.onnx", "onnx-check.json"])
        with open(os.path.join(self.tmp, "model.onnx"), "rb") as f:
            self.assertGreater(len(f.read()), 10000)
        self.assertEqual(
            sorted(os.listdir(self.tmp)),
            ["model.onnx", "onnx-check-embedding.bin", "onnx-check-input.bin", "onnx-check-scores.bin", "onnx-check.json"],
        )

    def test_the_batch_axis_is_dynamic_except_for_detection(self):
        self.assertEqual(export.dynamic_axes("segmentation"), {"image": {0: "batch"}, "logits": {0: "batch"}})
        self.assertEqual(
            export.dynamic_axes("classification"),
            {"image": {0: "batch"}, "scores": {0: "batch"}, "embedding": {0: "batch"}},
        )
        self.assertIsNone(export.dynamic_axes("detection"))
        seen = []

        def recording_export(model, args, f, **kwargs):
            seen.append(kwargs.get("dynamic_axes"))
            return REAL_EXPORT(model, args, f, **kwargs)

        with mock.patch.object(torch.onnx, "export", recording_export):
            export.export_onnx(small_model(), "classification", 32, self.tmp)
        self.assertEqual(seen, [{"image": {0: "batch"}, "scores": {0: "batch"}, "embedding": {0: "batch"}}])
        # the symbolic dimension is stored by name in the graph's input and output shapes
        # (python onnxruntime is not installed here: test/train/onnx-batch.test.ts runs a batch of 2)
        with open(os.path.join(self.tmp, "model.onnx"), "rb") as f:
            self.assertGreaterEqual(f.read().count(b"batch"), 2)
        with open(os.path.join(self.tmp, "onnx-check.json"), "r", encoding="utf-8") as f:
            self.assertEqual(json.load(f)["input"]["shape"], [1, 3, 32, 32])

    def test_classifier_embedding_is_the_normalised_pooled_backbone_features(self):
        model = small_model()
        export.export_onnx(model, "classification", 32, self.tmp)
        with open(os.path.join(self.tmp, "onnx-check.json"), "r", encoding="utf-8") as f:
            check = json.load(f)
        outputs = {o["name"]: o for o in check["outputs"]}
        self.assertEqual([o["name"] for o in check["outputs"]], ["scores", "embedding"])
        self.assertEqual(outputs["embedding"]["shape"], [1, 512])  # resnet18's fc input
        self.assertEqual(outputs["scores"]["shape"], [1, 2])
        with open(os.path.join(self.tmp, "onnx-check-input.bin"), "rb") as f:
            x = torch.frombuffer(bytearray(f.read()), dtype=torch.float32).reshape(1, 3, 32, 32)
        with open(os.path.join(self.tmp, "onnx-check-embedding.bin"), "rb") as f:
            got = torch.frombuffer(bytearray(f.read()), dtype=torch.float32)
        model.eval()
        with torch.no_grad():
            pooled = model.backbone(model.norm(x))[0]  # avgpool + flatten, fc is Identity
            scores = torch.sigmoid(model.head(pooled[None]))[0]
        want = pooled / pooled.norm()
        self.assertAlmostEqual(float(got.norm()), 1.0, places=5)
        self.assertLess(float((got - want).abs().max()), 1e-6)
        with open(os.path.join(self.tmp, "onnx-check-scores.bin"), "rb") as f:
            got_scores = torch.frombuffer(bytearray(f.read()), dtype=torch.float32)
        self.assertLess(float((got_scores - scores).abs().max()), 1e-6)

    def test_asks_for_the_torchscript_exporter_where_torch_has_a_dynamo_switch(self):
        calls = []

        # the signature of torch >= 2.5, where dynamo=True (2.9+) needs onnxscript
        def export_with_dynamo(model, args, f, *, dynamo=True, **kwargs):
            calls.append(dynamo)
            if dynamo:
                raise ModuleNotFoundError("No module named 'onnxscript'")
            return REAL_EXPORT(model, args, f, **kwargs)

        with mock.patch.object(torch.onnx, "export", export_with_dynamo):
            export.export_onnx(small_model(), "classification", 32, self.tmp)
        self.assertEqual(calls, [False])
        self.assertTrue(os.path.isfile(os.path.join(self.tmp, "model.onnx")))

    def test_passes_no_dynamo_switch_to_a_torch_without_one(self):
        def old_export(model, args, f, export_params=True, opset_version=None):
            raise AssertionError("unused")

        self.assertEqual(export.torchscript_export_options(old_export), {})
        self.assertEqual(export.torchscript_export_options(lambda m, a, f, dynamo=True, **kw: None), {"dynamo": False})


if __name__ == "__main__":
    unittest.main()
