"""The weights list the GPU image bakes (python -m geobatch_trainer.weights) against what the trainer loads."""

import importlib.util
import os
import subprocess
import sys
import unittest
from unittest import mock

import torch
from torchvision.models import ResNet50_Weights, get_weight
from torchvision.models import detection as tvdet
from torchvision.models._api import WeightsEnum

TRAIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(os.path.dirname(TRAIN_DIR))
sys.path.insert(0, TRAIN_DIR)

from geobatch_trainer import weights  # noqa: E402
from geobatch_trainer.config import MODELS  # noqa: E402
from geobatch_trainer.events import TrainerError  # noqa: E402
from geobatch_trainer.models import build_model  # noqa: E402

torch.set_num_threads(1)


def bake_weights_module():
    spec = importlib.util.spec_from_file_location("bake_weights", os.path.join(REPO, "docker", "bake-weights.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def listed():
    out = subprocess.run(
        [sys.executable, "-m", "geobatch_trainer.weights"],
        cwd=TRAIN_DIR,
        env=dict(os.environ, PYTHONPATH=TRAIN_DIR),
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()


class WeightsList(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.names = listed()

    def test_bake_weights_downloads_exactly_the_listed_weights(self):
        baked = []

        def get_state_dict(self, *args, **kwargs):
            baked.append(weights.weight_name(self))
            return {}

        with mock.patch.object(WeightsEnum, "get_state_dict", get_state_dict), mock.patch("builtins.print"):
            bake_weights_module().main(self.names)
        self.assertEqual(baked, self.names)

    def test_the_listed_weights_let_every_model_load_its_default_weights(self):
        """With only the listed files in $TORCH_HOME, every model of every task builds with weights: default."""
        baked = set(self.names)

        def get_state_dict(self, *args, **kwargs):
            if weights.weight_name(self) not in baked:
                raise FileNotFoundError(f"{weights.weight_name(self)} is not baked")
            return {}

        built = []
        with mock.patch.object(WeightsEnum, "get_state_dict", get_state_dict), mock.patch.object(
            torch.nn.Module, "load_state_dict", lambda self, *a, **k: None
        ):
            for task, models in MODELS.items():
                for name in models:
                    _, used = build_model(task, name, 1, "default", False, 64, lambda m: None)
                    built.append((name, used))
        expected = [(name, "none" if name == "unet" else "default") for models in MODELS.values() for name in models]
        self.assertEqual(built, expected)
        self.assertGreaterEqual(len(built), 8)

    def test_every_listed_name_is_a_torchvision_weight_with_a_url(self):
        self.assertEqual(self.names, sorted(set(self.names)))
        for name in self.names:
            self.assertTrue(get_weight(name).url.startswith("https://"), name)

    def test_the_recorder_sees_backbone_weights(self):
        with weights.recording_weights() as seen:
            tvdet.fasterrcnn_resnet50_fpn(weights=None, weights_backbone=ResNet50_Weights.DEFAULT, num_classes=2)
        self.assertEqual(seen, [weights.weight_name(ResNet50_Weights.DEFAULT)])

    def test_a_model_whose_weights_are_missing_names_the_model_and_the_weights(self):
        def get_state_dict(self, *args, **kwargs):
            raise FileNotFoundError("not in $TORCH_HOME")

        with mock.patch.object(WeightsEnum, "get_state_dict", get_state_dict):
            with self.assertRaises(TrainerError) as raised:
                build_model("detection", "fasterrcnn_mobilenet_v3_large_320_fpn", 1, "default", False, 64, lambda m: None)
        self.assertEqual(raised.exception.kind, "weights")
        for words in ("'fasterrcnn_mobilenet_v3_large_320_fpn'", "FasterRCNN_MobileNet_V3_Large_320_FPN_Weights.COCO_V1", "allowScratch"):
            self.assertIn(words, raised.exception.message)


if __name__ == "__main__":
    unittest.main()
