"""``autodiff export``: a model saved by ``autodiff train`` as an ONNX file.

    autodiff export --model-path model.pth --out model.onnx

The file takes a batch of images of any size, scaled to [0, 1] as in training
(input ``image``, shape (batch, 1, side, side)), and returns the logits (output
``logits``, shape (batch, 10)); ONNX Runtime, Netron and other ONNX tools read it.
"""

from __future__ import annotations

import os

import autodiff


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
    from .commands import CommandError, UsageError, load_saved_model

    try:
        import onnx  # noqa: F401
    except ImportError as error:
        raise UsageError(
            f"autodiff export needs the onnx extra: pip install 'autodiff[onnx]' ({error})"
        ) from None
    model, name, side = load_saved_model(args.model_path)
    try:
        # missing folders are made, as `autodiff train --save` makes them
        os.makedirs(os.path.dirname(os.path.realpath(args.out)), exist_ok=True)
        autodiff.onnx.export(
            model,
            autodiff.zeros(1, 1, side, side),
            args.out,
            input_names=["image"],
            output_names=["logits"],
            opset_version=args.opset,
        )
    except ValueError as error:  # the opset
        raise UsageError(str(error).removeprefix("export: ")) from None
    except OSError as error:
        raise CommandError(f"cannot write {args.out}: {error.strerror or error}") from None
    print(
        f"Wrote {args.out}: the {name} for {side}x{side} images, input 'image' "
        f"(batch, 1, {side}, {side}) scaled to [0, 1], output 'logits' (batch, 10)"
    )
    return 0
