"""``Module`` and ``Parameter``: the building blocks of every network.

A ``Module`` owns parameters, buffers and sub-modules, registered by plain
attribute assignment (``self.fc = nn.Linear(2, 3)``), as in PyTorch::

    class NeuralNetwork(nn.Module):
        def __init__(self):
            super().__init__()
            self.flatten = nn.Flatten()
            self.linear = nn.Linear(784, 10)

        def forward(self, x):
            return self.linear(self.flatten(x))

``state_dict()`` keys and array layouts are PyTorch's, so weights move between
PyTorch and this engine through NumPy arrays.
"""

from __future__ import annotations

import collections
from collections import OrderedDict

import numpy as np

import autodiff
from autodiff import RemovableHandle, Tensor, constant
from autodiff.conversion import as_dtype
from autodiff.grad_mode import modes
from autodiff.ops import BackwardHookFunction
from autodiff.region import ModuleCall

__all__ = ["Module", "Parameter"]


class Parameter(Tensor):
    """A tensor that is a module's learnable weight: ``requires_grad=True`` by default.

    Assigning a ``Parameter`` to a module attribute registers it, so it shows up
    in ``parameters()`` and ``state_dict()``.

    Example::

        >>> w = nn.Parameter(autodiff.zeros(2))
        >>> w
        Parameter containing:
        tensor([0., 0.], requires_grad=True)
    """

    __slots__ = ()

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            data = np.empty((0,), dtype=np.float32)
        if isinstance(data, Tensor):
            data = data.data  # shares memory, as torch.nn.Parameter(t) does
            Tensor.__init__(self, data, requires_grad=False)
            self.data = data
        else:
            Tensor.__init__(self, data, requires_grad=False)
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, protocol):  # copy.deepcopy(module) keeps Parameters
        return (_rebuild_parameter, (self.data.copy(), self._requires_grad))


def _rebuild_parameter(data, requires_grad):
    return Parameter(data, requires_grad)


class _IncompatibleKeys(
    collections.namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])
):
    """What ``load_state_dict(strict=False)`` did not match."""

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


def _addindent(text: str, spaces: int) -> str:
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    first = lines.pop(0)
    return first + "\n" + "\n".join((" " * spaces + line) if line.strip() else "" for line in lines)


def _as_array(value, key: str) -> np.ndarray:
    """A state-dict value as a NumPy array: Tensors, arrays, numbers, and torch tensors."""
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch.Tensor
        return np.asarray(value.detach().cpu().numpy())
    try:
        array = np.asarray(value)
    except Exception:
        array = None
    if array is None or array.dtype.kind not in "biufc":
        raise TypeError(
            f"load_state_dict: the value for {key!r} is a {type(value).__name__}; "
            "expected a Tensor, a NumPy array or a number"
        )
    return array


def _castable(source: np.dtype, target: np.dtype) -> bool:
    """Numbers into numbers, as ``Tensor.copy_`` does; text, objects, dates never;
    complex only into complex (a real tensor would lose the imaginary part)."""
    if source.kind not in "biufc" or target.kind not in "biufc":
        return False
    return source.kind != "c" or target.kind == "c"


