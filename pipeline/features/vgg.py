"""VGG-19's convolutional trunk up to pool5, the visual extractor of the AVE release.

Seed 004 §5.1: "We use VGG-19 pre-trained on ImageNet as the visual feature extractor";
the AVE store keeps its pool5 maps, 7 x 7 x 512 for a 224 x 224 frame (docs/design.md §3).

Written here instead of imported from torchvision: the torchvision wheel of the package
registry is a CUDA build that fails to import beside this project's CPU torch. The module
names are torchvision's (``features.0`` … ``features.36``), so the ``features.*`` entries of
torchvision's ``vgg19`` state dict (e.g. the ImageNet release ``vgg19-dcbb9e9d.pth``) load
with ``load_state_dict(strict=True)`` once its classifier entries (:data:`HEAD_PREFIXES`),
which the trunk does not have, are set aside.
"""

import torch
from torch import nn

# Configuration "E" of Simonyan & Zisserman (2015): channels of each 3x3 conv, "M" = max-pool.
VGG19_LAYERS = (
    *(64, 64, "M"),
    *(128, 128, "M"),
    *(256, 256, 256, 256, "M"),
    *(512, 512, 512, 512, "M"),
    *(512, 512, 512, 512, "M"),
)
MAP_CHANNELS = 512
STRIDE = 32  # pool5 is 1/32 of the input size
HEAD_PREFIXES = ("classifier.",)  # torchvision's fully connected head, not part of the trunk

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGG19Trunk(nn.Module):
    """VGG-19's 16 convolutions (3x3, padding 1, ReLU) and 5 max-pools, no batch norm.

    Input: RGB images in ``[0, 1]`` normalised with the ImageNet mean and standard deviation
    (:data:`IMAGENET_MEAN`, :data:`IMAGENET_STD`), as torchvision's weights expect.
    """

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for value in VGG19_LAYERS:
            if value == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, value, kernel_size=3, padding=1), nn.ReLU(True)]
                channels = value
        self.features = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """pool5 maps of normalised images: ``(B, 3, H, W)`` → ``(B, 512, H / 32, W / 32)``."""
        return self.features(images)
