"""Per-example gradients of ``Conv2d`` for Opacus' hooks mode, correct in any memory layout.

Opacus' own conv sampler unfolds activations with ``as_strided`` strides that assume NCHW
contiguous memory, so on ``channels_last`` activations it returns wrong per-example gradients
(silently). Keeping DP models in NCHW costs speed on CPU: oneDNN's NCHW max-pooling and
convolutions ran several times slower here than channels_last. This sampler reads the actual
strides instead, and works in NHWC order, where the im2col copy moves contiguous channel runs.

torch is imported lazily by the caller (the trainer); this module imports it at the top
because it is only loaded for DP training.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 - the usual alias

GradSampler = Callable[[torch.nn.Module, list[torch.Tensor], torch.Tensor],
                       dict[torch.nn.Parameter, torch.Tensor]]


def _padding(layer: torch.nn.Conv2d) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) zero padding of the layer's input."""
    if layer.padding == "valid":
        return 0, 0, 0, 0
    if layer.padding == "same":
        pads = []
        for axis in (0, 1):
            total = layer.dilation[axis] * (layer.kernel_size[axis] - 1)
            pads.append((total // 2, total - total // 2))
        return pads[0][0], pads[0][1], pads[1][0], pads[1][1]
    pad_h, pad_w = (int(pad) for pad in layer.padding)
    return pad_h, pad_h, pad_w, pad_w


def patches_nhwc(activations: torch.Tensor, layer: torch.nn.Conv2d, *,
                 ones_column: bool = False) -> torch.Tensor:
    """im2col of (N, C, H, W) activations of any layout, in NHWC order.

    Returns
    -------
    (N, H_out * W_out, kh * kw * C [+ 1]) tensor
        Row (n, position) holds the input window that produced that output position, ordered
        (kernel row, kernel column, channel); with ``ones_column``, then a 1, so that a product
        with the output gradients also gives the bias gradients.
    """
    top, bottom, left, right = _padding(layer)
    if top or bottom or left or right:
        activations = F.pad(activations, (left, right, top, bottom))
    n, channels, height, width = activations.shape
    (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.stride, layer.dilation
    out_h = (height - dh * (kh - 1) - 1) // sh + 1
    out_w = (width - dw * (kw - 1) - 1) // sw + 1
    window_size = kh * kw * channels
    stride_n, stride_c, stride_h, stride_w = activations.stride()
    patches = activations.new_empty((n, out_h, out_w, window_size + int(ones_column)))
    if stride_c == 1 and stride_w == channels and dw == 1:
        # channels_last: the kw pixels x C channels of one kernel row are one contiguous run,
        # so kh copies of runs that long replace one 6-D copy of runs of C (2x faster here
        # for 3-channel 32x32 images).
        run = kw * channels
        for row in range(kh):
            patches[..., row * run:(row + 1) * run] = activations.as_strided(
                (n, out_h, out_w, run), (stride_n, stride_h * sh, stride_w * sw, 1),
                activations.storage_offset() + row * dh * stride_h)
    else:
        windows = activations.as_strided(
            (n, out_h, out_w, kh, kw, channels),
            (stride_n, stride_h * sh, stride_w * sw, stride_h * dh, stride_w * dw, stride_c),
            activations.storage_offset())
        # Straight into the buffer: reshaping the overlapping windows would copy them first.
        patches[..., :window_size].view(n, out_h, out_w, kh, kw, channels).copy_(windows)
    if ones_column:
        patches[..., window_size] = 1
    return patches.view(n, out_h * out_w, -1)


def conv2d_products(layer: torch.nn.Conv2d, inputs: torch.Tensor,
                    backprops: torch.Tensor) -> torch.Tensor:
    """Per-example gradients of an ungrouped ``Conv2d`` as one batched product.

    ``inputs`` is the layer's (N, C, H, W) input and ``backprops`` the gradient of the loss
    with respect to its (N, O, H_out, W_out) output, both in any memory layout.

    Returns
    -------
    (N, kh * kw * C [+ 1], O) tensor
        Weight gradients with rows in (kernel row, kernel column, channel) order (see
        :func:`weight_layout`), then, when the bias is trainable, a row of bias gradients.
    """
    n, out_channels = backprops.shape[:2]
    output_grads = backprops.permute(0, 2, 3, 1).reshape(n, -1, out_channels)  # (N, L, O)
    with_bias = layer.bias is not None and layer.bias.requires_grad
    patches = patches_nhwc(inputs.to(backprops.dtype), layer, ones_column=with_bias)
    # (N, K, L) @ (N, L, O) ran 1.4-4x faster here than (N, O, L) @ (N, L, K).
    return torch.bmm(patches.transpose(1, 2), output_grads)


def weight_layout(layer: torch.nn.Conv2d, rows: torch.Tensor) -> torch.Tensor:
    """(..., kh * kw * C, O) weight rows of :func:`conv2d_products` as a view in the weight's
    own (..., O, C, kh, kw) shape."""
    lead = rows.shape[:-2]
    kh, kw = layer.kernel_size
    grid = rows.reshape(*lead, kh, kw, layer.in_channels, layer.out_channels)
    d = len(lead)
    return grid.permute(*range(d), d + 3, d + 2, d, d + 1)


def conv2d_grad_sample(layer: torch.nn.Conv2d, activations: list[torch.Tensor],
                       backprops: torch.Tensor) -> dict[torch.nn.Parameter, torch.Tensor]:
    """Per-example gradients of a ``Conv2d``'s weight (N, O, C, kh, kw) and bias (N, O).

    ``activations[0]`` is the layer's (N, C, H, W) input and ``backprops`` the gradient of the
    loss with respect to its (N, O, H_out, W_out) output, both in any memory layout. Grouped
    convolutions go to Opacus' own sampler on NCHW-contiguous copies.
    """
    inputs = activations[0].to(backprops.dtype)
    if layer.groups != 1:
        from opacus.grad_sample.conv import compute_conv_grad_sample

        return compute_conv_grad_sample(layer, [inputs.contiguous()], backprops.contiguous())
    result: dict[Any, torch.Tensor] = {}
    trainable_bias = layer.bias is not None and layer.bias.requires_grad
    if layer.weight.requires_grad:
        products = conv2d_products(layer, inputs, backprops)
        window_size = products.shape[1] - int(trainable_bias)
        result[layer.weight] = weight_layout(layer, products[:, :window_size]).contiguous()
        if trainable_bias:
            result[layer.bias] = products[:, window_size]
    elif trainable_bias:
        result[layer.bias] = backprops.sum(dim=(2, 3))
    return result


def use_layout_safe_samplers(module: Any) -> None:
    """Make one Opacus ``GradSampleModule`` (hooks mode) use :func:`conv2d_grad_sample`.

    Opacus looks its samplers up on the instance at backward time, so this changes only
    ``module``, not Opacus' global registry.
    """
    module.GRAD_SAMPLERS = {**type(module).GRAD_SAMPLERS, torch.nn.Conv2d: conv2d_grad_sample}


@contextlib.contextmanager
def conv_weights_detached(model: torch.nn.Module) -> Iterator[None]:
    """Within the block, ``Conv2d`` layers of ``model`` (with a trainable bias) compute their
    forward pass against a detached weight, so autograd skips their batch weight gradient.

    Under DP that gradient is thrown away (the optimizer sums clipped per-example gradients
    instead), and it cost about a third of the per-example gradients' time here. The bias
    keeps the output on the graph, so Opacus' backward hooks still fire; layers without one
    are left alone. Leaving the block restores the layers, so the model trains normally
    outside it; graphs built inside keep the detached weights.
    """
    patched = []
    for layer in model.modules():
        if (type(layer) is torch.nn.Conv2d and layer.bias is not None
                and layer.bias.requires_grad and "forward" not in vars(layer)):
            layer.forward = functools.partial(  # type: ignore[method-assign]
                _forward_with_detached_weight, layer)
            patched.append(layer)
    try:
        yield
    finally:
        for layer in patched:
            del layer.forward


def _forward_with_detached_weight(layer: torch.nn.Conv2d, inputs: torch.Tensor) -> torch.Tensor:
    # The bias is added outside the convolution: oneDNN computes a convolution's bias
    # gradient in the same primitive as its weight gradient, which would cost it all again.
    assert layer.bias is not None
    return (layer._conv_forward(inputs, layer.weight.detach(), None)
            + layer.bias.view(1, -1, 1, 1))
