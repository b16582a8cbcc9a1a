"""Backbone networks at random initialisation: layer shapes (seed 003 Table 1) and layer names."""

import torch

from pipeline.features.seed003 import AudioNet, VideoNet
from pipeline.features.vgg import VGG19Trunk
from pipeline.features.vggish import VGGish

# Parameter counts of torchvision's and torchvggish's published models without their heads:
# mc3_18 11,695,440 minus fc 512 x 400 + 400; vgg19 143,667,240 minus its 3-layer
# classifier (123,642,856); VGGish 72,141,184 (all of it: its head is the embedding).
TORCHVISION_MC3_18_TRUNK = 11_695_440 - (512 * 400 + 400)
TORCHVISION_VGG19_TRUNK = 143_667_240 - 123_642_856
VGGISH = 72_141_184

# Seed 003 Table 1a: layer -> (filters, kernel, stride, padding, output D x H x W).
TABLE_1A = {
    "conv1": (64, (1, 3, 3), (1, 2, 1), (0, 1, 1), (10, 50, 80)),
    "conv2": (64, (1, 3, 3), (1, 1, 2), (0, 1, 1), (10, 50, 40)),
    "maxpool2": (None, (1, 1, 3), (1, 1, 2), (0, 0, 0), (10, 50, 19)),
    "conv3": (192, (1, 3, 3), (1, 1, 1), (0, 1, 1), (10, 50, 19)),
    "maxpool3": (None, (1, 3, 3), (1, 2, 2), (0, 0, 0), (10, 24, 9)),
    "conv4": (256, (1, 3, 3), (1, 1, 1), (0, 1, 1), (10, 24, 9)),
    "conv5": (256, (1, 3, 3), (1, 1, 1), (0, 1, 1), (10, 24, 9)),
    "conv6": (256, (1, 3, 3), (1, 1, 1), (0, 1, 1), (10, 24, 9)),
    "maxpool6": (None, (1, 3, 2), (1, 2, 2), (0, 0, 0), (10, 11, 4)),
    "conv7": (512, (1, 4, 4), (1, 1, 1), (0, 1, 0), (10, 10, 1)),
    "fc8": (512, (1, 1, 1), (1, 1, 1), (0, 0, 0), (10, 10, 1)),  # "100 x 1"
    "fc9": (512, (1, 1, 1), (1, 1, 1), (0, 0, 0), (10, 10, 1)),
}

# Seed 003 Table 1b: layer -> (mc3_18 module, filters, kernel, stride, padding, H x W).
# The time axis keeps the input's length (the table's 100 for 100 input frames).
TABLE_1B = {
    "conv1": ("stem", 64, (3, 7, 7), (1, 2, 2), (1, 3, 3), 56),
    "conv2": ("layer1.0.conv1", 64, (3, 3, 3), (1, 1, 1), (1, 1, 1), 56),
    "conv3": ("layer1.0.conv2", 64, (3, 3, 3), (1, 1, 1), (1, 1, 1), 56),
    "conv4": ("layer1.1.conv1", 64, (3, 3, 3), (1, 1, 1), (1, 1, 1), 56),
    "conv5": ("layer1.1.conv2", 64, (3, 3, 3), (1, 1, 1), (1, 1, 1), 56),
    "conv6": ("layer2.0.conv1", 128, (1, 3, 3), (1, 2, 2), (0, 1, 1), 28),
    "conv7": ("layer2.0.conv2", 128, (1, 3, 3), (1, 1, 1), (0, 1, 1), 28),
    "res-conv8": ("layer2.0.downsample", 128, (1, 1, 1), (1, 2, 2), (0, 0, 0), 28),
    "conv9": ("layer2.1.conv1", 128, (1, 3, 3), (1, 1, 1), (0, 1, 1), 28),
    "conv10": ("layer2.1.conv2", 128, (1, 3, 3), (1, 1, 1), (0, 1, 1), 28),
    "conv11": ("layer3.0.conv1", 256, (1, 3, 3), (1, 2, 2), (0, 1, 1), 14),
    "conv12": ("layer3.0.conv2", 256, (1, 3, 3), (1, 1, 1), (0, 1, 1), 14),
    "res-conv13": ("layer3.0.downsample", 256, (1, 1, 1), (1, 2, 2), (0, 0, 0), 14),
    "conv14": ("layer3.1.conv1", 256, (1, 3, 3), (1, 1, 1), (0, 1, 1), 14),
    "conv15": ("layer3.1.conv2", 256, (1, 3, 3), (1, 1, 1), (0, 1, 1), 14),
    "conv16": ("layer4.0.conv1", 512, (1, 3, 3), (1, 2, 2), (0, 1, 1), 7),
    "conv17": ("layer4.0.conv2", 512, (1, 3, 3), (1, 1, 1), (0, 1, 1), 7),
    "res-conv18": ("layer4.0.downsample", 512, (1, 1, 1), (1, 2, 2), (0, 0, 0), 7),
    "conv19": ("layer4.1.conv1", 512, (1, 3, 3), (1, 1, 1), (0, 1, 1), 7),
    "conv20": ("layer4.1.conv2", 512, (1, 3, 3), (1, 1, 1), (0, 1, 1), 7),
}


