"""The ``autodiff`` command: train (digits, synthetic FashionMNIST, the fallback, errors),
evaluate, graph, and argparse's handling of unknown options."""

from __future__ import annotations

import io
import os
import pickle
import re
import shutil
import stat
import sys
import types
import zipfile

import numpy as np
import pytest
from _helpers import private_file_behind_a_symlink
from synthetic_mnist import write_dataset

import autodiff
import nn
from autodiff_cli import commands as cli
from nn.datasets import Digits

UNREACHABLE = "http://127.0.0.1:9/"  # the discard port: connection refused, at once


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Never reach the real mirrors from a test (CI may have network access)."""
    monkeypatch.setenv("AUTODIFF_FASHION_MNIST_MIRRORS", UNREACHABLE)
    monkeypatch.setenv("AUTODIFF_MNIST_MIRRORS", UNREACHABLE)


def run(capsys, *argv):
    """(exit status, stdout, stderr) of the command, usage errors (SystemExit) included."""
    try:
        status = cli.main([str(a) for a in argv])
    except SystemExit as exit:
        status = exit.code
    out, err = capsys.readouterr()
    return status, out, err


def test_train_on_digits_one_epoch(tmp_path, capsys):
    model_path = tmp_path / "digits.pth"
    status, out, err = run(
        capsys, "train", "--dataset", "digits", "--epochs", 1, "--save", model_path, "--no-progress"
    )
    assert status == 0, err
    assert "Shape of X [N, C, H, W]: (64, 1, 8, 8)" in out
    assert "Shape of y: (64,) int64" in out
    assert "Using cpu device" in out
    assert "Linear(in_features=64, out_features=512, bias=True)" in out
    assert "loss: " in out and "[   64/ 1437]" in out
    assert "Test Error: \n Accuracy: " in out and "Avg loss: " in out
    assert " epoch | train loss | test loss | test accuracy" in out
    assert f"Saved model state to {model_path}" in out
    first = int(Digits(train=False).targets[0].item())
    assert out.rstrip().splitlines()[-1].endswith(f'Actual: "{Digits.classes[first]}"')
    assert out.rstrip().splitlines()[-1].startswith('Predicted: "')
    assert err == ""
    state = autodiff.load(str(model_path), weights_only=True)
    assert np.shape(state["linear_relu_stack.0.weight"]) == (512, 64)
    model = nn.models.NeuralNetwork(in_features=64)
    model.load_state_dict(state)


def test_the_closing_table_repeats_the_epoch_results(tmp_path, capsys):
    status, out, _ = run(
        capsys, "train", "--dataset", "digits", "--epochs", 2, "--save", "", "--no-progress"
    )
    assert status == 0
    accuracies = [
        line.split("Accuracy: ")[1].split("%")[0]
        for line in out.splitlines()
        if "Accuracy: " in line
    ]
    table = [line for line in out.splitlines() if line.strip()[:1].isdigit() and "|" in line]
    assert len(accuracies) == len(table) == 2
    for accuracy, row in zip(accuracies, table):
        assert row.split("|")[3].strip() == accuracy + "%"
    assert not (tmp_path / "model.pth").exists()


def test_train_is_reproducible_with_a_seed(capsys):
    args = ("train", "--dataset", "digits", "--epochs", 1, "--save", "", "--seed", 3)
    first = run(capsys, *args)[1]
    second = run(capsys, *args)[1]
    strip = lambda text: [line.split("|")[:4] for line in text.splitlines()]  # noqa: E731
    assert strip(first) == strip(second)


def test_fallback_to_digits_in_one_line(tmp_path, capsys):
    status, out, err = run(
        capsys,
        "train",
        "--data-dir",
        tmp_path / "data",
        "--epochs",
        1,
        "--save",
        tmp_path / "m.pth",
        "--no-progress",
    )
    assert status == 0
    mentions = [line for line in out.splitlines() if "FashionMNIST" in line]
    assert len(mentions) == 1
    assert "could not be downloaded" in mentions[0] and "bundled Digits" in mentions[0]
    assert out.splitlines()[0] == mentions[0]
    assert "Shape of X [N, C, H, W]: (64, 1, 8, 8)" in out
    assert err == "", "an unreachable mirror is skipped quietly"
    assert (tmp_path / "m.pth").exists()


def test_fallback_without_downloading(tmp_path, capsys):
    status, out, _ = run(
        capsys, "train", "--data-dir", tmp_path, "--no-download", "--epochs", 0, "--save", ""
    )
    assert status == 0
    first = out.splitlines()[0]
    assert "FashionMNIST is not in" in first and "downloading is off" in first


@pytest.mark.parametrize("extra", [[], ["--no-download"]])
def test_explicit_fashion_mnist_missing_is_exit_2(tmp_path, capsys, extra):
    status, out, err = run(
        capsys, "train", "--dataset", "fashion-mnist", "--data-dir", tmp_path, *extra
    )
    assert status == 2
    assert err.startswith("autodiff train: error: FashionMNIST is not available in")
    assert len(err.strip().splitlines()) == 1
    if extra:
        assert "drop --no-download" in err
    else:
        assert UNREACHABLE in err
    assert "Epoch" not in out


def test_train_on_synthetic_fashion_mnist_files(tmp_path, capsys):
    write_dataset(tmp_path, n_train=130, n_test=70, gz=False)
    status, out, err = run(
        capsys,
        "train",
        "--data-dir",
        tmp_path,
        "--model",
        "cnn",
        "--epochs",
        1,
        "--save",
        tmp_path / "cnn.pth",
        "--no-progress",
    )
    assert status == 0, err
    assert "FashionMNIST is not" not in out
    assert "Shape of X [N, C, H, W]: (64, 1, 28, 28)" in out
    assert "Conv2d(1, 16, kernel_size=(3, 3)" in out
    assert "Training on fashion-mnist (130 train / 70 test images): cnn, sgd lr=0.001" in out
    assert "loss: " in out and "[   64/  130]" in out
    state = autodiff.load(str(tmp_path / "cnn.pth"), weights_only=True)
    assert np.shape(state["classifier.weight"]) == (10, 32 * 7 * 7)


def test_corrupt_files_are_an_error_not_a_fallback(tmp_path, capsys):
    raw = write_dataset(tmp_path, n_train=8, n_test=8, gz=True)
    data = (raw / "t10k-labels-idx1-ubyte.gz").read_bytes()
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(data[: len(data) // 2])
    status, out, err = run(capsys, "train", "--data-dir", tmp_path, "--epochs", 0)
    assert status == 2
    assert "corrupt or truncated gzip" in err and "t10k-labels-idx1-ubyte.gz" in err
    assert "Digits" not in out


def test_unknown_option_is_argparse_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "--bogus"])
    assert info.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "--model", "resnet"])
    assert info.value.code == 2
    assert "invalid choice: 'resnet'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main([])


def test_bad_numbers_are_exit_2(capsys):
    status, _, err = run(capsys, "train", "--dataset", "digits", "--batch-size", 0, "--save", "")
    assert status == 2 and "--batch-size" in err


def test_progress_bar_with_and_without_tqdm(capsys, monkeypatch):
    args = ("train", "--dataset", "digits", "--epochs", 1, "--save", "", "--progress")
    status, out, err = run(capsys, *args)
    assert status == 0 and "loss: " in out
    if "tqdm" in sys.modules:
        assert "Epoch 1/1" in err
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now fails
    status, out, err = run(capsys, *args)
    assert status == 0 and "loss: " in out
    assert "Epoch 1/1: |#########################| 23/23" in err


# -- evaluate ------------------------------------------------------------------------------
def test_evaluate_a_trained_model(tmp_path, capsys):
    path = tmp_path / "model.pth"
    status, out, _ = run(
        capsys, "train", "--dataset", "digits", "--epochs", 1, "--save", path, "--no-progress"
    )
    assert status == 0
    trained = out.split("Accuracy: ")[-1].split("%")[0]
    status, out, err = run(capsys, "evaluate", "--model-path", path)
    assert status == 0, err
    assert "Model: mlp" in out and "test set: digits (360 images)" in out
    assert f"Accuracy: {trained}%" in out
    assert "Per-class accuracy:" in out and "9 - nine" in out
    lines = out.splitlines()
    start = lines.index("Confusion matrix (rows: true class, columns: predicted class):")
    matrix = np.array(
        [[int(v) for v in line.split()[1:]] for line in lines[start + 2 : start + 12]]
    )
    test = Digits(train=False)
    assert matrix.sum(axis=1).tolist() == np.bincount(test.targets.numpy(), minlength=10).tolist()
    assert np.trace(matrix) / matrix.sum() == pytest.approx(float(trained) / 100, abs=6e-4)


def test_evaluate_the_lectures_file_layout_and_bad_files(tmp_path, capsys):
    model = nn.models.ConvNet(image_size=8)
    autodiff.save(model.state_dict(), str(tmp_path / "cnn.pth"))
    status, out, _ = run(capsys, "evaluate", "--model-path", tmp_path / "cnn.pth")
    assert status == 0 and "Model: cnn" in out
    status, _, err = run(capsys, "evaluate", "--model-path", tmp_path / "missing.pth")
    assert status == 2 and "no saved model at" in err
    autodiff.save({"w": np.zeros(3)}, str(tmp_path / "other.pth"))
    status, _, err = run(capsys, "evaluate", "--model-path", tmp_path / "other.pth")
    assert status == 2 and "does not hold the state dict" in err and "w" in err
    (tmp_path / "junk.pth").write_bytes(b"not a state dict")
    status, _, err = run(capsys, "evaluate", "--model-path", tmp_path / "junk.pth")
    assert status == 2 and "cannot read the saved model" in err


# -- graph ---------------------------------------------------------------------------------
def test_graph_calls_visualize_graph_command(tmp_path, capsys, monkeypatch):
    calls = []

    def graph_command(**kwargs):
        calls.append(kwargs)
        return str(tmp_path / "g.png")

    monkeypatch.setitem(
        sys.modules, "visualize", types.SimpleNamespace(graph_command=graph_command)
    )
    status, out, _ = run(
        capsys, "graph", "--model", "cnn", "--out", tmp_path / "g", "--format", "png", "--collapse"
    )
    assert status == 0
    assert calls == [
        {
            "model": "cnn",
            "out": str(tmp_path / "g"),
            "fmt": "png",
            "collapse": True,
            "detail": "lecture",
        }
    ]
    assert f"Wrote {tmp_path / 'g.png'}" in out
    status, _, _ = run(capsys, "graph", "--out", tmp_path / "g.svg", "--detail", "primitives")
    assert status == 0 and calls[-1]["detail"] == "primitives"


def test_graph_detail_must_be_lecture_or_primitives(tmp_path, capsys):
    status, _, err = run(capsys, "graph", "--out", tmp_path / "g.svg", "--detail", "ops")
    assert status == 2
    assert "invalid choice: 'ops'" in err and "lecture" in err and "primitives" in err


@pytest.mark.parametrize(
    "detail, ops",
    [
        ("lecture", {"linear": 3, "relu": 2, "flatten": 1, "cross_entropy": 1}),
        ("primitives", {"Linear": 3, "Relu": 2, "CrossEntropy": 1}),
    ],
)
def test_graph_detail_draws_layers_or_every_recorded_op(tmp_path, capsys, detail, ops):
    pytest.importorskip("graphviz")
    pytest.importorskip("visualize")
    out = tmp_path / "mlp.dot"  # the DOT text: no Graphviz program needed
    status, _, err = run(capsys, "graph", "--model", "mlp", "--out", out, "--detail", detail)
    assert status == 0, err
    ellipses = [line for line in out.read_text().splitlines() if "shape=ellipse" in line]
    drawn = [re.search(r"<B>([^<]*)</B>", line).group(1) for line in ellipses]
    assert {name: drawn.count(name) for name in ops} == ops


def test_graph_renders_an_svg(tmp_path, capsys):
    pytest.importorskip("graphviz")
    pytest.importorskip("visualize")
    if shutil.which("dot") is None:
        pytest.skip("graphviz's dot is not installed")
    status, _, err = run(capsys, "graph", "--model", "mlp", "--out", tmp_path / "mlp.svg")
    assert status == 0, err
    assert "<svg" in (tmp_path / "mlp.svg").read_text()


def test_runs_as_a_module_with_argparse_errors():
    import subprocess

    result = subprocess.run(
        [sys.executable, "-m", "autodiff_cli", "train", "--bogus"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    # the subcommand's usage and name, not the top level's (issue 12)
    assert result.stderr.startswith("usage: autodiff train [-h]")
    assert (
        result.stderr.splitlines()[-1] == "autodiff train: error: unrecognized arguments: --bogus"
    )
    assert result.stdout == ""


def test_train_threads_sets_the_matrix_product_threads(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(autodiff, "set_num_threads", calls.append)
    args = ("train", "--dataset", "digits", "--epochs", 0, "--save", "", "--no-progress")
    status, _, err = run(capsys, *args, "--threads", 1)
    assert status == 0, err
    assert calls == [1]
    run(capsys, *args)
    assert calls == [1]  # without --threads the default stays


def test_train_threads_must_be_positive(monkeypatch, capsys):
    monkeypatch.setattr(autodiff, "set_num_threads", pytest.fail)
    status, _, err = run(capsys, "train", "--dataset", "digits", "--threads", 0, "--save", "")
    assert status == 2
    assert err == "autodiff train: error: --threads must be >= 1 (got 0)\n"


# -- bad input: one line, exit 1 or 2, nothing left behind ---------------------------------
def one_line(err: str) -> str:
    """The error line of a failed command; there is exactly one, and no traceback."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err
    errors = [line for line in lines if ": error: " in line]
    assert len(errors) == 1, err
    assert not [
        line for line in lines if not line.startswith(("usage:", " ")) and ": error: " not in line
    ], err
    return errors[0]


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--lr", "nan", "finite number > 0"),
        ("--lr", "inf", "finite number > 0"),
        ("--lr", "-0.1", "finite number > 0"),
        ("--lr", "0", "finite number > 0"),
        ("--epochs", "-1", "must be >= 0"),
        ("--batch-size", "0", "must be >= 1"),
        ("--epochs", "1.5", "whole number"),
        ("--seed", str(2**64), "64-bit"),
        ("--seed", str(-(2**63) - 1), "64-bit"),
    ],
)
def test_numeric_options_are_checked_before_any_work(tmp_path, capsys, option, value, message):
    model_path = tmp_path / "model.pth"
    model_path.write_bytes(b"the previous model")
    status, out, err = run(
        capsys, "train", "--dataset", "digits", "--save", model_path, f"{option}={value}"
    )
    assert status == 2 and out == ""
    assert err.startswith("usage: autodiff train")
    line = one_line(err)
    assert line.startswith(f"autodiff train: error: argument {option}: ") and message in line
    assert model_path.read_bytes() == b"the previous model"


