"""Image transforms with torchvision's names: ``ToTensor``, ``Normalize``, ``Compose``, ``Lambda``.

A transform is a callable applied to one sample.  The array-backed datasets
(``FashionMNIST``, ``MNIST``, ``Digits``) can also apply a transform to a whole
batch of images at once, which is how ``DataLoader`` gathers a batch with one
fancy index instead of one Python call per image.  A transform takes part in
that fast path when ``transform.batchable`` is true; its ``batch(array)`` method
then maps an ``(N, ...)`` NumPy array to an ``(N, ...)`` array and gives exactly
the numbers that calling the transform on each image and stacking would give.

    >>> from nn.transforms import Compose, Normalize, ToTensor
    >>> t = Compose([ToTensor(), Normalize((0.5,), (0.5,))])
    >>> t(np.zeros((28, 28), np.uint8)).shape        # uint8 H x W -> float32 1 x H x W
    (1, 28, 28)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

import autodiff
from autodiff import Tensor, constant

__all__ = ["Compose", "Lambda", "Normalize", "ToTensor", "is_batchable"]


def is_batchable(transform) -> bool:
    """True when ``transform`` can be applied to a whole batch (``transform.batch``)."""
    return transform is None or bool(getattr(transform, "batchable", False))


def _as_image_array(pic, op: str) -> np.ndarray:
    """An image as a NumPy array: ndarrays, tensors and PIL-like objects (``__array__``)."""
    if isinstance(pic, Tensor):
        return pic.data
    if isinstance(pic, np.ndarray):
        return pic
    if hasattr(pic, "__array_interface__") or hasattr(pic, "__array__"):
        return np.asarray(pic)
    raise TypeError(
        f"{op}: expected an image as a NumPy array (H x W or H x W x C), a PIL image or a "
        f"tensor, got {type(pic).__name__}"
    )


class ToTensor:
    """Convert an image to a float tensor: ``uint8 (H, W[, C]) in 0..255 -> float32 (C, H, W)``.

    ``out[c, i, j] = pic[i, j, c] / 255`` for ``uint8`` images (torchvision's rule); images
    of any other dtype keep their values and dtype and are only moved to channel-first.
    An ``H x W`` image gets one channel.

        >>> ToTensor()(np.full((2, 2), 255, np.uint8))
        tensor([[[1., 1.],
                 [1., 1.]]])
    """

    batchable = True

    def __call__(self, pic) -> Tensor:
        array = _as_image_array(pic, "ToTensor")
        if array.ndim not in (2, 3):
            raise ValueError(
                f"ToTensor: expected an image of shape (H, W) or (H, W, C), got shape "
                f"{tuple(array.shape)}"
            )
        return constant(self._convert(array[None], "ToTensor")[0])

    def batch(self, images: np.ndarray) -> np.ndarray:
        """``(N, H, W[, C])`` images -> ``(N, C, H, W)`` array, the same numbers as one by one."""
        images = np.asarray(images)
        if images.ndim not in (3, 4):
            raise ValueError(
                f"ToTensor.batch: expected images of shape (N, H, W) or (N, H, W, C), got shape "
                f"{tuple(images.shape)}"
            )
        return self._convert(images, "ToTensor.batch")

    @staticmethod
    def _convert(images: np.ndarray, op: str) -> np.ndarray:
        if images.ndim == 3:  # (N, H, W): one channel
            images = images[:, None, :, :]
        else:  # (N, H, W, C) -> (N, C, H, W)
            images = images.transpose(0, 3, 1, 2)
        if images.dtype == np.uint8:
            return np.ascontiguousarray(images, dtype=np.float32) / np.float32(255)
        if images.dtype.kind not in "biuf":
            raise TypeError(f"{op}: images of dtype {images.dtype} cannot become a tensor")
        return np.ascontiguousarray(images)

    def __repr__(self) -> str:
        return "ToTensor()"


class Normalize:
    """Normalise each channel: ``out[c] = (x[c] - mean[c]) / std[c]``.

    ``x`` is a float tensor of shape ``(..., C, H, W)``; ``mean`` and ``std`` have one
    value per channel (or one value for all).  Computed in the tensor's dtype, as
    torchvision does.  With ``requires_grad`` inputs the result is differentiable.

        >>> Normalize((0.5,), (0.5,))(autodiff.ones(1, 2, 2))
        tensor([[[1., 1.],
                 [1., 1.]]])
    """

    batchable = True

    def __init__(self, mean, std, inplace: bool = False):
        self.mean = tuple(float(m) for m in np.atleast_1d(np.asarray(mean, dtype=np.float64)))
        self.std = tuple(float(s) for s in np.atleast_1d(np.asarray(std, dtype=np.float64)))
        self.inplace = inplace
        if any(s == 0 for s in self.std):
            raise ValueError(
                f"Normalize: std evaluated to zero after conversion to float, leading to "
                f"division by zero (std={self.std})"
            )

    def _params(self, array: np.ndarray, channel_axis: int, op: str):
        if array.dtype.kind != "f":
            raise TypeError(
                f"{op}: expected a float tensor, got dtype {array.dtype} (apply ToTensor first)"
            )
        if array.ndim < 3:
            raise ValueError(
                f"{op}: expected a tensor image of shape (..., C, H, W), got shape "
                f"{tuple(array.shape)}"
            )
        channels = array.shape[channel_axis]
        for name, values in (("mean", self.mean), ("std", self.std)):
            if len(values) not in (1, channels):
                raise ValueError(
                    f"{op}: {name} has {len(values)} values but the image of shape "
                    f"{tuple(array.shape)} has {channels} channels"
                )
        mean = np.asarray(self.mean, dtype=array.dtype).reshape(-1, 1, 1)
        std = np.asarray(self.std, dtype=array.dtype).reshape(-1, 1, 1)
        return mean, std

    def __call__(self, tensor) -> Tensor:
        if not isinstance(tensor, Tensor):
            tensor = autodiff.as_tensor(tensor)
        mean, std = self._params(tensor.data, -3, "Normalize")
        if tensor.requires_grad and autodiff.is_grad_enabled():
            return (tensor - constant(mean)) / constant(std)
        if self.inplace:
            np.subtract(tensor.data, mean, out=tensor.data)
            np.divide(tensor.data, std, out=tensor.data)
            return tensor
        return constant((tensor.data - mean) / std)

    def batch(self, images: np.ndarray) -> np.ndarray:
        """``(N, C, H, W)`` -> ``(N, C, H, W)``, the same numbers as one image at a time."""
        mean, std = self._params(images, -3, "Normalize.batch")
        return (images - mean) / std

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


class Compose:
    """Apply transforms one after another: ``Compose([f, g])(x) == g(f(x))``.

    Batchable when every transform in it is.
    """

    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = list(transforms)

    @property
    def batchable(self) -> bool:
        return all(is_batchable(t) for t in self.transforms)

    def __call__(self, x):
        for transform in self.transforms:
            x = transform(x)
        return x

    def batch(self, images: np.ndarray) -> np.ndarray:
        for transform in self.transforms:
            if not is_batchable(transform):
                raise TypeError(f"Compose.batch: {transform!r} cannot be applied to a batch")
            images = transform.batch(images)
        return images

    def __repr__(self) -> str:
        lines = "".join(f"\n    {t!r}" for t in self.transforms)
        return f"Compose({lines}\n)"


class Lambda:
    """Use a function as a transform: ``Lambda(lambda x: x * 2)``.

    Applied one sample at a time (a ``DataLoader`` over a dataset with a ``Lambda`` in
    its transform takes the per-sample path).
    """

    batchable = False

    def __init__(self, lambd: Callable):
        if not callable(lambd):
            raise TypeError(f"Lambda: argument should be callable, got {type(lambd).__name__}")
        self.lambd = lambd

    def __call__(self, x):
        return self.lambd(x)

    def __repr__(self) -> str:
        return f"Lambda({getattr(self.lambd, '__name__', self.lambd)!r})"
