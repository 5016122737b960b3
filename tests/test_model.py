"""The model is the lecture's: layer table, parameter counts, shapes, activations, weight copies."""

import pytest
import torch

from cae.config import Config
from cae.model import Classifier, ConvAutoencoder, count_parameters, first_layer_kernels, layer_table, seeded

# (layer name, output shape, parameters) from ../shared/lecture/SPEC.md, latent 1024
SPEC_AUTOENCODER = [
    ("conv_encoder.0", (64, 16, 16), 1792),
    ("conv_encoder.2", (128, 8, 8), 73856),
    ("conv_encoder.4", (128, 4, 4), 147584),
    ("conv_encoder.6", (128, 4, 4), 147584),
    ("flatten", (2048,), 0),
    ("fc_encoder.0", (1024,), 2098176),
    ("fc_decoder.0", (2048,), 2099200),
    ("unflatten", (128, 4, 4), 0),
    ("conv_decoder.0", (128, 4, 4), 147584),
    ("conv_decoder.2", (128, 8, 8), 0),
    ("conv_decoder.3", (64, 8, 8), 73792),
    ("conv_decoder.5", (64, 16, 16), 0),
    ("conv_decoder.6", (64, 16, 16), 36928),
    ("conv_decoder.8", (64, 32, 32), 0),
    ("conv_decoder.9", (3, 32, 32), 1731),
]


def test_layer_table_matches_the_lecture():
    rows = {r["name"]: r for r in layer_table(ConvAutoencoder())}
    for name, shape, params in SPEC_AUTOENCODER:
        assert rows[name]["output"] == shape, name
        assert rows[name]["params"] == params, name
    assert sum(r["params"] for r in rows.values()) == 4_828_227


def test_parameter_counts_match_the_lecture():
    assert count_parameters(ConvAutoencoder()) == 4_828_227
    assert count_parameters(Classifier()) == 2_479_242
    assert sum(r["params"] for r in layer_table(Classifier())) == 2_479_242


def test_blocks_are_named_as_in_the_lecture():
    names = [n for n, _ in ConvAutoencoder().named_children()]
    assert names == ["conv_encoder", "fc_encoder", "fc_decoder", "conv_decoder"]


@pytest.mark.parametrize("latent", [2, 64, 1024])
@pytest.mark.parametrize("upsample", ["bilinear", "nearest", "transpose"])
def test_shapes_for_every_latent_size_and_upsampling(latent, upsample):
    model = ConvAutoencoder(latent, 0.1, upsample)
    x = torch.rand(4, 3, 32, 32)
    assert model.encode(x).shape == (4, latent)
    out = model(x)
    assert out.shape == (4, 3, 32, 32)
    assert out.min() >= 0  # the final ReLU
    assert Classifier(latent, 0.1)(x).shape == (4, 10)


def test_transpose_decoder_is_the_lecture_deconvolution():
    decoder = ConvAutoencoder(upsample="transpose").conv_decoder
    kinds = [type(m).__name__ for m in decoder]
    assert kinds == [
        "Conv2d",
        "LeakyReLU",
        "ConvTranspose2d",
        "LeakyReLU",
        "ConvTranspose2d",
        "LeakyReLU",
        "ConvTranspose2d",
        "ReLU",
    ]
    convt = [m for m in decoder if type(m).__name__ == "ConvTranspose2d"]
    assert [(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding) for m in convt] == [
        (128, 64, (4, 4), (2, 2), (1, 1)),
        (64, 64, (4, 4), (2, 2), (1, 1)),
        (64, 3, (4, 4), (2, 2), (1, 1)),
    ]


def test_bilinear_upsampling_uses_todays_align_corners_false():
    ups = [m for m in ConvAutoencoder().conv_decoder if type(m).__name__ == "Upsample"]
    assert len(ups) == 3 and all(u.mode == "bilinear" and u.align_corners is False for u in ups)


def test_leak_zero_is_plain_relu():
    torch.manual_seed(0)
    leaky = ConvAutoencoder(leak=0.0)
    x = torch.randn(2, 3, 32, 32)
    h = x
    for layer in leaky.conv_encoder:
        h = torch.relu(h) if not isinstance(layer, torch.nn.Conv2d) else layer(h)
    assert torch.equal(leaky.conv_encoder(x), h)
    assert all(type(m).__name__ != "LeakyReLU" for m in leaky.modules())


def test_leak_sets_the_negative_slope():
    act = ConvAutoencoder(leak=0.3).conv_encoder[1]
    assert torch.allclose(act(torch.tensor([-1.0, 2.0])), torch.tensor([-0.3, 2.0]))


def test_classifier_copies_the_encoder_without_sharing_it():
    ae = ConvAutoencoder(latent_dim=64)
    clf = Classifier.from_autoencoder(ae)
    for name, tensor in ae.state_dict().items():
        if name.startswith(("conv_encoder", "fc_encoder")):
            assert torch.equal(tensor, clf.state_dict()[name])
            assert tensor.data_ptr() != clf.state_dict()[name].data_ptr()
    with torch.no_grad():
        clf.conv_encoder[0].weight.add_(1.0)
    assert not torch.equal(first_layer_kernels(ae), first_layer_kernels(clf))
    assert first_layer_kernels(ae).shape == (64, 3, 3, 3)


def test_models_take_images_in_unit_range_without_extra_normalisation():
    ae = ConvAutoencoder.from_config(Config(latent_dim=16))
    ae.eval()
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(ae(x), ae.decode(ae.encode(x)))


def test_bilinear_upsampling_is_about_one_percent_of_the_forward_pass_by_arithmetic():
    """The decoder interpolates 128 maps of 8×8, 64 of 16×16 and 64 of 32×32 (the lecture's
    'costly' upsampling); the counted forward pass is the figure the time estimates use."""
    from cae.plan import MFLOP
    from cae.timing import upsampling_arithmetic

    cost = upsampling_arithmetic(ConvAutoencoder.from_config(Config(), seeded(0)))
    assert cost["values"] == 128 * 8 * 8 + 64 * 16 * 16 + 64 * 32 * 32
    assert cost["forward_mflop"] == pytest.approx(MFLOP["eval_autoencoder"], abs=0.05)
    assert 0.005 < cost["upsampling_mflop"] / cost["forward_mflop"] < 0.02
