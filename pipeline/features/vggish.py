"""VGGish (Hershey et al. 2017), the AudioSet audio extractor of the AVE release (seed 004 §5.1).

Written in PyTorch with the layer names of the public PyTorch port ``torchvggish``
(``features.0`` … ``features.13``, ``embeddings.0/2/4``), so that its released state dict
(``vggish-10086976.pth``) loads with ``load_state_dict(strict=True)``. Input: log-mel
examples of 96 frames x 64 bands (:func:`pipeline.features.audio.vggish_examples`).

**Output stage.** The embedding is the output of the last fully connected layer *after its
ReLU*, without the release's PCA whitening and 8-bit quantisation. That is what the AVE
release's audio features look like: ``audio_feature_noisy.h5`` of the official files holds
float values from 0 to 4.54 of which 65% are exactly 0 — non-negative and sparse, as a ReLU
output is, and neither uint8 codes (0-255) nor PCA-whitened values (which take both signs).
"""

import torch
from torch import nn

EMBEDDING_DIM = 128
_CONV_CHANNELS = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M")


def _conv_stack() -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = 1
    for value in _CONV_CHANNELS:
        if value == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, value, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = value
    return nn.Sequential(*layers)


class VGGish(nn.Module):
    """VGGish: four VGG blocks on a 96 x 64 log-mel example, then three fully connected layers.

    Layer shapes: conv 64 → pool → conv 128 → pool → 2 x conv 256 → pool → 2 x conv 512 →
    pool gives a ``(512, 6, 4)`` map; it is flattened in height-width-channel order (the
    TensorFlow layout the released weights were trained with) and mapped 12288 → 4096 →
    4096 → 128, each with a ReLU.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = _conv_stack()
        self.embeddings = nn.Sequential(
            nn.Linear(512 * 6 * 4, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, EMBEDDING_DIM),
            nn.ReLU(inplace=True),
        )

    def forward(self, examples: torch.Tensor) -> torch.Tensor:
        """Embed log-mel examples.

        Args:
            examples: ``(B, 96, 64)`` log-mel examples.

        Returns:
            ``(B, 128)`` non-negative embeddings.
        """
        maps = self.features(examples.unsqueeze(1))  # (B, 512, 6, 4)
        flat = maps.permute(0, 2, 3, 1).flatten(1)  # (B, 12288), height-width-channel order
        return self.embeddings(flat)  # (B, 128)
