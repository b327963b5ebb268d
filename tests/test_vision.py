"""attnbook.vision: patchify and the ViT (chapter 10)."""

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from attnbook.vision import ViT, ViTConfig, patchify


def test_patchify_cuts_square_blocks_in_reading_order():
    images = torch.arange(2 * 4 * 6.0).reshape(2, 4, 6)
    patches = patchify(images, 2)  # (B, N, p^2) = (2, 6, 4)
    assert patches.shape == (2, 6, 4)
    for k in range(6):
        r, c = divmod(k, 3)
        assert torch.equal(patches[:, k], images[:, 2 * r:2 * r + 2, 2 * c:2 * c + 2]
                           .reshape(2, 4))


def test_linear_patch_embedding_equals_a_strided_convolution():
    embed, conv = nn.Linear(9, 5), nn.Conv2d(1, 5, kernel_size=3, stride=3)
    with torch.no_grad():
        conv.weight.copy_(embed.weight.reshape(5, 1, 3, 3))
        conv.bias.copy_(embed.bias)
    x = torch.randn(2, 6, 9)
    assert_close(embed(patchify(x, 3)), conv(x[:, None]).flatten(2).transpose(1, 2))


def test_bad_sizes_are_refused_clearly():
    with pytest.raises(ValueError, match="patch_size = 3"):
        patchify(torch.rand(1, 8, 8), 3)
    with pytest.raises(ValueError, match="images should have 3 dimensions"):
        patchify(torch.rand(8, 8), 2)
    with pytest.raises(TypeError, match="images"):
        patchify(torch.zeros(1, 8, 8).numpy(), 2)
    with pytest.raises(ValueError, match="not divisible by patch_size"):
        ViTConfig(image_size=8, patch_size=3)
    with pytest.raises(ValueError, match=r"shape \(B, 8, 8\)"):
        ViT(ViTConfig())(torch.rand(2, 6, 6))


def test_vit_shapes_weights_and_class_token():
    torch.manual_seed(0)
    vit = ViT(ViTConfig(d_model=16, num_heads=2, d_ff=32))
    logits, weights = vit(torch.rand(3, 8, 8), need_weights=True)
    assert logits.shape == (3, 10)
    assert len(weights) == 2 and weights[0].shape == (3, 2, 17, 17)
    assert_close(weights[-1].sum(-1), torch.ones(3, 2, 17))
    # the prediction is read from the class token alone: change only its embedding
    before = vit(torch.rand(1, 8, 8))[0]
    with torch.no_grad():
        vit.cls_token.add_(1.0)
    assert not torch.allclose(before, vit(torch.rand(1, 8, 8))[0])


def test_vit_is_trainable_end_to_end():
    torch.manual_seed(0)
    vit = ViT(ViTConfig(d_model=16, num_heads=2, d_ff=32, num_layers=1))
    x, y = torch.rand(8, 8, 8), torch.arange(8) % 10
    loss = nn.functional.cross_entropy(vit(x)[0], y)
    loss.backward()
    assert vit.pos_embed.grad.abs().sum() > 0 and vit.patch_embed.weight.grad.abs().sum() > 0
