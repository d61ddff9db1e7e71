"""ResNet-34 (torchvision building blocks) with any number of input channels."""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.models import resnet34

from msrgb_bench.models.base import Backbone, Features, feature_map_to_tokens
from msrgb_bench.models.registry import register_model


@register_model("resnet34")
class ResNet34(Backbone):
    """ResNet-34: BasicBlocks [3, 4, 6, 3], widths 64-128-256-512, 7x7/2 stem and max-pool.

    Trained from scratch with torchvision's initialisation (Kaiming-normal, fan-out, for the
    convolutions, as the paper's code). ``tokens`` are the ``layer4`` output, 512 wide, with
    ``N = (H / 32) ** 2`` (4 for 64 px inputs, 16 for 128 px); ``embedding`` is their mean.

    Args:
        in_chans: Number of input channels.
        num_classes: Number of output logits.
    """

    token_dim = 512

    def __init__(self, in_chans: int = 3, num_classes: int = 10) -> None:
        super().__init__(in_chans, num_classes)
        net = resnet34(weights=None, num_classes=num_classes)
        conv1 = nn.Conv2d(in_chans, 64, kernel_size=7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(conv1.weight, mode="fan_out", nonlinearity="relu")
        self.stem = nn.Sequential(conv1, net.bn1, net.relu, net.maxpool)
        self.stages = nn.Sequential(net.layer1, net.layer2, net.layer3, net.layer4)
        self.fc = net.fc

    def forward_features(self, x: Tensor) -> Features:
        """Return ``layer4`` tokens (``B x N x 512``) and their mean (``B x 512``)."""
        feature_map = self.stages(self.stem(x))
        return Features(feature_map_to_tokens(feature_map), feature_map.mean(dim=(2, 3)))

    def forward_head(self, embedding: Tensor) -> Tensor:
        """Return logits from the pooled embedding."""
        return self.fc(embedding)
