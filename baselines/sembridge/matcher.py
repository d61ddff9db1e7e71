"""SemBridge's self-supervised semantic matcher (SSM): two towers, a soft CLIP loss, pseudo-RGB.

No real MS-RGB pairs exist, so the matcher learns to align an MS chip with a pseudo-RGB
rendering of the *same* chip: an MS tower and an RGB tower (backbones of the registry, of which
only the pooled 512-d embedding is used), each followed by a :class:`ProjectionHead`, trained with
the released code's soft-target CLIP loss (:func:`soft_clip_loss`). Later, real RGB student images
go through the RGB tower and are matched to MS teacher chips of their class by cosine similarity
(:mod:`~msrgb_bench.baselines.sembridge.initial_pairs`).

Differences from the released code, on purpose:

* the RGB tower runs once per step (the released one runs its backbone twice, updating the BN
  statistics twice);
* pseudo-RGB is the true red, green and blue bands (B04, B03, B02) by name, rendered to 8 bits as
  EuroSAT renders its RGB images and then normalised and resized exactly as real RGB inputs
  (:class:`PseudoRGB`). The released code's first three stored bands, raw 0..255 and not
  normalised, are the ``"first3"`` option (band choice only; the scaling is always ours).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812  (the PyTorch convention)
from torch import Tensor, nn

from msrgb_bench.data.datamodule import normalizer
from msrgb_bench.data.dataset import MS_RGB_BANDS
from msrgb_bench.data.manifest import INFO_NAME, DatasetInfo, read_info
from msrgb_bench.errors import ManifestError
from msrgb_bench.models import EMBED_DIM, Backbone, create_model
from msrgb_bench.pipelines.chips import MS_PREVIEW_SCALE

PSEUDO_RGB_MODES = ("rgb", "first3")
PROJ_DIM = 256

#: MS reflectance (file units, reflectance x 10000) that maps to 255 in pseudo-RGB: EuroSAT's
#: own RGB rendering (bands 4, 3, 2 scaled linearly from 0..2750 to 0..255, clipped, truncated).
REFLECTANCE_SCALE = MS_PREVIEW_SCALE


class ProjectionHead(nn.Module):
    """The released code's projection head: ``LayerNorm(Dropout(Linear(GELU(p))) + p)``.

    ``p = Linear(x)`` is the first projection, added back as a residual.

    Args:
        in_dim: Width of the backbone embedding.
        out_dim: Width of the projection.
        dropout: Dropout probability after the second linear layer.
    """

    def __init__(self, in_dim: int = EMBED_DIM, out_dim: int = PROJ_DIM, dropout: float = 0.1):
        super().__init__()
        self.projection = nn.Linear(in_dim, out_dim)
        self.gelu = nn.GELU()
        self.fc = nn.Linear(out_dim, out_dim)
        self.dropout = nn.Dropout(dropout)
        self.layer_norm = nn.LayerNorm(out_dim)

    def forward(self, x: Tensor) -> Tensor:
        """Return the ``B x out_dim`` projection of ``B x in_dim`` embeddings."""
        projected = self.projection(x)
        x = self.dropout(self.fc(self.gelu(projected)))
        return self.layer_norm(x + projected)


def _freeze_head(backbone: Backbone) -> None:
    """Stop gradients into the backbone's classifier head, which the matcher never uses.

    The head is found as the parameters that ``forward_head`` depends on, so this works for any
    registered backbone. Frozen, the head is not an unused trainable parameter under DDP.
    """
    params = list(backbone.parameters())
    logits = backbone.forward_head(torch.zeros(1, backbone.embed_dim))
    grads = torch.autograd.grad(logits.sum(), params, allow_unused=True)
    for param, grad in zip(params, grads, strict=True):
        if grad is not None:
            param.requires_grad_(False)


class Matcher(nn.Module):
    """Two-tower matcher: an MS tower and an RGB tower, each with a :class:`ProjectionHead`.

    Args:
        ms_in_chans: Input channels of the MS tower.
        arch: Backbone of both towers (see :func:`msrgb_bench.models.list_models`).
        proj_dim: Width of the projected embeddings.
        ms_bands: The MS bands the MS tower takes, in order (recorded, not weights; lets
            :func:`~msrgb_bench.baselines.sembridge.initial_pairs.match_initial_pairs` read the
            right bands). ``None`` when unknown.

    Raises:
        ValueError: If ``ms_bands`` does not have ``ms_in_chans`` entries.
    """

    def __init__(
        self,
        ms_in_chans: int,
        arch: str = "resnet34",
        proj_dim: int = PROJ_DIM,
        *,
        ms_bands: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        if ms_bands is not None and len(ms_bands) != ms_in_chans:
            raise ValueError(f"{len(ms_bands)} ms_bands for an MS tower of {ms_in_chans} channels")
        self.arch = arch
        self.ms_in_chans = ms_in_chans
        self.proj_dim = proj_dim
        self.ms_bands = tuple(ms_bands) if ms_bands is not None else None
        # The backbones' classifier heads are unused (num_classes=1, frozen).
        self.ms_backbone = create_model(arch, in_chans=ms_in_chans, num_classes=1)
        self.rgb_backbone = create_model(arch, in_chans=3, num_classes=1)
        _freeze_head(self.ms_backbone)
        _freeze_head(self.rgb_backbone)
        self.ms_head = ProjectionHead(self.ms_backbone.embed_dim, proj_dim)
        self.rgb_head = ProjectionHead(self.rgb_backbone.embed_dim, proj_dim)

    def encode_ms(self, x: Tensor) -> Tensor:
        """Return the projected, un-normalised ``B x proj_dim`` embeddings of normalised MS."""
        return self.ms_head(self.ms_backbone.forward_features(x).embedding)

    def encode_rgb(self, x: Tensor) -> Tensor:
        """Return the projected, un-normalised ``B x proj_dim`` embeddings of normalised RGB."""
        return self.rgb_head(self.rgb_backbone.forward_features(x).embedding)

    def forward(self, ms: Tensor, rgb: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(encode_ms(ms), encode_rgb(rgb))``."""
        return self.encode_ms(ms), self.encode_rgb(rgb)


