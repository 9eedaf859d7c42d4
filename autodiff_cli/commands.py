"""The ``autodiff`` command: train, evaluate and draw the lecture's models.

    autodiff train                      # the lecture's quickstart: FashionMNIST, MLP, SGD, 5 epochs
    autodiff train --dataset digits --model cnn --optimizer adam --epochs 10
    autodiff evaluate --model-path model.pth
    autodiff graph --model mlp --out mlp.svg
    autodiff export --model-path model.pth --out model.onnx

``autodiff train`` runs PyTorch's quickstart end to end on this engine: it loads
FashionMNIST from ``--data-dir`` (downloading it when it is missing), trains the
lecture's ``NeuralNetwork`` (or a small CNN) with the lecture's train and test
loops and log lines, prints a table of test accuracy and loss per epoch and saves
the state dict.  When FashionMNIST is neither on disk nor downloadable and no
dataset was asked for, it says so in one line and trains on the bundled Digits.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

import numpy as np

import autodiff
import nn
from autodiff.files import new_folders
from nn import datasets
from nn.data import DataLoader
from nn.models import build_model
from nn.transforms import Compose, Normalize, ToTensor

DATASETS = ("fashion-mnist", "mnist", "digits")
MODELS = ("mlp", "cnn")

# The lecture's hyper-parameters for the 28x28 data sets.  The 1,437 Digits images
# give only 23 steps per epoch, far too few for SGD at lr=1e-3 (about 20% accuracy
# after 5 epochs); Adam at 2e-3 reaches 96-98% in 8 epochs (a few seconds).
LECTURE = {"optimizer": "sgd", "lr": 1e-3, "epochs": 5, "batch_size": 64}
DEFAULTS = {
    "fashion-mnist": LECTURE,
    "mnist": LECTURE,
    "digits": {"optimizer": "adam", "lr": 2e-3, "epochs": 8, "batch_size": 64},
}


# -- data ----------------------------------------------------------------------------------
class UsageError(Exception):
    """A problem with what the user asked for (or the files they pointed at): one line,
    exit status 2."""


class CommandError(Exception):
    """The command could not finish (a full disk, a diverged training): one line, exit 1."""


class Terminated(BaseException):
    """SIGTERM: unwinds like Ctrl-C, so that files being written are cleaned up."""


@dataclass
class Data:
    name: str
    train: object
    test: object
    image_size: int
    classes: list


def load_data(args) -> Data:
    """The train and test sets for ``args.dataset`` (None: FashionMNIST, else Digits)."""
    name = args.dataset
    explicit = name is not None
    name = name or "fashion-mnist"
    if name == "digits":
        return _digits()
    cls = datasets.FashionMNIST if name == "fashion-mnist" else datasets.MNIST
    try:
        train = cls(args.data_dir, train=True, download=args.download, transform=ToTensor())
        test = cls(args.data_dir, train=False, download=args.download, transform=ToTensor())
    except (datasets.DatasetNotFoundError, datasets.DownloadError, OSError) as error:
        reason = _one_line(error)
        if explicit:
            hint = "" if args.download else " (downloading is off: drop --no-download)"
            raise UsageError(
                f"{cls.__name__} is not available in {args.data_dir}{hint}: {reason}"
            ) from None
        why = "could not be downloaded" if args.download else "downloading is off"
        print(
            f"FashionMNIST is not in {args.data_dir} and {why} ({reason}); "
            "training on the bundled Digits (8x8) instead.",
            flush=True,
        )
        return _digits()
    except RuntimeError as error:  # corrupt files: never silently replaced by other data
        raise UsageError(str(error)) from None
    return Data(name, train, test, 28, list(cls.classes))


def _digits() -> Data:
    # ToTensor maps the 0..16 values to [0, 16/255]; the Normalize rescales them to [0, 1].
    transform = Compose([ToTensor(), Normalize((0.0,), (16 / 255,))])
    train = datasets.Digits(train=True, transform=transform)
    test = datasets.Digits(train=False, transform=transform)
    return Data("digits", train, test, 8, list(datasets.Digits.classes))


def _one_line(error: BaseException) -> str:
    """The error's message on one line; a list under a heading (every mirror's failure,
    every state-dict key) is kept, joined with "; "."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    if not lines:
        return {MemoryError: "out of memory"}.get(type(error), type(error).__name__)
    if len(lines) > 1 and lines[0].endswith(":"):
        return f"{lines[0]} {'; '.join(lines[1:])}"
    return "; ".join(lines)


