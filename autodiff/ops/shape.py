"""Shape operations: reshape, permute, expand, indexing, cat, pad.

Most forwards return NumPy views (no copy); their backwards move the gradient
back into the input's layout.
"""

from __future__ import annotations

import math
import operator

import numpy as np

from ..function import Function, ShapeError, loud_floating_point, quiet_floating_point
from ..function import recorded_backward as _records
from ..function import unrecorded as _unrecorded
from ..tensor import Tensor


def sum_to_shape(grad: Tensor, shape: tuple, op: str = "backward") -> Tensor:
    """Undo broadcasting: sum ``grad`` over the dims that broadcasting added or stretched.

    ``sum_to_shape(g, (3, 1))`` for ``g`` of shape ``(2, 3, 4)`` sums dim 0 and dim 2.
    """
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    stretched = lead >= 0 and all(
        s == 1 or s == g for s, g in zip(shape, grad.shape[lead:], strict=True)
    )
    if not stretched:
        raise RuntimeError(
            f"{op}: got a gradient of shape {grad.shape} for an input of shape {shape}; "
            "the gradient must have the input's shape (or a shape it broadcasts to)"
        )
    axes = tuple(range(lead)) + tuple(
        lead + i for i, s in enumerate(shape) if s == 1 and grad.shape[lead + i] != 1
    )
    from .reduce import Sum, _sum

    if not _records(grad):  # the same sum on the arrays: nothing is recorded
        quiet = quiet_floating_point()  # overflow to inf silently, as Sum.apply (and PyTorch)
        try:
            summed = _sum(grad.data, axes, False) if axes else grad.data
        finally:
            loud_floating_point(quiet)
        return _unrecorded(np.reshape(summed, shape))
    if not axes:
        return grad.reshape(shape)
    if len(axes) == lead:  # only added leading dims (a bias's gradient): no reshape op
        return Sum.apply(grad, axes, False)
    return Sum.apply(grad, axes, True).reshape(shape)


class Reshape(Function):
    """y = x viewed with a new shape        dL/dx = dL/dy reshaped back"""

    returns_view = True

    @staticmethod
    def forward(ctx, x, shape):
        ctx.input_shape = x.shape
        try:
            return np.reshape(x, shape)
        except ValueError:
            raise ShapeError(
                f"reshape: cannot reshape a tensor of shape {x.shape} ({x.size} elements) "
                f"into shape {tuple(shape)}"
            ) from None

    @staticmethod
    def backward(ctx, grad):
        if _records(grad):
            return grad.reshape(ctx.input_shape), None
        return _unrecorded(np.reshape(grad.data, ctx.input_shape)), None


class Permute(Function):
    """y = x with dims reordered        dL/dx = dL/dy with the inverse order"""

    returns_view = True

    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        return np.transpose(x, dims)

    @staticmethod
    def backward(ctx, grad):
        inverse = [0] * len(ctx.dims)
        for position, dim in enumerate(ctx.dims):
            inverse[dim] = position
        if _records(grad):
            return Permute.apply(grad, tuple(inverse)), None
        return _unrecorded(np.transpose(grad.data, inverse)), None


class Expand(Function):
    """y = x broadcast to a shape        dL/dx = dL/dy summed over the broadcast dims"""

    returns_view = True

    @staticmethod
    def forward(ctx, x, shape):
        ctx.input_shape = x.shape
        return np.broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, grad):
        return sum_to_shape(grad, ctx.input_shape, "expand"), None


