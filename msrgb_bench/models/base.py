"""The interface every backbone offers: last-stage tokens, a pooled 512-d embedding and a head.

Distillers only ever call :meth:`Backbone.forward_features` and :meth:`Backbone.forward_head`,
so they never depend on how a particular network lays out its intermediate outputs.
"""

from __future__ import annotations

import abc
from typing import ClassVar, NamedTuple

from torch import Tensor, nn

EMBED_DIM = 512
"""Width of the pooled embedding of every backbone (the paper's ``feature[4]``)."""


class Features(NamedTuple):
    """What a backbone's feature extractor returns.

    Attributes:
        tokens: The last stage's feature map flattened to tokens, ``B x N x C`` with
            ``N = H' * W'`` in row-major order and ``C = Backbone.token_dim``.
        embedding: The pooled ``B x 512`` embedding that the classifier head reads.
    """

    tokens: Tensor
    embedding: Tensor


class Backbone(nn.Module, abc.ABC):
    """A classifier split into a feature extractor and a linear head.

    Args:
        in_chans: Number of input channels (13, 10 or 14 MS bands, or 3 for RGB).
        num_classes: Number of output logits.

    Attributes:
        arch: The registry name of the architecture.
        token_dim: Width ``C`` of :attr:`Features.tokens`.
        embed_dim: Width of :attr:`Features.embedding` (always 512).
        reduction: Spatial down-sampling from input to tokens (``N = (H / reduction) ** 2``
            for square inputs divisible by it).
    """

    arch: ClassVar[str]
    token_dim: ClassVar[int]
    embed_dim: ClassVar[int] = EMBED_DIM
    reduction: ClassVar[int] = 32

    def __init__(self, in_chans: int, num_classes: int) -> None:
        super().__init__()
        if in_chans < 1:
            raise ValueError(f"in_chans must be at least 1, got {in_chans}")
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        self.in_chans = in_chans
        self.num_classes = num_classes

    @abc.abstractmethod
    def forward_features(self, x: Tensor) -> Features:
        """Return the last-stage tokens and the pooled embedding of a ``B x C_in x H x W`` batch."""

    @abc.abstractmethod
    def forward_head(self, embedding: Tensor) -> Tensor:
        """Return ``B x num_classes`` logits from ``B x 512`` embeddings."""

    def forward(self, x: Tensor) -> Tensor:
        """Return the logits of a ``B x C_in x H x W`` batch."""
        return self.forward_head(self.forward_features(x).embedding)


def feature_map_to_tokens(feature_map: Tensor) -> Tensor:
    """Flatten a ``B x C x H x W`` map to ``B x (H*W) x C`` tokens (row-major)."""
    return feature_map.flatten(2).transpose(1, 2)
