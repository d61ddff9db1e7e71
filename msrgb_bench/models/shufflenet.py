"""ShuffleNetV2 x0.5 (torchvision building blocks) with a 1024 -> 512 projection."""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.models import shufflenet_v2_x0_5

from msrgb_bench.models.base import EMBED_DIM, Backbone, Features, feature_map_to_tokens
from msrgb_bench.models.registry import register_model

CONV5_CHANNELS = 1024


@register_model("shufflenetv2")
class ShuffleNetV2(Backbone):
    """ShuffleNetV2 x0.5: repeats [4, 8, 4], channels 24-48-96-192, ``conv5`` at 1024.

    As in the paper's code, a ``Linear(1024, 512)`` projection follows global pooling and the
    classifier reads its output; PyTorch's default initialisation is kept.

    ``tokens`` are the **``conv5`` output, 1024 wide** (``token_dim = 1024``), the same tensor the
    paper's code exposes as ``feature[3]``: the projection acts after pooling, so there are no
    512-wide tokens. Methods that need 512-wide tokens (SemBridge's alignment) must project them.
    ``embedding`` is the projection of the pooled ``conv5`` map (``B x 512``).

    Args:
        in_chans: Number of input channels.
        num_classes: Number of output logits.
    """

    token_dim = CONV5_CHANNELS

    def __init__(self, in_chans: int = 3, num_classes: int = 10) -> None:
        super().__init__(in_chans, num_classes)
        net = shufflenet_v2_x0_5(weights=None, num_classes=num_classes)
        conv1 = net.conv1
        conv1[0] = nn.Conv2d(in_chans, conv1[0].out_channels, 3, stride=2, padding=1, bias=False)
        self.stem = nn.Sequential(conv1, net.maxpool)
        self.stages = nn.Sequential(net.stage2, net.stage3, net.stage4, net.conv5)
        self.projection = nn.Linear(CONV5_CHANNELS, EMBED_DIM)
        self.fc = nn.Linear(EMBED_DIM, num_classes)

    def forward_features(self, x: Tensor) -> Features:
        """Return ``conv5`` tokens (``B x N x 1024``) and the projected pooled map (``B x 512``)."""
        feature_map = self.stages(self.stem(x))
        pooled = feature_map.mean(dim=(2, 3))
        return Features(feature_map_to_tokens(feature_map), self.projection(pooled))

    def forward_head(self, embedding: Tensor) -> Tensor:
        """Return logits from the 512-d embedding."""
        return self.fc(embedding)