class Module:
    """Base class for all neural network layers and models (``torch.nn.Module``).

    Subclasses call ``super().__init__()`` first, assign parameters and
    sub-modules as attributes, and define ``forward``; calling the module runs
    ``forward`` (with any hooks).
    """

    training: bool
    _version = 1

    def __init__(self, *args, **kwargs):
        if args or kwargs:
            raise TypeError(
                f"{type(self).__name__}.__init__() got unexpected arguments; "
                "Module.__init__ takes none"
            )
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers_set", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks_with_kwargs", set())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks_with_kwargs", set())
        object.__setattr__(self, "_backward_hooks", OrderedDict())
        object.__setattr__(self, "_backward_pre_hooks", OrderedDict())

    # -- forward --------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(
            f'Module [{type(self).__name__}] is missing the required "forward" function'
        )

    def __call__(self, *args, **kwargs):
        plain = not (self._forward_hooks or self._forward_pre_hooks or self._backward_hooks)
        if not modes.grad_enabled:
            return self.forward(*args, **kwargs) if plain else self._call_with_hooks(args, kwargs)
        # Recording: tag each op with the module that ran it (autodiff.region), so that
        # pictures cluster by module and regions know their module, with no setup.
        with ModuleCall.running(self, _qualified_name):
            return self.forward(*args, **kwargs) if plain else self._call_with_hooks(args, kwargs)

    def _call_with_hooks(self, args, kwargs):
        for hook_id, hook in list(self._forward_pre_hooks.items()):
            if hook_id in self._forward_pre_hooks_with_kwargs:
                result = hook(self, args, kwargs)
                if result is not None:
                    args, kwargs = result
            else:
                result = hook(self, args)
                if result is not None:
                    args = result if isinstance(result, tuple) else (result,)
        state = None
        if self._backward_hooks and autodiff.is_grad_enabled():
            state = {"grad_output": None, "grad_input": None, "fired": False}
            args = self._wrap_inputs_for_backward_hooks(args, state)
        output = self.forward(*args, **kwargs)
        for hook_id, hook in list(self._forward_hooks.items()):
            if hook_id in self._forward_hooks_with_kwargs:
                result = hook(self, args, kwargs, output)
            else:
                result = hook(self, args, output)
            if result is not None:
                output = result
        if state is not None:
            output = self._wrap_output_for_backward_hooks(output, state)
        return output

    # Backward hooks: identity ops around the module's inputs and output observe
    # the gradients flowing through (PyTorch's BackwardHook does the same).
    def _wrap_inputs_for_backward_hooks(self, args, state):
        wrapped = list(args)
        positions = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
        state["positions"] = positions
        state["n_inputs"] = len(args)
        state["grads"] = {}
        for i in positions:
            wrapped[i] = BackwardHookFunction.apply(args[i])

            def capture(grad, i=i):
                state["grads"][i] = grad
                if len(state["grads"]) == len(positions):
                    return self._fire_backward_hooks(state, i)
                return None

            wrapped[i].grad_fn.register_hook(capture)
        return tuple(wrapped)

    def _wrap_output_for_backward_hooks(self, output, state):
        if not isinstance(output, Tensor) or not output.requires_grad:
            return output
        output = BackwardHookFunction.apply(output)

        def capture_output(grad):
            state["grad_output"] = grad
            for pre_hook in list(self._backward_pre_hooks.values()):
                result = pre_hook(self, (grad,))
                if result is not None:
                    grad = result[0] if isinstance(result, tuple) else result
                    state["grad_output"] = grad
            if not state["positions"]:  # no input needs a gradient: fire now
                self._fire_backward_hooks(state, None)
            return grad

        output.grad_fn.register_hook(capture_output)
        return output

    def _fire_backward_hooks(self, state, position):
        grad_input = tuple(state["grads"].get(i) for i in range(state["n_inputs"]))
        grad_output = (state["grad_output"],)
        replaced = None
        for hook in list(self._backward_hooks.values()):
            result = hook(self, grad_input, grad_output)
            if result is not None:
                result = tuple(result)
                if len(result) != len(grad_input):
                    raise RuntimeError(
                        f"backward hook of {type(self).__name__}: returned {len(result)} "
                        f"gradients, expected {len(grad_input)} (one per forward input)"
                    )
                grad_input = result
                replaced = result
        if replaced is not None and position is not None:
            return replaced[position]
        return None

    def register_forward_pre_hook(self, hook, *, prepend=False, with_kwargs=False):
        """Call ``hook(module, args)`` before ``forward``; it may return new args."""
        return _add_hook(
            self._forward_pre_hooks, self._forward_pre_hooks_with_kwargs, hook, prepend, with_kwargs
        )

    def register_forward_hook(self, hook, *, prepend=False, with_kwargs=False, always_call=False):
        """Call ``hook(module, args, output)`` after ``forward``; it may return a new output.

        Example (record every layer's output shape)::

            shapes = []
            for layer in model.modules():
                layer.register_forward_hook(lambda m, args, out: shapes.append(out.shape))
        """
        return _add_hook(
            self._forward_hooks, self._forward_hooks_with_kwargs, hook, prepend, with_kwargs
        )

    def register_full_backward_hook(self, hook, prepend=False):
        """Call ``hook(module, grad_input, grad_output)`` when the gradients w.r.t. the
        module's inputs are computed; it may return replacement ``grad_input``.

        ``grad_input`` has one entry per positional input of ``forward`` (``None``
        for inputs that take no gradient); ``grad_output`` is ``(dL/d output,)``.
        """
        handle = RemovableHandle(self._backward_hooks, hook)
        if prepend:
            self._backward_hooks.move_to_end(handle.id, last=False)
        return handle

    def register_full_backward_pre_hook(self, hook, prepend=False):
        """Call ``hook(module, grad_output)`` before the module's input gradients are
        computed; it may return a replacement ``grad_output``."""
        handle = RemovableHandle(self._backward_pre_hooks, hook)
        if prepend:
            self._backward_pre_hooks.move_to_end(handle.id, last=False)
        if not self._backward_hooks:  # the pre-hook rides on the backward-hook wrapping
            self._backward_hooks[-1 - handle.id] = lambda m, gi, go: None
        return handle

    # -- registration ---------------------------------------------------------
    def __setattr__(self, name, value):
        params = self.__dict__.get("_parameters")
        if params is None and isinstance(value, (Parameter, Module)):
            raise AttributeError(
                f"cannot assign {type(value).__name__} {name!r} before "
                f"{type(self).__name__}.__init__() called super().__init__()"
            )
        if isinstance(value, Parameter):
            self._remove_from(name, keep="_parameters")
            params[name] = value
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                    "(nn.Parameter or None expected)"
                )
            params[name] = None
        elif isinstance(value, Module):
            self._remove_from(name, keep="_modules")
            self._modules[name] = value
        elif name in self.__dict__.get("_modules", {}):
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as child module '{name}' "
                    "(nn.Module or None expected)"
                )
            self._modules[name] = None
        elif name in self.__dict__.get("_buffers", {}):
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                    "(Tensor or None expected)"
                )
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _remove_from(self, name, keep):
        self.__dict__.pop(name, None)
        for store in ("_parameters", "_buffers", "_modules"):
            if store != keep:
                self.__dict__[store].pop(name, None)
        if keep != "_buffers":
            self._non_persistent_buffers_set.discard(name)

    def __getattr__(self, name):
        # only called when normal lookup fails: parameters, buffers, children
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for store in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__.get(store, {}):
                del self.__dict__[store][name]
                self._non_persistent_buffers_set.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(
            set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules)
        )

    def register_parameter(self, name: str, param) -> None:
        """Add a parameter (or None) under ``name``."""
        self._store(name, param, "parameter", Parameter, "nn.Parameter")

    def _store(self, name, value, kind, required, required_name) -> None:
        """Check and file a parameter or buffer (``kind``): ``value`` is None or a ``required``."""
        _check_name(self, name, kind)
        if value is not None and not isinstance(value, required):
            raise TypeError(
                f"cannot assign '{type(value).__name__}' object to {kind} '{name}' "
                f"({required_name} or None required)"
            )
        store = "_parameters" if kind == "parameter" else "_buffers"
        self._remove_from(name, keep=store)
        getattr(self, store)[name] = value

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        """Add a tensor that is state but not a parameter (e.g. BatchNorm's running mean).

        Persistent buffers are saved in ``state_dict()``; they move with ``to()``.
        """
        self._store(name, tensor, "buffer", Tensor, "Tensor")
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name: str, module) -> None:
        """Add a child module under ``name``."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        _check_name(self, name, "module", allow_dots=False)
        self._remove_from(name, keep="_modules")
        self._modules[name] = module

    register_module = add_module

    def get_submodule(self, target: str) -> Module:
        if target == "":
            return self
        module = self
        for item in target.split("."):
            if item not in module._modules:
                raise AttributeError(f"{module._get_name()} has no attribute `{item}`")
            module = module._modules[item]
        return module

    def get_parameter(self, target: str) -> Parameter:
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        if name not in module._parameters:
            raise AttributeError(f"{module._get_name()} has no parameter `{name}`")
        return module._parameters[name]

    # -- iteration ------------------------------------------------------------
    def named_modules(self, memo=None, prefix: str = "", remove_duplicate: bool = True):
        """Yield ``(name, module)`` for this module and every descendant (depth first)."""
        if memo is None:
            memo = set()
        if self in memo and remove_duplicate:
            return
        if remove_duplicate:
            memo.add(self)
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            sub = prefix + ("." if prefix else "") + name
            yield from module.named_modules(memo, sub, remove_duplicate)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        seen = set()
        for name, module in self._modules.items():
            if module is not None and module not in seen:
                seen.add(module)
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def _named_members(self, store, prefix, recurse, remove_duplicate=True):
        modules = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        seen = set()
        for module_prefix, module in modules:
            for name, value in getattr(module, store).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                if remove_duplicate:
                    seen.add(id(value))
                yield module_prefix + ("." if module_prefix else "") + name, value

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate=True):
        """Yield ``(name, parameter)`` with PyTorch's dotted names (``"0.weight"``)."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True):
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "", recurse: bool = True, remove_duplicate=True):
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True):
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    # -- modes and gradients -----------------------------------------------------
    def train(self, mode: bool = True):
        """Set training mode (Dropout drops, BatchNorm uses batch statistics); returns self."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self):
        """Set evaluation mode: ``train(False)``."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True):
        """Freeze (False) or unfreeze every parameter; returns self."""
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all parameters (to None by default, as PyTorch)."""
        for param in self.parameters():
            if param.grad is None:
                continue
            if set_to_none:
                param.grad = None
            else:
                param.grad.data[...] = 0

    def apply(self, fn):
        """Call ``fn(module)`` on every sub-module (children first) and on self; returns self."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # -- dtype and device ---------------------------------------------------------
    def _apply_to_tensors(self, convert):
        for module in self.modules():
            for store in (module._parameters, module._buffers):
                for tensor in store.values():
                    if tensor is None:
                        continue
                    new = convert(tensor.data)
                    if new is not tensor.data:
                        with autodiff.no_grad():
                            tensor.set_(new)
                        if tensor._grad is not None:
                            tensor._grad = constant(convert(tensor._grad.data))
        return self

    def to(self, *args, **kwargs):
        """Cast floating parameters and buffers to a dtype; devices other than "cpu" raise.

        ``model.to("cpu")``, ``model.to(autodiff.float64)`` and
        ``model.to(device, dtype)`` are accepted, as in PyTorch; parameters keep
        their identity (an optimizer built before still sees them).
        """
        dtype = kwargs.pop("dtype", None)
        device = kwargs.pop("device", None)
        kwargs.pop("non_blocking", None)
        if kwargs:
            raise TypeError(f"to: unexpected arguments {sorted(kwargs)}")
        for arg in args:
            if isinstance(arg, Tensor):
                dtype = arg.dtype
            elif isinstance(arg, (str, autodiff.device)):
                device = arg
            else:
                dtype = arg
        if device is not None:
            autodiff.device(device)  # raises for anything but the CPU
        if dtype is None:
            return self
        dtype = as_dtype(dtype, "Module.to")
        if dtype.kind not in "fc":
            raise TypeError(
                f"nn.Module.to only accepts floating point or complex dtypes, but got desired dtype={dtype}"
            )
        return self._apply_to_tensors(
            lambda a: a.astype(dtype) if a.dtype.kind in "fc" and a.dtype != dtype else a
        )

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    def half(self):
        return self.to(np.float16)

    def type(self, dst_type):
        return self.to(dst_type)

    def cpu(self):
        return self

    def cuda(self, device=None):
        autodiff.device("cuda")  # raises the CPU-only error

    # -- state dict ---------------------------------------------------------------
    def state_dict(self, *args, destination=None, prefix: str = "", keep_vars: bool = False):
        """An ordered dict from PyTorch's dotted names to parameters and persistent buffers.

        The tensors share memory with the module (detached unless ``keep_vars``);
        ``autodiff.save(model.state_dict(), path)`` writes them.
        """
        if args:  # PyTorch's old positional form state_dict(destination, prefix, keep_vars)
            destination = args[0]
            if len(args) > 1:
                prefix = args[1]
            if len(args) > 2:
                keep_vars = args[2]
        if destination is None:
            destination = OrderedDict()
        # every path to a shared module gets its keys, as in PyTorch
        for name, module in self.named_modules(prefix=prefix.rstrip("."), remove_duplicate=False):
            for key, param in module._parameters.items():
                if param is not None:
                    destination[_join(name, key)] = param if keep_vars else param.detach()
            for key, buf in module._buffers.items():
                if buf is not None and key not in module._non_persistent_buffers_set:
                    destination[_join(name, key)] = buf if keep_vars else buf.detach()
        return destination

    def _state_entries(self):
        """(key, module, store, name) for every parameter and persistent buffer, shared ones once per key."""
        entries = []
        for prefix, module in self.named_modules(remove_duplicate=False):
            for store in ("_parameters", "_buffers"):
                for name, value in getattr(module, store).items():
                    if value is None:
                        continue
                    if store == "_buffers" and name in module._non_persistent_buffers_set:
                        continue
                    entries.append((_join(prefix, name), value))
        return entries

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Copy parameters and buffers from ``state_dict`` (Tensors or NumPy arrays).

        Every key is checked before anything is copied: missing keys and
        unexpected keys (when ``strict``), shape mismatches and values that are not
        numbers (always) are reported together, by name, and the module is left
        unchanged.  Values are cast to each parameter's dtype.  Returns ``(missing_keys, unexpected_keys)``.

        Example (weights from PyTorch)::

            ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
        """
        if not isinstance(state_dict, collections.abc.Mapping):
            raise TypeError(
                f"load_state_dict: expected a dict-like state_dict, got {type(state_dict).__name__}"
            )
        entries = self._state_entries()
        own = {key for key, _ in entries}
        missing = [key for key, _ in entries if key not in state_dict]
        missing = list(dict.fromkeys(missing))
        unexpected = [key for key in state_dict if key not in own]
        errors = []
        updates = []
        for key, tensor in entries:
            if key not in state_dict:
                continue
            array = _as_array(state_dict[key], key)  # TypeError naming the key; nothing copied yet
            if array.shape != tensor.data.shape:
                errors.append(
                    f"size mismatch for {key}: copying a param with shape {tuple(array.shape)} "
                    f"from checkpoint, the shape in current model is {tuple(tensor.data.shape)}."
                )
                continue
            if not _castable(array.dtype, tensor.data.dtype):
                errors.append(
                    f"dtype mismatch for {key}: cannot copy values of dtype {array.dtype} into "
                    f"the {tensor.data.dtype} tensor of the current model (numbers only; "
                    "complex only into complex)"
                )
                continue
            updates.append((tensor, array))
        if strict:
            if unexpected:
                errors.insert(
                    0,
                    "Unexpected key(s) in state_dict: {}. ".format(
                        ", ".join(f'"{k}"' for k in unexpected)
                    ),
                )
            if missing:
                errors.insert(
                    0,
                    "Missing key(s) in state_dict: {}. ".format(
                        ", ".join(f'"{k}"' for k in missing)
                    ),
                )
        if errors:
            raise RuntimeError(
                "Error(s) in loading state_dict for {}:\n\t{}".format(
                    self._get_name(), "\n\t".join(errors)
                )
            )
        with autodiff.no_grad():
            for tensor, array in updates:  # all checks passed: now copy
                if assign:
                    tensor.set_(np.array(array, dtype=tensor.data.dtype, copy=True))
                else:
                    tensor.copy_(array)
        return _IncompatibleKeys(missing, unexpected)

    # -- printing -----------------------------------------------------------------
    def _get_name(self) -> str:
        return type(self).__name__

    def extra_repr(self) -> str:
        """The text inside the parentheses of this module's repr (override in layers)."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [
            "(" + key + "): " + _addindent(repr(module), 2) for key, module in self._modules.items()
        ]
        lines = extra_lines + child_lines
        main = self._get_name() + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                main += extra_lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"

    def __getstate__(self):
        return self.__dict__.copy()

    def __setstate__(self, state):
        self.__dict__.update(state)