def _is_basic(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(
        item is None or item is Ellipsis or isinstance(item, (int, np.integer, slice))
        for item in items
    )


# An integer index is checked for repeats only where each of its positions takes at
# least this many elements of g, and g this many in all (see _one_assignment_will_do)
_ELEMENTS_PER_POSITION = 16
_FEWEST_ELEMENTS = 2048


def _one_assignment_will_do(index, shape, elements) -> bool:
    """Whether an advanced index reaches no position twice, where finding out pays.

    A boolean mask never repeats.  Integer arrays alone (one for the first dim, or
    one per leading dim) are checked, their positions, negative ones counted from
    the end, all differing; but the check costs about 12 us plus a pass over the
    positions, more than np.add.at where each position takes one element (the
    lecture's ``logp[arange(N), y]``: 14 against 2 us for 64 positions, 67 against
    50 us for 4,096), so only where each takes ``_ELEMENTS_PER_POSITION`` of the
    ``elements`` of g (whole rows) and g has ``_FEWEST_ELEMENTS``.  Other mixes
    answer False.
    """
    arrays = index if isinstance(index, tuple) else (index,)
    if not arrays or len(arrays) > len(shape):
        return False
    if not all(isinstance(a, np.ndarray) for a in arrays):
        return False
    if len(arrays) == 1 and arrays[0].dtype == np.bool_:
        return True
    if not all(a.dtype.kind in "iu" for a in arrays):
        return False
    try:
        positions = np.broadcast(*arrays).size
    except ValueError:
        return False
    if positions <= 1:
        return True
    if elements < max(_FEWEST_ELEMENTS, _ELEMENTS_PER_POSITION * positions):
        return False
    arrays = np.broadcast_arrays(*arrays)
    sizes = shape[: len(arrays)]
    arrays = [np.where(a < 0, a + size, a) for a, size in zip(arrays, sizes)]
    flat = np.ravel_multi_index(arrays, sizes).reshape(-1)
    if flat.max() < 16 * flat.size + 1024:  # a count per position costs little memory
        return int(np.bincount(flat).max()) <= 1
    ordered = np.sort(flat)
    return not bool((ordered[1:] == ordered[:-1]).any())


class GetItem(Function):
    """y = x[index]        dL/dx = zeros with dL/dy added at index (repeats add up)"""

    op_name = "getitem"
    returns_view = True

    @staticmethod
    def forward(ctx, x, index):
        ctx.input_shape = x.shape
        ctx.index = index
        try:
            return x[index]
        except IndexError as error:
            raise IndexError(f"getitem: {error} (tensor of shape {x.shape})") from None

    @staticmethod
    def backward(ctx, grad):
        return IndexAdd.apply(grad, ctx.index, ctx.input_shape), None


class IndexAdd(Function):
    """y = zeros(shape); y[index] += g        dL/dg = dL/dy[index]"""

    op_name = "index_add"

    @staticmethod
    def forward(ctx, g, index, shape):
        ctx.index = index
        out = np.zeros(shape, dtype=g.dtype)
        if _is_basic(index):
            out[index] = g  # basic indexing never repeats a position
        elif _one_assignment_will_do(index, shape, g.size):
            # what np.add.at gives when nothing repeats, 0 + g (so -0.0 becomes 0.0), by
            # one assignment: 32 rows of a 64x1000 gradient took 10 us against 274 us,
            # 4,096 rows of 50,000x64 0.26 ms against 2.8 ms (np.add.at runs an
            # element at a time)
            out[index] = np.add(np.zeros((), dtype=g.dtype), g)
        else:
            np.add.at(out, index, g)  # integer arrays may repeat: add, don't overwrite
        return out

    @staticmethod
    def backward(ctx, grad):
        # GetItem itself, not grad[index]: the index was checked when the user gave
        # it, and the library's own flips (cumprod's gradient) step backwards
        return GetItem.apply(grad, ctx.index), None, None


class SetItem(Function):
    """y = x with y[index] = v        dL/dx = dL/dy with zeros at index    dL/dv = dL/dy[index]"""

    op_name = "setitem"

    @staticmethod
    def forward(ctx, x, index, value):
        ctx.index = index
        out = np.array(x, copy=True)
        set_items(out, index, value)
        return out

    @staticmethod
    def backward(ctx, grad):
        grad_x = SetItem.apply(grad, ctx.index, 0.0) if ctx.needs_input_grad[0] else None
        grad_value = GetItem.apply(grad, ctx.index) if ctx.needs_input_grad[2] else None
        return grad_x, None, grad_value


class Cat(Function):
    """y = [x1, x2, ...] along dim        dL/dx_k = the k-th slice of dL/dy"""

    @staticmethod
    def forward(ctx, dim, *xs):
        ctx.dim = dim
        ctx.sizes = [x.shape[dim] for x in xs]
        return np.concatenate(xs, axis=dim)

    @staticmethod
    def backward(ctx, grad):
        grads = [None]
        start = 0
        prefix = (slice(None),) * ctx.dim
        for size, needed in zip(ctx.sizes, ctx.needs_input_grad[1:], strict=True):
            grads.append(grad[prefix + (slice(start, start + size),)] if needed else None)
            start += size
        return tuple(grads)


class Pad(Function):
    """y = x with a constant border        dL/dx = the interior of dL/dy"""

    @staticmethod
    def forward(ctx, x, widths, value):
        ctx.interior = tuple(
            slice(before, before + n) for (before, _), n in zip(widths, x.shape, strict=True)
        )
        return np.pad(x, widths, mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx, grad):
        return grad[ctx.interior], None, None


# -- functions composed from the primitives -------------------------------------


def normalize_dim(dim, ndim: int, op: str) -> int:
    """One dim, negative allowed, checked against ``ndim`` dims (a 0-d tensor has dim 0)."""
    rank = max(ndim, 1)
    if type(dim) is not int:  # a Python int, the usual case, skips the reading
        dim = read_dim(dim, op)
    if not -rank <= dim < rank:
        raise IndexError(
            f"{op}: dimension out of range (expected to be in range of [{-rank}, {rank - 1}], "
            f"but got {dim}) for a tensor of {ndim} dims"
        )
    return dim % rank


def read_dim(dim, op: str, listed: bool = False) -> int:
    """A dim given as something other than a Python int, read as PyTorch (2.13) reads it.

    A NumPy integer, or an integer tensor read through its ``__index__``
    (``x.sum(torch.tensor(0))``, a dim computed by tensor code): a 0-d one where
    the op takes one int (cumsum, softmax, argmax, unsqueeze, cat, ...); where it
    takes a list of dims (sum, mean, var, amax, logsumexp, squeeze), any tensor of
    one element, bool included, as PyTorch's int-list parser reads it (``listed``).
    A bool (Python or NumPy) is not a dim, though ``True == 1``: PyTorch refuses
    ``x.sum(True)`` rather than reduce dim 1 by accident.  Floats are refused too.
    """
    if isinstance(dim, np.integer):
        return int(dim)
    if isinstance(dim, Tensor):
        kinds, fits = ("iub", dim.data.size == 1) if listed else ("iu", dim.ndim == 0)
        if fits and dim.data.dtype.kind in kinds:
            return operator.index(dim)
        wanted = "an integer tensor of one element" if listed else "a 0-d integer tensor"
        raise TypeError(
            f"{op}: dim must be an int or {wanted}, got a tensor of shape {dim.shape} "
            f"and dtype {dim.dtype}"
        )
    if isinstance(dim, int) and not isinstance(dim, bool):  # an int subclass
        return operator.index(dim)
    plural = " or a tuple of ints" if listed else ""
    why = " (a bool is not a dim, as in PyTorch)" if isinstance(dim, (bool, np.bool_)) else ""
    raise TypeError(f"{op}: dim must be an int{plural}, got {dim!r}{why}")


def _at_least_1d(x: Tensor, dim, op: str) -> None:
    """cat, split and chunk act along a dim a 0-d tensor lacks: a RuntimeError
    whatever the dim, once the dim's type is checked (PyTorch's order)."""
    if x.ndim == 0:
        if type(dim) is not int:
            read_dim(dim, op)
        raise RuntimeError(f"{op}: expects a tensor of at least 1 dim, got a 0-d tensor")


def set_items(array: np.ndarray, index, value) -> None:
    """``array[index] = value``, with an error that names setitem and the shapes."""
    try:
        array[index] = value
    except (ValueError, IndexError) as error:
        raise type(error)(
            f"setitem: cannot assign a value of shape {np.shape(value)} to index "
            f"{index!r} of a tensor of shape {array.shape}: {error}"
        ) from None


def parse_shape(args, op: str) -> tuple:
    """Accept ``f(2, 3)``, ``f((2, 3))`` and ``f([2, 3])`` as PyTorch does."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    elif len(args) == 1 and isinstance(args[0], Tensor):
        args = tuple(args[0].tolist())
    for size in args:
        if not isinstance(size, (int, np.integer)) or isinstance(size, bool):
            raise TypeError(f"{op}: sizes must be ints, got {args!r}")
    return tuple(int(s) for s in args)


def reshape(x: Tensor, *shape) -> Tensor:
    return Reshape.apply(x, infer_size(parse_shape(shape, "reshape"), x.numel(), "reshape"))


def infer_size(shape: tuple, numel: int, op: str) -> tuple:
    """Replace one -1 in ``shape`` by the size that makes ``numel`` elements.

    NumPy cannot infer it for a tensor with no elements; PyTorch can when the
    other sizes are not 0: (0, 4) reshaped to (3, -1) is (3, 0).
    """
    if -1 not in shape:
        return shape
    if shape.count(-1) > 1:
        raise ShapeError(f"{op}: only one dimension can be inferred (-1), got shape {shape}")
    known = math.prod(s for s in shape if s != -1)
    if known == 0:
        raise ShapeError(
            f"{op}: cannot reshape a tensor of {numel} elements into shape {shape}: the "
            "unspecified dimension (-1) could be any size"
        )
    if numel % known:
        raise ShapeError(f"{op}: cannot reshape a tensor of {numel} elements into shape {shape}")
    return tuple(numel // known if s == -1 else s for s in shape)


def flatten(x: Tensor, start_dim=0, end_dim=-1) -> Tensor:
    """Merge dims ``start_dim..end_dim`` into one (``flatten(x, 1)`` keeps the batch dim)."""
    start = normalize_dim(start_dim, x.ndim, "flatten")
    end = normalize_dim(end_dim, x.ndim, "flatten")
    if x.ndim == 0:
        return Reshape.apply(x, (1,))
    if start > end:
        raise ShapeError(f"flatten: start_dim ({start_dim}) cannot come after end_dim ({end_dim})")
    shape = x.shape[:start] + (math.prod(x.shape[start : end + 1]),) + x.shape[end + 1 :]
    return Reshape.apply(x, shape)


def unflatten(x: Tensor, dim, sizes) -> Tensor:
    """Split dim ``dim`` into ``sizes`` (one of them may be -1)."""
    d = normalize_dim(dim, x.ndim, "unflatten")
    if x.ndim == 0:  # after the dim's range check, as PyTorch
        raise RuntimeError("unflatten: expects a tensor of at least 1 dim, got a 0-d tensor")
    sizes = infer_size(parse_shape((sizes,), "unflatten"), x.shape[d], "unflatten")
    if math.prod(sizes) != x.shape[d]:
        raise ShapeError(
            f"unflatten: sizes {sizes} do not multiply to the size {x.shape[d]} of dim {dim} "
            f"(tensor of shape {x.shape})"
        )
    return Reshape.apply(x, x.shape[:d] + sizes + x.shape[d + 1 :])


def permute(x: Tensor, *dims) -> Tensor:
    dims = parse_shape(dims, "permute")
    if len(dims) != x.ndim or sorted(d % max(x.ndim, 1) for d in dims) != list(range(x.ndim)):
        raise ShapeError(
            f"permute: dims {dims} are not a permutation of the {x.ndim} dims of a tensor "
            f"of shape {x.shape}"
        )
    return Permute.apply(x, tuple(d % max(x.ndim, 1) for d in dims))


def transpose(x: Tensor, dim0, dim1) -> Tensor:
    """Swap two dims."""
    a = normalize_dim(dim0, x.ndim, "transpose")
    b = normalize_dim(dim1, x.ndim, "transpose")
    if x.ndim == 0:
        return x
    dims = list(range(x.ndim))
    dims[a], dims[b] = dims[b], dims[a]
    return Permute.apply(x, tuple(dims))


def unsqueeze(x: Tensor, dim) -> Tensor:
    """Insert a dim of size 1 at ``dim`` (negative counts from the new end)."""
    d = normalize_dim(dim, x.ndim + 1, "unsqueeze")
    return Reshape.apply(x, x.shape[:d] + (1,) + x.shape[d:])


def squeeze(x: Tensor, dim=None) -> Tensor:
    """Remove dims of size 1 (only the given ones, when ``dim`` is set)."""
    if dim is None:
        return Reshape.apply(x, tuple(s for s in x.shape if s != 1))
    listed = dim if isinstance(dim, (tuple, list)) else (dim,)
    # squeeze takes a list of dims in PyTorch: each may be a one-element tensor
    dims = {normalize_dim(read_dim(d, "squeeze", listed=True), x.ndim, "squeeze") for d in listed}
    if len(dims) != len(listed):
        raise ShapeError(f"squeeze: dim {dim} names a dimension more than once")
    return Reshape.apply(x, tuple(s for i, s in enumerate(x.shape) if not (i in dims and s == 1)))


def expand(x: Tensor, *sizes) -> Tensor:
    """Broadcast to ``sizes`` without copying (-1 keeps a dim's size)."""
    sizes = parse_shape(sizes, "expand")
    if len(sizes) < x.ndim:
        raise RuntimeError(
            f"expand: the number of sizes provided ({len(sizes)}) must be greater or equal "
            f"to the number of dims of the tensor ({x.ndim}); tensor shape {x.shape}"
        )
    lead = len(sizes) - x.ndim
    target = []
    for i, size in enumerate(sizes):
        existing = x.shape[i - lead] if i >= lead else None
        if size == -1:
            if existing is None:
                raise RuntimeError(f"expand: -1 is not allowed in a new leading dim ({sizes})")
            size = existing
        elif existing is not None and existing != 1 and existing != size:
            raise RuntimeError(
                f"expand: the expanded size ({size}) must match the existing size ({existing}) "
                f"at non-singleton dimension {i}; target sizes {tuple(sizes)}, tensor shape {x.shape}"
            )
        target.append(size)
    return Expand.apply(x, tuple(target))


def broadcast_to(x: Tensor, shape) -> Tensor:
    return expand(x, tuple(shape))


def cat(tensors, dim=0) -> Tensor:
    """Join tensors along an existing dim."""
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    if not tensors:
        raise ShapeError("cat: expected a non-empty list of tensors")
    # PyTorch skips 1-D empty tensors (its "legacy" empty shape) whatever the dim
    joined = [t for t in tensors if t.shape != (0,)]
    if not joined:
        return Cat.apply(0, *tensors)
    tensors = joined
    ndim = tensors[0].ndim
    _at_least_1d(tensors[0], dim, "cat")
    d = normalize_dim(dim, ndim, "cat")
    for t in tensors:
        if (
            t.ndim != ndim
            or t.shape[:d] + t.shape[d + 1 :] != tensors[0].shape[:d] + tensors[0].shape[d + 1 :]
        ):
            shapes = ", ".join(str(t.shape) for t in tensors)
            raise ShapeError(
                f"cat: tensors must have the same shape except in dim {dim}; got shapes {shapes}"
            )
    return Cat.apply(d, *tensors)


def stack(tensors, dim=0) -> Tensor:
    """Join tensors along a new dim."""
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    if not tensors:
        raise ShapeError("stack: expected a non-empty list of tensors")
    shapes = {t.shape for t in tensors}
    if len(shapes) != 1:
        raise ShapeError(
            f"stack: expects each tensor to be equal size, got shapes {[t.shape for t in tensors]}"
        )
    d = normalize_dim(dim, tensors[0].ndim + 1, "stack")
    return Cat.apply(d, *[unsqueeze(t, d) for t in tensors])


def pad(x: Tensor, pad, mode="constant", value=None) -> Tensor:
    """Pad with a constant; ``pad`` lists (before, after) pairs from the last dim backwards.

    ``pad(x, (1, 1, 2, 0))`` adds one column left and right and two rows on top,
    as ``torch.nn.functional.pad`` does.
    """
    if mode != "constant":
        raise NotImplementedError(f"pad: only mode='constant' is implemented, got {mode!r}")
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ShapeError(
            f"pad: padding length must be even and at most 2 * ndim ({2 * x.ndim}), got {len(pad)}"
        )
    if any(p < 0 for p in pad):
        raise ShapeError(f"pad: negative padding {pad} is not supported")
    widths = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        widths[x.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return Pad.apply(x, tuple(widths), 0 if value is None else value)


def split(x: Tensor, split_size_or_sections, dim=0):
    """Split into chunks of a size, or into the listed sizes, along ``dim``."""
    _at_least_1d(x, dim, "split")
    d = normalize_dim(dim, x.ndim, "split")
    length = x.shape[d]
    if isinstance(split_size_or_sections, (int, np.integer)):
        step = int(split_size_or_sections)
        if step < 0 or (step == 0 and length != 0):
            raise RuntimeError(
                f"split: split_size must be positive (0 only for a dim of size 0), got "
                f"{step} for dim {dim} of size {length}"
            )
        # an empty dim gives one empty piece, as in PyTorch
        sizes = [min(step, length - s) for s in range(0, length, step)] if length else [0]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != length:
            raise ShapeError(
                f"split: sizes {sizes} do not add up to {length} (dim {dim} of {x.shape})"
            )
    pieces, start = [], 0
    for size in sizes:
        pieces.append(x[(slice(None),) * d + (slice(start, start + size),)])
        start += size
    return tuple(pieces)


def chunk(x: Tensor, chunks: int, dim=0):
    """Split into ``chunks`` pieces of equal size (the last smaller; maybe fewer pieces)."""
    if not isinstance(chunks, (int, np.integer)) or chunks <= 0:
        raise RuntimeError(f"chunk: expects `chunks` to be greater than 0, got: {chunks}")
    _at_least_1d(x, dim, "chunk")
    d = normalize_dim(dim, x.ndim, "chunk")
    if x.shape[d] == 0:  # PyTorch gives `chunks` empty pieces
        return split(x, [0] * int(chunks), d)
    return split(x, math.ceil(x.shape[d] / chunks), d)


class BackwardHookFunction(Function):
    """y = x        dL/dx = dL/dy  (where a module's backward hooks observe gradients, as in PyTorch)"""

    op_name = "backward_hook"
    returns_view = True

    @staticmethod
    def forward(ctx, x):
        return x.view()

    @staticmethod
    def backward(ctx, grad):
        return grad