def soft_clip_loss(ms_emb: Tensor, rgb_emb: Tensor, temperature: float = 1.0) -> Tensor:
    """The released code's soft-target CLIP loss of a batch of (MS, pseudo-RGB) pairs.

    With ``I = ms_emb`` and ``T = rgb_emb`` (projected, not normalised):
    ``logits = T I^T / tau``, targets ``Y = softmax_row((I I^T + T T^T) / 2 * tau)``, and the
    loss is the batch mean of ``(CE(logits_i, Y_i) + CE(logits^T_i, Y^T_i)) / 2`` with the soft
    cross-entropy ``CE(l, y) = -sum_j y_j log softmax(l)_j``. Computed in float32. Under DDP
    each process contrasts its own share of the batch (fewer negatives than one process).

    Args:
        ms_emb: ``B x D`` MS embeddings.
        rgb_emb: ``B x D`` RGB embeddings of the same chips, in the same order.
        temperature: ``tau``.

    Returns:
        The scalar loss.
    """
    ms, rgb = ms_emb.float(), rgb_emb.float()
    logits = rgb @ ms.T / temperature
    targets = F.softmax((ms @ ms.T + rgb @ rgb.T) / 2 * temperature, dim=-1)
    rgb_loss = F.cross_entropy(logits, targets, reduction="none")
    ms_loss = F.cross_entropy(logits.T, targets.T, reduction="none")
    return ((rgb_loss + ms_loss) / 2).mean()