def test_any_64_bit_seed(capsys):
    for seed in (-1, 2**64 - 1, -(2**63)):
        status, out, err = run(
            capsys, "train", "--dataset", "digits", "--epochs", 0, "--save", "", "--seed", seed
        )
        assert status == 0, err
        assert f"seed {seed}" in out


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value encountered")
def test_save_target_is_checked_before_the_first_epoch(tmp_path, capsys):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    for target, message in [
        ("/proc/x", "cannot create files in /proc"),
        (a_file / "model.pth", f"{a_file} is a file, not a folder"),
        (tmp_path, "is a folder; give a file name"),
    ]:
        status, out, err = run(capsys, "train", "--dataset", "digits", "--save", target)
        assert status == 2
        assert "Epoch" not in out and "Shape of X" not in out
        assert message in one_line(err) and str(target) in err
    # missing folders are fine (made when saving), and nothing is made by a failed run
    status, _, err = run(
        capsys, "train", "--dataset", "digits", "--lr", "1e30", "--optimizer", "sgd",
        "--epochs", 1, "--save", tmp_path / "new" / "deeper" / "m.pth", "--no-progress",
    )  # fmt: skip
    assert status == 1 and "training diverged" in one_line(err) and "was not written" in err
    assert not (tmp_path / "new").exists()


