"""Downloads torchvision pretrained weights into $TORCH_HOME while the GPU image is built.

Batch jobs then load them from the image and need no internet access. Arguments are weight
enum names as torchvision.models.get_weight takes them, e.g. ResNet50_Weights.IMAGENET1K_V2: the
image passes the list `python -m geobatch_trainer.weights` prints.
"""

import sys

from torchvision.models import get_weight


def main(names: list[str]) -> None:
    if not names:
        sys.exit("usage: bake-weights.py <WeightsEnum.NAME>...")
    for name in names:
        weights = get_weight(name)
        weights.get_state_dict(progress=False, check_hash=True)
        print(f"baked {name} from {weights.url}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