def pseudo_rgb_bands(info: DatasetInfo, root: str | Path, channels: str = "rgb") -> tuple[str, ...]:
    """Return the MS bands that become red, green and blue.

    Args:
        info: The dataset's ``dataset.json``.
        root: The dataset folder (named in errors).
        channels: ``"rgb"``: B04, B03, B02 by name; ``"first3"``: the first three stored MS bands
            (the released code's choice).

    Raises:
        ValueError: For an unknown ``channels``.
        ManifestError: If the dataset lacks a needed band.
    """
    if channels not in PSEUDO_RGB_MODES:
        raise ValueError(
            f"unknown pseudo-RGB channels {channels!r}; expected {' or '.join(PSEUDO_RGB_MODES)}"
        )
    if channels == "first3":
        if len(info.ms_bands) < 3:
            raise ManifestError(
                Path(root) / INFO_NAME,
                f"has {len(info.ms_bands)} MS bands; pseudo-RGB 'first3' needs three",
            )
        return tuple(info.ms_bands[:3])
    missing = [band for band in MS_RGB_BANDS if band not in info.ms_bands]
    if missing:
        raise ManifestError(
            Path(root) / INFO_NAME,
            f"has no MS band {', '.join(missing)} (MS bands: {', '.join(info.ms_bands)}); "
            f"pseudo-RGB 'rgb' needs {', '.join(MS_RGB_BANDS)} (or use 'first3')",
        )
    return MS_RGB_BANDS


class PseudoRGB(nn.Module):
    """Render raw MS chips as RGB inputs that look like the dataset's real RGB inputs.

    For a batch of raw MS values (file units, as the datasets yield them): the three chosen bands
    (see :func:`pseudo_rgb_bands`) are scaled to 8 bits like EuroSAT's RGB images
    (``floor(clip(reflectance / 2750 * 255, 0, 255))``, :data:`REFLECTANCE_SCALE`), resized
    (bilinear, antialiased, then rounded to whole values like a stored 8-bit image) to the RGB
    chip size of ``dataset.json`` when the sizes differ, and normalised with the RGB train-split
    statistics (:func:`~msrgb_bench.data.datamodule.normalizer`), as real RGB batches are.

    Args:
        root: The dataset folder.
        bands: The MS bands of the input batches, in channel order (default: every stored MS
            band, in file order).
        channels: ``"rgb"`` (B04, B03, B02) or ``"first3"`` (the first three stored bands).

    Raises:
        ManifestError: If the dataset lacks a needed band (the message names its folder).
        ValueError: If ``bands`` lacks a needed band, or ``channels`` is unknown.
    """

    def __init__(
        self, root: str | Path, bands: Sequence[str] | None = None, channels: str = "rgb"
    ) -> None:
        super().__init__()
        info = read_info(root)
        in_bands = tuple(bands) if bands is not None else info.ms_bands
        self.channels = channels
        self.bands = pseudo_rgb_bands(info, root, channels)
        absent = [band for band in self.bands if band not in in_bands]
        if absent:
            raise ValueError(
                f"pseudo-RGB needs MS band {', '.join(absent)} of {root}, but the input holds only "
                f"{', '.join(in_bands)}"
            )
        self.indices = [in_bands.index(band) for band in self.bands]
        self.size = info.rgb_size
        self.normalize = normalizer(root, "rgb")

    def to_8bit(self, x: Tensor) -> Tensor:
        """Return the chosen bands of raw MS ``B x C x H x W`` as 8-bit values (float, 0..255)."""
        picked = x[:, self.indices].float()
        return torch.floor(torch.clamp(picked / REFLECTANCE_SCALE * 255.0, 0.0, 255.0))

    def forward(self, x: Tensor) -> Tensor:
        """Return normalised ``B x 3 x S x S`` pseudo-RGB of raw MS ``B x C x H x W``."""
        rgb = self.to_8bit(x)
        if rgb.shape[-2:] != (self.size, self.size):
            size = (self.size, self.size)
            rgb = F.interpolate(rgb, size, mode="bilinear", align_corners=False, antialias=True)
            rgb = rgb.round().clamp(0.0, 255.0)
        out: Tensor = self.normalize(rgb)
        return out
