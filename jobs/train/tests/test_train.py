"""End-to-end trainer runs on tiny generated data (64 px PNGs, a few steps, 1 thread per process)."""

import json
import os
import shutil
import sys
import tempfile
import unittest

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tiny  # noqa: E402
from geobatch_trainer.export import export_module  # noqa: E402
from geobatch_trainer.models import build_model  # noqa: E402

torch.set_num_threads(1)

TASKS = {
    "detection": "fasterrcnn_mobilenet_v3_large_320_fpn",
    "segmentation": "unet",
    "classification": "resnet18",
}
ARTIFACTS = ["metrics.json", "model.onnx", "model.pt", "onnx-check.json", "onnx-check-input.bin"]


def repeat_first_image(root, copies):
    """Rewrites train.json so it lists its first image `copies` times: every batch is the same."""
    path = os.path.join(root, "train.json")
    with open(path) as f:
        coco = json.load(f)
    first = coco["images"][0]
    anns = [a for a in coco["annotations"] if a["image_id"] == first["id"]]
    coco["images"] = [dict(first, id=i + 1) for i in range(copies)]
    coco["annotations"] = [dict(a, id=len(anns) * i + j + 1, image_id=i + 1) for i in range(copies) for j, a in enumerate(anns)]
    with open(path, "w") as f:
        json.dump(coco, f)


def load_model_pt(path):
    saved = torch.load(path, map_location="cpu")
    n = len(saved["classes"])
    model, _ = build_model(saved["task"], saved["model"], n, "none", False, saved["imageSize"], lambda m: None)
    model.load_state_dict(saved["state_dict"])
    return saved, model.eval()


def read_bin(out_dir, spec):
    dtype = "<i8" if spec["dtype"] == "int64" else "<f4"
    return np.fromfile(os.path.join(out_dir, spec["file"]), dtype=dtype).reshape(spec["shape"])


class TmpDirCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="geobatch-trainer-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def dataset(self, name, **kw):
        root = os.path.join(self.tmp, name, "data")
        if not os.path.isdir(root):
            tiny.make_dataset(root, **kw)
        return root

    def config(self, name, task, data_root, **overrides):
        cfg = tiny.base_config(os.path.join(self.tmp, name), task, TASKS[task])
        cfg.update(overrides)
        cfg["data"]["root"] = data_root
        return cfg

    def run_cfg(self, name, cfg, **kw):
        return tiny.run_trainer(cfg, os.path.join(self.tmp, f"{name}.json"), **kw)