@pytest.mark.filterwarnings("ignore:overflow encountered", "ignore:invalid value encountered")
def test_a_diverged_training_does_not_overwrite_the_previous_model(tmp_path, capsys):
    model_path = tmp_path / "model.pth"
    model_path.write_bytes(b"the previous model")
    status, out, err = run(
        capsys, "train", "--dataset", "digits", "--lr", "1e30", "--optimizer", "sgd",
        "--epochs", 1, "--save", model_path, "--no-progress",
    )  # fmt: skip
    assert status == 1 and "nan" in out
    assert "training diverged" in one_line(err)
    assert model_path.read_bytes() == b"the previous model"
    assert os.listdir(tmp_path) == ["model.pth"]


def test_save_through_a_symlink_keeps_the_link_and_the_mode(tmp_path, capsys):
    real, link = private_file_behind_a_symlink(tmp_path)
    status, _, err = run(
        capsys, "train", "--dataset", "digits", "--epochs", 0, "--save", link, "--no-progress"
    )
    assert status == 0, err
    assert link.is_symlink() and stat.S_IMODE(real.stat().st_mode) == 0o600
    assert "linear_relu_stack.0.weight" in autodiff.load(link)


def bad_model_files(folder):
    """name -> (write the file, what the error says)."""
    good = folder / "good.pth"
    autodiff.save(nn.models.NeuralNetwork(in_features=64).state_dict(), good)
    data = good.read_bytes()
    rank1 = dict(nn.models.NeuralNetwork(in_features=64).state_dict())
    rank1["linear_relu_stack.0.weight"] = autodiff.zeros(512)
    cases = {
        "truncated.pth": (lambda p: p.write_bytes(data[: len(data) // 2]), "truncated"),
        "empty.pth": (lambda p: p.write_bytes(b""), "is empty"),
        "bare.pth": (
            lambda p: p.write_bytes(_npy(np.zeros(3))),
            "holds a Tensor, not a state dict",
        ),
        "strings.pth": (
            lambda p: (
                np.savez(str(p) + ".npz", w=np.array(["a"])) or os.replace(str(p) + ".npz", p)
            ),
            "(text)",
        ),
        "structure.pth": (
            lambda p: zipfile.ZipFile(p, "w").writestr(
                "__autodiff_structure__.npy", _npy(np.array("{broken"))
            ),
            "malformed structure entry",
        ),
        "rank1.pth": (lambda p: autodiff.save(rank1, p), "has shape (512,)"),
        "pickle.pth": (lambda p: p.write_bytes(pickle.dumps({"w": 1})), "pickled Python objects"),
        "text.pth": (lambda p: p.write_text("hello"), "not a file written by autodiff.save"),
        "wrong-shapes.pth": (
            lambda p: autodiff.save(
                {
                    **nn.models.NeuralNetwork(in_features=64).state_dict(),
                    "linear_relu_stack.2.bias": autodiff.zeros(3),
                },
                p,
            ),
            "size mismatch for linear_relu_stack.2.bias",
        ),
    }
    return cases


def _npy(array) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "name",
    [
        "truncated.pth", "empty.pth", "bare.pth", "strings.pth", "structure.pth", "rank1.pth",
        "pickle.pth", "text.pth", "wrong-shapes.pth",
    ],
)  # fmt: skip
def test_evaluate_a_bad_file_is_one_line(tmp_path, capsys, name):
    write, message = bad_model_files(tmp_path)[name]
    path = tmp_path / name
    write(path)
    status, out, err = run(capsys, "evaluate", "--model-path", path, "--data-dir", tmp_path / "d")
    assert status == 2 and out == ""
    line = one_line(err)
    assert line.startswith("autodiff evaluate: error: ") and message in line and str(path) in line
    assert "pickle" not in line.replace(str(path), "") or name == "pickle.pth"
    assert not (tmp_path / "d").exists()


def test_a_failed_evaluate_leaves_no_empty_data_folders(tmp_path, capsys):
    model = nn.models.NeuralNetwork()
    autodiff.save(model.state_dict(), tmp_path / "m.pth")
    data = tmp_path / "data"
    status, _, err = run(
        capsys, "evaluate", "--model-path", tmp_path / "m.pth", "--dataset", "mnist",
        "--data-dir", data,
    )  # fmt: skip
    assert status == 2 and "MNIST is not available" in one_line(err)
    assert not data.exists()
    (data / "MNIST").mkdir(parents=True)  # a folder that was there stays
    status, _, _ = run(
        capsys, "evaluate", "--model-path", tmp_path / "m.pth", "--dataset", "mnist",
        "--data-dir", data,
    )  # fmt: skip
    assert status == 2 and os.listdir(data / "MNIST") == []


def test_evaluate_help_says_where_the_data_set_comes_from():
    help_text = cli.build_parser()._subparsers._group_actions[0].choices["evaluate"].format_help()
    assert "read off the state dict" in " ".join(help_text.split())
    assert "default fashion-mnist, falling back" not in help_text


def test_evaluate_reports_the_same_test_loss_as_train(tmp_path, capsys):
    path = tmp_path / "m.pth"
    status, out, _ = run(
        capsys, "train", "--dataset", "digits", "--epochs", 1, "--save", path, "--no-progress"
    )
    assert status == 0
    trained = out.split("Avg loss: ")[-1].split()[0]
    status, out, _ = run(capsys, "evaluate", "--model-path", path)
    assert status == 0
    assert f"Avg loss: {float(trained):.6f} (the quickstart's" in out


@pytest.mark.parametrize(
    ("out", "extra", "message"),
    [
        ("mlp.jpg", [], "extension .jpg"),
        ("mlp.png", ["--format", "svg"], "ends in .png but the format asked for is svg"),
    ],
)
def test_graph_name_and_format_must_agree(tmp_path, capsys, out, extra, message):
    pytest.importorskip("visualize")
    status, _, err = run(capsys, "graph", "--out", tmp_path / out, *extra)
    assert status == 2 and message in one_line(err)
    assert os.listdir(tmp_path) == []


def test_usage_errors_show_the_subcommands_usage(capsys):
    for command in ("train", "evaluate", "graph"):
        status, _, err = run(
            capsys, command, "--bogus", *(["--out", "g.svg"] if command == "graph" else [])
        )
        assert status == 2
        assert err.startswith(f"usage: autodiff {command} ")
        assert one_line(err) == f"autodiff {command}: error: unrecognized arguments: --bogus"