# -- progress ------------------------------------------------------------------------------
class _Bar:
    """A per-epoch progress bar on stderr (tqdm when installed); log lines print above it."""

    def __init__(self, total: int, desc: str, enabled: bool):
        self.bar = None
        self.plain = False
        self.total, self.desc, self.n = total, desc, 0
        if not enabled:
            return
        try:
            from tqdm import tqdm
        except ImportError:
            self.plain = True
            return
        self.bar = tqdm(total=total, desc=desc, unit="batch", leave=False, file=sys.stderr)

    def update(self, loss: float):
        self.n += 1
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            self.bar.update(1)
        elif self.plain:
            filled = 25 * self.n // self.total
            sys.stderr.write(
                f"\r{self.desc}: |{'#' * filled}{'.' * (25 - filled)}| "
                f"{self.n}/{self.total} loss {loss:.4f}"
            )
            sys.stderr.flush()

    def write(self, line: str):
        if self.bar is not None:
            self.bar.write(line, file=sys.stdout)
        else:
            if self.plain:
                sys.stderr.write("\r\x1b[K")
            print(line, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()
        elif self.plain:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


# -- the lecture's loops -------------------------------------------------------------------
def train_epoch(dataloader, model, loss_fn, optimizer, bar: _Bar) -> float:
    """The lecture's ``train``; returns the mean training loss of the epoch."""
    size = len(dataloader.dataset)
    model.train()
    total = 0.0
    for batch, (X, y) in enumerate(dataloader):  # noqa: N806 (the lecture's names)
        pred = model(X)
        loss = loss_fn(pred, y)

        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

        value = loss.item()
        total += value
        bar.update(value)
        if batch % 100 == 0:
            current = (batch + 1) * len(X)
            bar.write(f"loss: {value:>7f}  [{current:>5d}/{size:>5d}]")
    return total / max(len(dataloader), 1)


def evaluate_model(dataloader, model, loss_fn, num_classes: int):
    """Mean loss, accuracy and the confusion matrix (rows: true class, columns: predicted)."""
    model.eval()
    num_batches = len(dataloader)
    test_loss = 0.0
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    with autodiff.no_grad():
        for X, y in dataloader:  # noqa: N806
            pred = model(X)
            test_loss += loss_fn(pred, y).item()
            predicted = pred.argmax(1).numpy()
            np.add.at(confusion, (y.numpy(), predicted), 1)
    test_loss /= max(num_batches, 1)
    accuracy = np.trace(confusion) / max(confusion.sum(), 1)
    return test_loss, float(accuracy), confusion


def make_optimizer(name: str, parameters, lr: float):
    if name == "adam":
        return nn.optim.Adam(parameters, lr=lr)
    return nn.optim.SGD(parameters, lr=lr)


def command_train(args) -> int:
    if args.save:
        check_save_target(args.save)  # before any work: a bad path must not waste a run
    if args.threads is not None:
        if args.threads < 1:
            raise UsageError(f"--threads must be >= 1 (got {args.threads})")
        autodiff.set_num_threads(args.threads)
    if args.seed is not None:
        autodiff.manual_seed(args.seed)
    data = load_data(args)
    defaults = DEFAULTS[data.name]
    epochs = args.epochs if args.epochs is not None else defaults["epochs"]
    lr = args.lr if args.lr is not None else defaults["lr"]
    optimizer_name = args.optimizer or defaults["optimizer"]
    batch_size = args.batch_size if args.batch_size is not None else defaults["batch_size"]

    train_dataloader = DataLoader(data.train, batch_size=batch_size, shuffle=args.shuffle)
    test_dataloader = DataLoader(data.test, batch_size=batch_size)
    for X, y in test_dataloader:  # noqa: N806
        print(f"Shape of X [N, C, H, W]: {X.shape}")
        print(f"Shape of y: {y.shape} {y.dtype}")
        break

    device = (
        autodiff.accelerator.current_accelerator().type
        if autodiff.accelerator.is_available()
        else "cpu"
    )
    print(f"Using {device} device")
    model = build_model(args.model, data.image_size)
    print(model)
    print(
        f"Training on {data.name} ({len(data.train)} train / {len(data.test)} test images): "
        f"{args.model}, {optimizer_name} lr={lr:g}, batch size {batch_size}, "
        f"{epochs} epoch{'' if epochs == 1 else 's'}"
        + (f", seed {args.seed}" if args.seed is not None else "")
    )
    loss_fn = nn.CrossEntropyLoss()
    optimizer = make_optimizer(optimizer_name, model.parameters(), lr)

    history = []
    for t in range(epochs):
        print(f"Epoch {t + 1}\n-------------------------------", flush=True)
        start = time.perf_counter()
        bar = _Bar(len(train_dataloader), f"Epoch {t + 1}/{epochs}", args.progress)
        try:
            train_loss = train_epoch(train_dataloader, model, loss_fn, optimizer, bar)
        finally:
            bar.close()
        seconds = time.perf_counter() - start
        test_loss, correct, _ = evaluate_model(test_dataloader, model, loss_fn, len(data.classes))
        print(f"Test Error: \n Accuracy: {(100 * correct):>0.1f}%, Avg loss: {test_loss:>8f} \n")
        history.append((t + 1, train_loss, test_loss, correct, seconds))
    print("Done!")

    if history:
        print()
        print(" epoch | train loss | test loss | test accuracy | seconds")
        print("-------+------------+-----------+---------------+--------")
        for epoch, train_loss, test_loss, correct, seconds in history:
            print(
                f" {epoch:>5d} | {train_loss:>10.6f} | {test_loss:>9.6f} | "
                f"{100 * correct:>12.1f}% | {seconds:>7.2f}"
            )
        print()

    if args.save:
        diverged = [name for name, p in model.named_parameters() if not np.isfinite(p.data).all()]
        if diverged:
            raise CommandError(
                f"training diverged: {diverged[0]} holds inf or NaN (try a smaller --lr); "
                f"{args.save} was not written"
            )
        _save(model, args.save)
        print(f"Saved model state to {args.save}")
        # as the lecture does: a fresh model, the saved state loaded into it
        model = build_model(args.model, data.image_size)
        model.load_state_dict(autodiff.load(args.save, weights_only=True))

    model.eval()
    x, y = data.test[0][0], data.test[0][1]
    with autodiff.no_grad():
        pred = model(x.unsqueeze(0))
        predicted, actual = data.classes[pred[0].argmax(0)], data.classes[y]
        print(f'Predicted: "{predicted}", Actual: "{actual}"')
    return 0


def check_save_target(path: str) -> None:
    """Fail now, not after training, when the state dict could not be saved to ``path``:
    it must not be a folder, and the nearest folder on its way that exists must be a
    folder we can create files in (missing folders are made when saving)."""
    target = os.path.realpath(path)  # a symlink is written through
    if os.path.isdir(target):
        raise UsageError(f"--save {path} is a folder; give a file name such as {path}/model.pth")
    existing = os.path.dirname(target)
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UsageError(f"cannot save the model to {path}: {existing} is a file, not a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".autodiff-write-test-"):
            pass
    except OSError as error:
        raise UsageError(
            f"cannot save the model to {path}: cannot create files in {existing} "
            f"({error.strerror or error})"
        ) from None


def _save(model, path: str) -> None:
    folder = os.path.dirname(os.path.realpath(path))
    try:
        with new_folders(folder):  # removed again if the save fails
            autodiff.save(model.state_dict(), path)
    except OSError as error:
        raise CommandError(f"cannot save the model to {path}: {error.strerror or error}") from None


# -- evaluate ------------------------------------------------------------------------------
def _infer_model(state: dict, path: str) -> tuple[str, int]:
    """(model name, image side) from a saved state dict's keys and shapes."""

    def matrix(key):
        shape = np.shape(state[key])
        if len(shape) != 2:
            raise UsageError(
                f"{path}: {key} has shape {tuple(shape)}; the lecture's models have a "
                "matrix (out_features, in_features) there"
            )
        return shape

    if "linear_relu_stack.0.weight" in state:
        in_features = matrix("linear_relu_stack.0.weight")[1]
        side = math.isqrt(in_features)
        if side * side != in_features:
            raise UsageError(f"{path}: an MLP over {in_features} inputs is not a square image")
        return "mlp", side
    if "features.0.weight" in state and "classifier.weight" in state:
        flat = matrix("classifier.weight")[1]
        side = math.isqrt(flat // 32) * 4
        if side == 0 or 32 * (side // 4) ** 2 != flat:
            raise UsageError(
                f"{path}: the CNN's classifier takes {flat} features, which no square image "
                "gives (32 channels of (side/4)^2 pixels)"
            )
        return "cnn", side
    keys = ", ".join(list(state)[:6])
    raise UsageError(
        f"{path} does not hold the state dict of the lecture's MLP or of the CNN "
        f"(`autodiff train` saves those); its keys start with: {keys}"
    )


def load_saved_model(path: str):
    """``(model, name, side)``: the lecture's model whose state dict ``autodiff train`` saved
    at ``path``, loaded; a file that is not one is a one-line UsageError."""
    try:
        state = autodiff.load(path, weights_only=True)
    except FileNotFoundError:
        raise UsageError(f"no saved model at {path} (run `autodiff train` first)") from None
    except OSError as error:
        raise UsageError(f"cannot read the saved model {path}: {error.strerror or error}") from None
    except (ValueError, RuntimeError) as error:
        raise UsageError(
            "cannot read the saved model: " + _one_line(error).removeprefix("load: ")
        ) from None
    if not isinstance(state, dict):
        raise UsageError(
            f"{path} holds a {type(state).__name__}, not a state dict "
            "(save one with autodiff.save(model.state_dict(), path))"
        )
    name, side = _infer_model(state, path)
    model = build_model(name, side)
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError, TypeError) as error:
        raise UsageError(f"{path}: {_one_line(error)}") from None
    return model, name, side


def command_evaluate(args) -> int:
    model, name, side = load_saved_model(args.model_path)
    if args.dataset is None:
        args.dataset = "digits" if side == 8 else "fashion-mnist"
    data = load_data(args)
    if data.image_size != side:
        raise UsageError(
            f"{args.model_path} holds a model for {side}x{side} images, but {data.name} has "
            f"{data.image_size}x{data.image_size} images"
        )
    batch_size = args.batch_size
    loader = DataLoader(data.test, batch_size=batch_size)
    test_loss, accuracy, confusion = evaluate_model(
        loader, model, nn.CrossEntropyLoss(), len(data.classes)
    )
    print(f"Model: {name} from {args.model_path}; test set: {data.name} ({len(data.test)} images)")
    print(
        f"Accuracy: {100 * accuracy:.1f}%, Avg loss: {test_loss:.6f} (the quickstart's: the "
        f"mean of the per-batch losses, batches of {batch_size})\n"
    )
    print("Per-class accuracy:")
    width = max(len(c) for c in data.classes)
    for i, cls in enumerate(data.classes):
        total = confusion[i].sum()
        share = f"{100 * confusion[i, i] / total:5.1f}%" if total else "   n/a"
        print(f"  {i}  {cls:<{width}}  {share}  ({confusion[i, i]}/{total})")
    print("\nConfusion matrix (rows: true class, columns: predicted class):")
    cell = max(4, len(str(confusion.max())) + 1)
    print("      " + "".join(f"{j:>{cell}d}" for j in range(len(data.classes))))
    for i, row in enumerate(confusion):
        print(f"  {i:>2d}  " + "".join(f"{v:>{cell}d}" for v in row))
    return 0


# -- graph ---------------------------------------------------------------------------------
def command_graph(args) -> int:
    try:
        import visualize
    except ImportError as error:
        raise UsageError(f"autodiff graph needs the visualize package ({error})") from None
    try:
        written = visualize.graph_command(
            model=args.model,
            out=args.out,
            fmt=args.format,
            collapse=args.collapse,
            detail=args.detail,
        )
    except ValueError as error:  # the model, --out's extension or --format
        raise UsageError(_one_line(error)) from None
    except (OSError, RuntimeError) as error:
        raise CommandError(f"could not draw the graph: {_one_line(error)}") from None
    print(f"Wrote {written or args.out}")
    return 0


# -- the parser ----------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autodiff",
        description="Train, evaluate and draw the lecture's models on the autodiff engine.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = commands.add_parser(
        "train",
        help="run the lecture's quickstart: train and test a model, save its state dict",
        description="Run PyTorch's quickstart on autodiff: load the data, train the lecture's "
        "model with its train/test loops and log lines, print a per-epoch table, save the "
        "state dict. Defaults: FashionMNIST (falling back to the bundled Digits when it is "
        "missing and cannot be downloaded), the MLP, SGD lr=1e-3, batch size 64, 5 epochs "
        "(on Digits: Adam lr=2e-3, 8 epochs).",
    )
    _data_options(train, "the data set (default fashion-mnist, falling back to the bundled digits)")
    train.add_argument("--model", choices=MODELS, default="mlp", help="the network (default mlp)")
    train.add_argument(
        "--epochs", type=_count(0), help="passes over the training set, >= 0 (default 5)"
    )
    train.add_argument("--batch-size", type=_count(1), help="samples per step (default 64)")
    train.add_argument(
        "--lr", type=_positive_number, help="learning rate, finite and > 0 (default 1e-3)"
    )
    train.add_argument("--optimizer", choices=("sgd", "adam"), help="the optimizer (default sgd)")
    train.add_argument(
        "--seed", type=_seed, default=0, help="random seed, any 64-bit integer (default 0)"
    )
    train.add_argument(
        "--threads",
        type=int,
        help="threads per operation, as autodiff.set_num_threads (default: one per core)",
    )
    _switch(
        train,
        "--shuffle",
        False,
        "shuffle the training set each epoch (the lecture does not; default off)",
    )
    train.add_argument(
        "--save", default="model.pth", help="where to save the state dict (default model.pth)"
    )
    _switch(
        train,
        "--progress",
        None,
        "show a progress bar per epoch (default: when stderr is a terminal)",
    )
    train.set_defaults(handler=command_train, parser=train)

    evaluate = commands.add_parser(
        "evaluate",
        help="test a saved model: accuracy, per-class accuracy, confusion matrix",
        description="Load a state dict saved by `autodiff train` (or by the lecture's code) "
        "and report its accuracy on the test set.",
    )
    evaluate.add_argument(
        "--model-path", default="model.pth", help="the saved state dict (default model.pth)"
    )
    _data_options(
        evaluate,
        "the test set (default: read off the state dict: digits for a model of 8x8 images, "
        "fashion-mnist for 28x28)",
    )
    evaluate.add_argument(
        "--batch-size",
        type=_count(1),
        default=64,
        help="samples per batch (default 64, as training's; the average loss is the "
        "quickstart's mean of the per-batch losses)",
    )
    evaluate.set_defaults(handler=command_evaluate, parser=evaluate)

    graph = commands.add_parser(
        "graph",
        help="draw the computation graph of one training step",
        description="Draw the loss graph of one training step of the lecture's MLP or the CNN.",
    )
    graph.add_argument("--model", choices=MODELS, default="mlp", help="the network (default mlp)")
    graph.add_argument("--out", required=True, help="output file, e.g. mlp.svg")
    graph.add_argument(
        "--format", choices=("svg", "png", "pdf"), help="file format (default: from --out)"
    )
    graph.add_argument(
        "--collapse", action="store_true", help="draw each module as one box instead of its ops"
    )
    graph.add_argument(
        "--detail",
        choices=("lecture", "primitives"),
        default="lecture",
        help="lecture: each layer as one op (conv2d, max pooling, cross-entropy); "
        "primitives: every recorded op (default lecture)",
    )
    graph.set_defaults(handler=command_graph, parser=graph)

    from .export import add_export_command  # its own module: the ONNX extra is optional

    add_export_command(commands)
    return parser


def _switch(parser, flag: str, default, help: str) -> None:
    """An on/off option: ``--flag`` and ``--no-flag``."""
    parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help)


def _data_options(parser, dataset_help: str):
    parser.add_argument("--dataset", choices=DATASETS, help=dataset_help)
    parser.add_argument(
        "--data-dir", default="./data", help="where the data sets live (default ./data)"
    )
    _switch(parser, "--download", True, "download missing FashionMNIST/MNIST files (default on)")


# Numeric options are checked as they are parsed: a bad value is a usage error (exit 2,
# with the subcommand's usage) before any work is done.
def _count(minimum: int):
    def parse(text: str) -> int:
        value = _whole_number(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def _positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _seed(text: str) -> int:
    value = _whole_number(text)
    if not -(2**63) <= value < 2**64:
        raise argparse.ArgumentTypeError(f"must be a 64-bit integer, got {value}")
    return value


def _terminate(signum, frame):
    raise Terminated()


def main(argv=None) -> int:
    """Entry point of the ``autodiff`` console command; returns the exit status.

    Every failure is one line on stderr: 2 for a usage error or a bad input file, 1
    when the command could not finish, 130 on Ctrl-C and 143 on SIGTERM (files being
    written are removed in both cases).
    """
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # the subcommand's usage, not the top level's
        args.parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if getattr(args, "progress", False) is None:
        args.progress = sys.stderr.isatty()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminate)
    name = f"autodiff {args.command}"
    try:
        return args.handler(args)
    except UsageError as error:
        print(f"{name}: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print(f"{name}: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except CommandError as error:
        print(f"{name}: error: {_one_line(error)}", file=sys.stderr)
        return 1
    except OSError as error:  # the disk or the network, wherever it failed
        print(f"{name}: error: {_one_line(error)}", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"{name}: error: out of memory", file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