class EachTaskTrains(TmpDirCase):
    """Each task: 3 epochs of 3 steps on the same batch (one image repeated), then ONNX export."""

    runs = {}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for task in TASKS:
            root = os.path.join(cls.tmp, task, "data")
            tiny.make_dataset(root, n_train=1, n_val=2, size=64, seed=1)
            repeat_first_image(root, 6)
            lr = {"detection": 0.01, "segmentation": 0.05, "classification": 0.01}[task]
            cfg = tiny.base_config(os.path.join(cls.tmp, task), task, TASKS[task], epochs=3, lr=lr, onnx=True)
            cfg["data"]["root"] = root
            cls.runs[task] = (cfg, *tiny.run_trainer(cfg, os.path.join(cls.tmp, f"{task}.json")))

    def check_run(self, task):
        cfg, code, evs, err = self.runs[task]
        self.assertEqual(code, 0, err[-3000:])
        kinds = [e["event"] for e in evs]
        self.assertEqual(kinds[0], "start")
        self.assertEqual(kinds[-1], "done")
        start = evs[0]
        self.assertEqual((start["task"], start["model"], start["stepsPerEpoch"], start["resumedFrom"]), (task, TASKS[task], 3, None))
        epochs = tiny.of(evs, "epoch")
        self.assertEqual([e["epoch"] for e in epochs], [1, 2, 3])
        self.assertEqual([e["epoch"] for e in tiny.of(evs, "checkpoint")], [1, 2, 3])
        first, last = epochs[0]["trainLoss"], epochs[-1]["trainLoss"]
        self.assertLess(last, first * 0.95, f"{task}: loss {first} -> {last}")
        steps = tiny.of(evs, "step")
        self.assertTrue(all(s["steps"] == 3 and s["imagesPerSecond"] > 0 for s in steps))
        self.assertEqual(sorted(os.listdir(cfg["checkpointDir"])), ["epoch-0001.pt", "epoch-0002.pt", "epoch-0003.pt"])
        names = sorted(e["name"] for e in tiny.of(evs, "artifact"))
        self.assertEqual(names, ["metrics.json", "model.onnx", "model.pt", "onnx-check.json"])
        with open(os.path.join(cfg["outputDir"], "metrics.json")) as f:
            metrics = json.load(f)
        self.assertEqual([e["epoch"] for e in metrics["epochs"]], [1, 2, 3])
        self.assertEqual(metrics["final"], evs[-1]["metrics"])
        return cfg, evs

    def check_onnx_files(self, task):
        """The onnx-check outputs equal a second PyTorch run of model.pt on the check input."""
        cfg, _ = self.check_run(task)
        out = cfg["outputDir"]
        self.assertGreater(os.path.getsize(os.path.join(out, "model.onnx")), 10000)
        with open(os.path.join(out, "onnx-check.json")) as f:
            check = json.load(f)
        self.assertEqual(check["input"]["shape"], [1, 3, 64, 64])
        x = torch.from_numpy(read_bin(out, check["input"]).copy())
        _, model = load_model_pt(os.path.join(out, "model.pt"))
        with torch.no_grad():
            outs = export_module(model, task)(x)
        outs = (outs,) if isinstance(outs, torch.Tensor) else outs
        self.assertEqual(len(outs), len(check["outputs"]))
        for spec, t in zip(check["outputs"], outs):
            self.assertEqual(list(t.shape), spec["shape"], spec["name"])
            np.testing.assert_allclose(read_bin(out, spec), t.numpy(), rtol=1e-5, atol=1e-5, err_msg=spec["name"])
        return check

    def test_detection_loss_goes_down(self):
        _, evs = self.check_run("detection")
        self.assertEqual(set(evs[-1]["metrics"]), {"mAP50", "mAP", "perClass"})
        self.assertEqual(set(evs[-1]["metrics"]["perClass"]["building"]), {"AP50", "AP"})

    def test_segmentation_loss_goes_down(self):
        _, evs = self.check_run("segmentation")
        self.assertEqual(set(evs[-1]["metrics"]), {"mIoU", "meanF1", "perClass"})

    def test_classification_loss_goes_down(self):
        _, evs = self.check_run("classification")
        self.assertEqual(set(evs[-1]["metrics"]), {"f1Samples", "f1Macro", "threshold", "perClass"})
        saved, _ = load_model_pt(os.path.join(self.runs["classification"][0]["outputDir"], "model.pt"))
        self.assertEqual(saved["threshold"], evs[-1]["metrics"]["threshold"])

    def test_onnx_check_detection(self):
        check = self.check_onnx_files("detection")
        self.assertEqual([(o["name"], o["dtype"]) for o in check["outputs"]], [("boxes", "float32"), ("labels", "int64"), ("scores", "float32")])

    def test_onnx_check_segmentation(self):
        check = self.check_onnx_files("segmentation")
        self.assertEqual(check["outputs"][0]["shape"], [1, 3, 64, 64])

    def test_onnx_check_classification(self):
        check = self.check_onnx_files("classification")
        self.assertEqual(check["outputs"][0]["shape"], [1, 2])


class ResumeAndDistributed(TmpDirCase):
    def test_resume_after_a_stopped_run_equals_an_uninterrupted_run(self):
        root = self.dataset("resume")
        common = {"epochs": 2, "onnx": False}
        full = self.config("full", "classification", root, **common)
        code, evs, err = self.run_cfg("full", full)
        self.assertEqual(code, 0, err[-3000:])

        cfg = self.config("part", "classification", root, stopAfterEpoch=1, **common)
        code, evs, err = self.run_cfg("part", cfg)
        self.assertEqual(code, 0, err[-3000:])
        self.assertEqual([e["epoch"] for e in tiny.of(evs, "epoch")], [1])
        self.assertEqual(tiny.of(evs, "done"), [])
        self.assertFalse(os.path.exists(os.path.join(cfg["outputDir"], "model.pt")))

        del cfg["stopAfterEpoch"]
        code, evs, err = self.run_cfg("part", cfg)
        self.assertEqual(code, 0, err[-3000:])
        self.assertEqual(evs[0]["resumedFrom"], 1)
        self.assertEqual([e["epoch"] for e in tiny.of(evs, "epoch")], [2])
        a = torch.load(os.path.join(full["outputDir"], "model.pt"))["state_dict"]
        b = torch.load(os.path.join(cfg["outputDir"], "model.pt"))["state_dict"]
        self.assertEqual(sorted(a), sorted(b))
        for k in a:
            self.assertTrue(torch.allclose(a[k].double(), b[k].double(), atol=1e-6, rtol=0), k)
        with open(os.path.join(cfg["outputDir"], "metrics.json")) as f:
            self.assertEqual([e["epoch"] for e in json.load(f)["epochs"]], [1, 2])

        # all epochs done: a rerun trains nothing and rewrites the artifacts
        os.remove(os.path.join(cfg["outputDir"], "model.pt"))
        code, evs, err = self.run_cfg("part", cfg)
        self.assertEqual(code, 0, err[-3000:])
        self.assertEqual(evs[0]["resumedFrom"], 2)
        self.assertEqual(tiny.of(evs, "epoch"), [])
        self.assertTrue(os.path.exists(os.path.join(cfg["outputDir"], "model.pt")))

        # a checkpoint of another class list is a config error
        cfg["classes"] = [{"id": 1, "name": "building"}]
        code, evs, err = self.run_cfg("part", cfg)
        self.assertEqual(code, 2)
        self.assertEqual(evs[-1]["kind"], "config")
        self.assertIn("classes", evs[-1]["message"])
        self.assertIn("epoch-0002.pt", evs[-1]["message"])

    def test_ddp_two_cpu_processes_match_one_process(self):
        root = self.dataset("ddp", n_train=4, n_val=2)
        results = {}
        for name, nproc in (("one", None), ("two", 2)):
            cfg = self.config(name, "classification", root, epochs=1, onnx=True)
            code, evs, err = self.run_cfg(name, cfg, nproc=nproc)
            self.assertEqual(code, 0, err[-3000:])
            results[name] = (cfg, evs)
        (c1, e1), (c2, e2) = results["one"], results["two"]
        self.assertEqual((e1[0]["worldSize"], e2[0]["worldSize"]), (1, 2))
        self.assertEqual((e1[0]["stepsPerEpoch"], e2[0]["stepsPerEpoch"]), (2, 1))
        self.assertEqual([e["event"] for e in e1 if e["event"] != "step"], [e["event"] for e in e2 if e["event"] != "step"])
        self.assertEqual(len(tiny.of(e2, "start")), 1)  # only rank 0 speaks
        self.assertEqual(sorted(os.listdir(c1["outputDir"])), sorted(os.listdir(c2["outputDir"])))
        self.assertEqual(sorted(os.listdir(c1["checkpointDir"])), sorted(os.listdir(c2["checkpointDir"])))
        for name in ARTIFACTS:
            self.assertTrue(os.path.exists(os.path.join(c2["outputDir"], name)), name)
        m1, m2 = tiny.of(e1, "done")[0]["metrics"], tiny.of(e2, "done")[0]["metrics"]
        self.assertEqual(set(m1), set(m2))
        self.assertEqual(set(m1["perClass"]), set(m2["perClass"]))


