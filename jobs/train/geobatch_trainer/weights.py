"""The pretrained weights the trainer can load: `python -m geobatch_trainer.weights` prints them.

The GPU image bakes exactly this list into $TORCH_HOME (docker/gpu.Dockerfile), so that every
model runs with `weights: default` and no internet. The list is not written down: it is traced by
building every model config.py accepts with its default weights and recording each weights file
torchvision asks for, backbones included, so it follows models.py and the installed torchvision.
"""

import contextlib
import sys
from unittest import mock

import torch.nn as nn
from torchvision.models._api import WeightsEnum

from .config import MODELS
from .models import build_model


def weight_name(weights):
    """The name torchvision.models.get_weight takes, e.g. ResNet50_Weights.IMAGENET1K_V2."""
    return f"{type(weights).__name__}.{weights.name}"


@contextlib.contextmanager
def recording_weights():
    """Records the weights every model built inside asks for, without downloading or loading them."""
    seen = []

    def get_state_dict(self, *args, **kwargs):
        seen.append(weight_name(self))
        return {}

    with mock.patch.object(WeightsEnum, "get_state_dict", get_state_dict), mock.patch.object(
        nn.Module, "load_state_dict", lambda self, *args, **kwargs: None
    ):
        yield seen


def pretrained_weights():
    """Sorted names of every weights file `weights: default` loads, over every model the trainer offers."""
    with recording_weights() as seen:
        for task, names in MODELS.items():
            for name in names:
                build_model(task, name, 1, "default", False, 64, lambda message: None)
    return sorted(set(seen))


if __name__ == "__main__":
    for line in pretrained_weights():
        print(line)
    sys.stdout.flush()
