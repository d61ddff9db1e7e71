"""MobileNetV2 (torchvision building blocks) with its last 1x1 convolution at 512 channels."""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.models import mobilenet_v2
from torchvision.ops.misc import Conv2dNormActivation

from msrgb_bench.models.base import EMBED_DIM, Backbone, Features, feature_map_to_tokens
from msrgb_bench.models.registry import register_model


@register_model("mobilenetv2")
class MobileNetV2(Backbone):
    """MobileNetV2, width 1.0, the standard inverted-residual table and ReLU6.

    As in the paper's code the last 1x1 convolution has 512 channels instead of 1280 and the
    classifier is ``Dropout(0.2) + Linear(512, K)``. Initialisation: Kaiming-normal (fan-out)
    convolutions, BatchNorm weight 1 / bias 0, Linear N(0, 0.01) with zero bias. ``tokens`` are
    the last convolution's output, 512 wide, ``N = (H / 32) ** 2``; ``embedding`` is their mean.

    Args:
        in_chans: Number of input channels.
        num_classes: Number of output logits.
        dropout: Dropout probability before the classifier.
    """

    token_dim = EMBED_DIM

    def __init__(self, in_chans: int = 3, num_classes: int = 10, dropout: float = 0.2) -> None:
        super().__init__(in_chans, num_classes)
        net = mobilenet_v2(weights=None, num_classes=num_classes)
        features = net.features
        stem = features[0]
        stem[0] = nn.Conv2d(in_chans, stem[0].out_channels, 3, stride=2, padding=1, bias=False)
        last_in = features[-1][0].in_channels
        features[-1] = Conv2dNormActivation(
            last_in, EMBED_DIM, kernel_size=1, activation_layer=nn.ReLU6
        )
        self.features = features
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(EMBED_DIM, num_classes))
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.01)
                nn.init.zeros_(module.bias)

    def forward_features(self, x: Tensor) -> Features:
        """Return last-conv tokens (``B x N x 512``) and their mean (``B x 512``)."""
        feature_map = self.features(x)
        return Features(feature_map_to_tokens(feature_map), feature_map.mean(dim=(2, 3)))

    def forward_head(self, embedding: Tensor) -> Tensor:
        """Return logits from the pooled embedding."""
        return self.classifier(embedding)