class Failures(TmpDirCase):
    NO_NETWORK = {"https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}

    def test_default_weights_without_network_fail_with_kind_weights(self):
        root = self.dataset("weights")
        env = dict(self.NO_NETWORK, TORCH_HOME=os.path.join(self.tmp, "empty-torch-home"))
        cfg = self.config("weights", "classification", root, weights="default", allowScratch=False)
        code, evs, err = self.run_cfg("weights", cfg, env=env)
        self.assertEqual(code, 3, err[-2000:])
        self.assertEqual([e["event"] for e in evs], ["error"])
        self.assertEqual(evs[0]["kind"], "weights")
        for words in ("resnet18", "TORCH_HOME", "allowScratch"):
            self.assertIn(words, evs[0]["message"])

        cfg = self.config("scratch", "classification", root, weights="default", allowScratch=True, maxStepsPerEpoch=1)
        code, evs, err = self.run_cfg("scratch", cfg, env=env)
        self.assertEqual(code, 0, err[-2000:])
        self.assertIn("random init", tiny.of(evs, "warning")[0]["message"])
        self.assertEqual(tiny.of(evs, "start")[0]["weights"], "scratch")

    def test_bad_config_fields_are_all_named(self):
        root = self.dataset("config")
        cfg = self.config("config", "detection", root, model="resnet18", epochs=0, lr=-1, optimizer="adam", bogus=1)
        cfg["data"]["root"] = os.path.join(self.tmp, "missing")
        code, evs, err = self.run_cfg("config", cfg)
        self.assertEqual(code, 2)
        self.assertEqual([(e["event"], e["kind"]) for e in evs], [("error", "config")])
        message = evs[0]["message"]
        for words in ("'model' = \"resnet18\"", "'epochs' = 0", "'lr' = -1", "'optimizer' = \"adam\"", "'bogus'", "'data.root'"):
            self.assertIn(words, message)

    def test_missing_image_is_a_data_error(self):
        root = self.dataset("data")
        os.remove(os.path.join(root, "images", "val-1.png"))
        code, evs, err = self.run_cfg("data", self.config("data", "segmentation", root))
        self.assertEqual(code, 2)
        self.assertEqual(evs[-1]["kind"], "data")
        self.assertIn("val-1.png", evs[-1]["message"])

    def test_check_prints_the_environment(self):
        import subprocess

        p = subprocess.run(
            [sys.executable, "-m", "geobatch_trainer", "--check"],
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONPATH=tiny.TRAIN_DIR),
        )
        self.assertEqual(p.returncode, 0, p.stderr)
        env = json.loads(p.stdout)
        self.assertEqual(env["event"], "env")
        self.assertEqual(env["torch"], torch.__version__)
        self.assertEqual(env["gpus"], torch.cuda.device_count())


if __name__ == "__main__":
    unittest.main()
