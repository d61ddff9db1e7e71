from __future__ import annotations

import pytest
import torch

from msrgb_bench.errors import UnknownNameError
from msrgb_bench.models import EMBED_DIM, Backbone, create_model, list_models

ARCHS = ["mobilenetv2", "resnet34", "shufflenetv2"]
TOKEN_DIM = {"resnet34": 512, "mobilenetv2": 512, "shufflenetv2": 1024}
# First-conv weights per input channel: 7x7x64, 3x3x32, 3x3x24.
STEM_PER_CHANNEL = {"resnet34": 7 * 7 * 64, "mobilenetv2": 3 * 3 * 32, "shufflenetv2": 3 * 3 * 24}
# Parameter counts for RGB input and 10 classes given by the reference (§2, in millions).
REFERENCE_MPARAMS = {"resnet34": 21.29, "mobilenetv2": 1.98, "shufflenetv2": 0.87}


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registry_lists_the_three_backbones() -> None:
    assert list_models() == ARCHS


def test_unknown_model_names_the_known_ones() -> None:
    with pytest.raises(UnknownNameError, match="resnet34"):
        create_model("vgg16")


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("in_chans", [3, 14])
def test_features_shapes_and_head(arch: str, in_chans: int) -> None:
    model = create_model(arch, in_chans=in_chans, num_classes=7).eval()
    assert isinstance(model, Backbone)
    assert model.arch == arch and model.token_dim == TOKEN_DIM[arch]
    x = torch.randn(2, in_chans, 64, 64)
    with torch.no_grad():
        feats = model.forward_features(x)
        logits = model(x)
    assert feats.tokens.shape == (2, (64 // 32) ** 2, TOKEN_DIM[arch])
    assert feats.embedding.shape == (2, EMBED_DIM)
    assert logits.shape == (2, 7)
    torch.testing.assert_close(model.forward_head(feats.embedding), logits)


@pytest.mark.parametrize("arch", ["resnet34", "mobilenetv2"])
def test_embedding_is_the_mean_of_the_tokens(arch: str) -> None:
    model = create_model(arch, in_chans=3, num_classes=4).eval()
    with torch.no_grad():
        feats = model.forward_features(torch.randn(2, 3, 96, 96))
    assert feats.tokens.shape[1] == 9
    torch.testing.assert_close(feats.embedding, feats.tokens.mean(dim=1))


def test_shufflenet_embedding_is_the_projection_of_pooled_conv5_tokens() -> None:
    model = create_model("shufflenetv2", in_chans=3, num_classes=4).eval()
    with torch.no_grad():
        feats = model.forward_features(torch.randn(2, 3, 64, 64))
        expected = model.projection(feats.tokens.mean(dim=1))
    torch.testing.assert_close(feats.embedding, expected)


@pytest.mark.parametrize("arch", ARCHS)
def test_parameter_counts_match_the_reference(arch: str) -> None:
    rgb = n_params(create_model(arch, in_chans=3, num_classes=10))
    ms = n_params(create_model(arch, in_chans=13, num_classes=10))
    assert round(rgb / 1e6, 2) == REFERENCE_MPARAMS[arch]
    assert ms - rgb == 10 * STEM_PER_CHANNEL[arch]


def test_mobilenet_initialisation_follows_the_paper_code() -> None:
    model = create_model("mobilenetv2", in_chans=3, num_classes=10)
    linear = model.classifier[1]
    assert linear.in_features == 512
    assert torch.count_nonzero(linear.bias) == 0
    assert 0.005 < float(linear.weight.detach().std()) < 0.015
    assert model.features[-1][0].out_channels == 512


@pytest.mark.parametrize("bad", [{"in_chans": 0}, {"num_classes": 0}])
def test_bad_sizes_are_refused(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        create_model("shufflenetv2", **bad)