def _qualified_name(call: ModuleCall) -> str:
    """A module call's name below the outermost module that ran (``"features.0"``).

    Found when first read (``ModuleCall.running``): its attribute name in the
    module its parent call ran, or its path below that module (called from an
    outer forward but held deeper); the class name when it is held by none, or
    when either module no longer exists.
    """
    outer = call.parent
    if outer is None:
        return ""
    module = call.module()
    parent = outer.module() if outer.module is not None else None
    name = None
    if parent is not None and module is not None:
        for child_name, child in parent._modules.items():
            if child is module:
                name = child_name
                break
        else:
            for path, held in parent.named_modules():
                if held is module and path:
                    name = path
                    break
    if name is None:
        name = call.type_name
    return f"{outer.name}.{name}" if outer.name else name


def _join(prefix: str, name: str) -> str:
    return prefix + "." + name if prefix else name


def _add_hook(hooks, with_kwargs_ids, hook, prepend, with_kwargs):
    """Register a forward (pre-)hook: first with ``prepend``, called with kwargs with ``with_kwargs``."""
    handle = RemovableHandle(hooks, hook)
    if with_kwargs:
        with_kwargs_ids.add(handle.id)
    if prepend:
        hooks.move_to_end(handle.id, last=False)
    return handle


def _check_name(module, name, kind, allow_dots=False):
    if "_parameters" not in module.__dict__:
        raise AttributeError(f"cannot assign {kind} before Module.__init__() call")
    if not isinstance(name, str):
        raise TypeError(f"{kind} name should be a string. Got {type(name).__name__}")
    if name == "":
        raise KeyError(f'{kind} name can\'t be empty string ""')
    if "." in name and not allow_dots:
        raise KeyError(f'{kind} name can\'t contain ".", got: {name}')
    store = {"parameter": "_parameters", "buffer": "_buffers", "module": "_modules"}[kind]
    if hasattr(module, name) and name not in module.__dict__[store]:
        raise KeyError(f"attribute '{name}' already exists")