def _outputs(model: torch.nn.Module, names, *inputs) -> dict[str, tuple]:
    """Output shapes of the named submodules in one forward pass."""
    shapes, modules = {}, dict(model.named_modules())
    hooks = [
        modules[name].register_forward_hook(
            lambda _m, _i, out, name=name: shapes.__setitem__(name, tuple(out.shape))
        )
        for name in names
    ]
    with torch.no_grad():
        result = model(*inputs)
    for hook in hooks:
        hook.remove()
    return shapes, result


def _first_conv(module: torch.nn.Module) -> torch.nn.Module:
    return module if isinstance(module, torch.nn.Conv3d) else module[0]


def _geometry(layer: torch.nn.Module) -> tuple:
    return tuple(layer.kernel_size), tuple(layer.stride), tuple(layer.padding)


def test_audio_network_layers_match_table_1a():
    model = AudioNet().eval()
    shapes, out = _outputs(model, TABLE_1A, torch.randn(1, 10, 100, 80))
    modules = dict(model.named_children())
    for name, (filters, kernel, stride, padding, size) in TABLE_1A.items():
        layer = modules[name] if filters is None else modules[name][0]
        assert _geometry(layer) == (kernel, stride, padding), name
        channels = shapes[name][1]
        assert shapes[name][2:] == size, name
        if filters is not None:
            assert channels == filters, name
            assert isinstance(modules[name][1], torch.nn.BatchNorm3d)  # BN + ReLU after every conv
            assert isinstance(modules[name][2], torch.nn.ReLU)
    assert out.shape == (1, 512, 10, 10, 1)


def test_video_network_layers_match_table_1b():
    model = VideoNet().eval()
    frames = 4  # the table's 100 frames would cost 25x more; the time axis is kept as is
    names = [module for module, *_ in TABLE_1B.values()]
    shapes, maps = _outputs(model, names, torch.randn(1, 3, frames, 112, 112))
    modules = dict(model.named_modules())
    for row, (name, filters, kernel, stride, padding, size) in TABLE_1B.items():
        assert shapes[name] == (1, filters, frames, size, size), row
        assert _geometry(_first_conv(modules[name])) == (kernel, stride, padding), row
    assert maps.shape == (1, 512, frames, 7, 7)
    assert maps.mean(dim=(3, 4), keepdim=True).shape == (1, 512, frames, 1, 1)  # the avgpool row


def test_video_network_has_torchvision_mc3_18_names_and_size():
    state = VideoNet().state_dict()
    assert {key.split(".")[0] for key in state} == {"stem", "layer1", "layer2", "layer3", "layer4"}
    for key in (
        "stem.0.weight",
        "stem.1.running_var",
        "layer1.0.conv1.0.weight",
        "layer1.1.conv2.1.num_batches_tracked",
        "layer2.0.downsample.0.weight",
        "layer4.1.conv2.1.bias",
    ):
        assert key in state
    assert not any(key.startswith("layer1.0.downsample") for key in state)  # stride 1, 64 -> 64
    assert sum(p.numel() for p in VideoNet().parameters()) == TORCHVISION_MC3_18_TRUNK


def test_vgg19_trunk_gives_pool5_maps_with_torchvision_names():
    model = VGG19Trunk().eval()
    with torch.no_grad():
        maps = model(torch.randn(1, 3, 224, 224))
    assert maps.shape == (1, 512, 7, 7)
    assert (maps >= 0).all()  # pool5 follows a ReLU
    convs = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
    expected = {f"features.{i}.{p}" for i in convs for p in ("weight", "bias")}
    assert set(model.state_dict()) == expected
    assert len(model.features) == 37  # torchvision's features[36] is pool5
    assert sum(p.numel() for p in model.parameters()) == TORCHVISION_VGG19_TRUNK


def test_vggish_embeddings_are_128_non_negative_with_torchvggish_names():
    model = VGGish().eval()
    with torch.no_grad():
        out = model(torch.randn(3, 96, 64))
    assert out.shape == (3, 128)
    assert (out >= 0).all()  # post-ReLU, no PCA
    expected = {
        f"{part}.{i}.{p}"
        for part, indices in (("features", (0, 3, 6, 8, 11, 13)), ("embeddings", (0, 2, 4)))
        for i in indices
        for p in ("weight", "bias")
    }
    assert set(model.state_dict()) == expected
    assert sum(p.numel() for p in model.parameters()) == VGGISH


def test_vggish_flattens_height_width_channel_like_the_tensorflow_release():
    model = VGGish().eval()
    captured = {}
    model.embeddings[0].register_forward_hook(
        lambda _m, inputs, _o: captured.__setitem__("flat", inputs[0])
    )
    maps = {}
    model.features.register_forward_hook(lambda _m, _i, out: maps.__setitem__("maps", out))
    with torch.no_grad():
        model(torch.randn(1, 96, 64))
    features = maps["maps"][0]  # (512, 6, 4)
    flat = captured["flat"][0]
    for c, h, w in ((0, 0, 1), (5, 2, 3), (511, 5, 0)):
        assert flat[(h * 4 + w) * 512 + c] == features[c, h, w]


def test_audio_network_keeps_segments_apart():
    model = AudioNet().eval()
    segments = 3
    volume = torch.randn(1, segments, 100, 80)
    with torch.no_grad():
        whole = model(volume)
        first = model(volume[:, :1])
    assert whole.shape == (1, 512, segments, 10, 1)
    torch.testing.assert_close(whole[:, :, :1], first)  # kernels are 1 along the segment axis
