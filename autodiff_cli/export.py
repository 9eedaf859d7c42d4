"""``autodiff export``: a model saved by ``autodiff train`` as an ONNX file.

    autodiff export --model-path model.pth --out model.onnx

The file takes a batch of images of any size, scaled to [0, 1] as in training
(input ``image``, shape (batch, 1, side, side)), and returns the logits (output
``logits``, shape (batch, 10)); ONNX Runtime, Netron and other ONNX tools read it.
"""

from __future__ import annotations

import autodiff
from nn.models import build_model


def add_export_command(commands) -> None:
    """The ``export`` subcommand, on the ``autodiff`` command's subparsers."""
    export = commands.add_parser(
        "export",
        help="write a saved model as an ONNX file (for ONNX Runtime, Netron, ...)",
        description="Write a state dict saved by `autodiff train` as an ONNX file: input "
        "'image' (batch, 1, side, side) scaled to [0, 1], output 'logits' (batch, 10), any "
        "batch size. Needs the onnx extra: pip install 'autodiff[onnx]'.",
    )
    export.add_argument(
        "--model-path", default="model.pth", help="the saved state dict (default model.pth)"
    )
    export.add_argument("--out", default="model.onnx", help="the ONNX file (default model.onnx)")
    export.add_argument(
        "--opset",
        type=int,
        default=None,
        help=f"ONNX opset version, {autodiff.onnx.MIN_OPSET} or newer "
        f"(default {autodiff.onnx.DEFAULT_OPSET})",
    )
    export.set_defaults(handler=command_export, parser=export)


def command_export(args) -> int:
    from .commands import UsageError, _infer_model

    try:
        import onnx  # noqa: F401
    except ImportError:
        raise UsageError(
            "autodiff export needs the onnx package: pip install 'autodiff[onnx]'"
        ) from None
    try:
        state = autodiff.load(args.model_path, weights_only=True)
    except FileNotFoundError:
        raise UsageError(
            f"no saved model at {args.model_path} (run `autodiff train` first)"
        ) from None
    except (OSError, ValueError, RuntimeError) as error:
        raise UsageError(f"cannot read the saved model {args.model_path}: {error}") from None
    if not isinstance(state, dict):
        raise UsageError(f"{args.model_path} holds a {type(state).__name__}, not a state dict")
    name, side = _infer_model(state, args.model_path)
    model = build_model(name, side)
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError, TypeError) as error:
        raise UsageError(f"{args.model_path}: {error}") from None
    example = autodiff.zeros(1, 1, side, side)
    try:
        autodiff.onnx.export(
            model,
            example,
            args.out,
            input_names=["image"],
            output_names=["logits"],
            opset_version=args.opset,
        )
    except ValueError as error:  # the opset
        raise UsageError(str(error).removeprefix("export: ")) from None
    except OSError as error:
        raise UsageError(f"cannot write {args.out}: {error.strerror or error}") from None
    print(
        f"Wrote {args.out}: the {name} for {side}x{side} images, input 'image' "
        f"(batch, 1, {side}, {side}) scaled to [0, 1], output 'logits' (batch, 10)"
    )
    return 0
