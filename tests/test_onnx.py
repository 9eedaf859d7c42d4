"""ONNX export: the written file runs on ONNX Runtime and computes what the model computes.

Every test exports a model, checks the file with ``onnx.checker`` (export does, and
so do these tests, on the file as written) and runs it in ONNX Runtime on batches
of other sizes than the one traced, against this engine's own output.  Skipped
when onnx or onnxruntime is missing (CI installs both: ``.ci/run``).
"""

from __future__ import annotations

import io

import numpy as np
import pytest

import autodiff
import nn
import nn.functional as F  # noqa: N812 (PyTorch's name)
from autodiff.onnx import UnsupportedOperatorError

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

TOLERANCE = {"rtol": 0, "atol": 1e-5}  # the "logits equal within 1e-5"


# -- helpers ----------------------------------------------------------------------------------


def export_and_load(model, example, path, **options):
    autodiff.onnx.export(model, example, str(path), **options)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def engine_output(model, x):
    model.eval()
    with autodiff.no_grad():
        return model(autodiff.tensor(x)).numpy()


def assert_runs_like(model, session, shape, batches=(1, 64), seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    name = session.get_inputs()[0].name
    for n in batches:
        x = rng.standard_normal((n, *shape)).astype(dtype)
        got = session.run(None, {name: x})[0]
        np.testing.assert_allclose(got, engine_output(model, x), **TOLERANCE)


def op_types(path):
    return [node.op_type for node in onnx.load(str(path)).graph.node]


# -- the lecture's models ----------------------------------------------------------------------


def export_lecture_model(model, batch, path):
    """Export one of the lecture's 8x8 models from a random batch; it must run like the engine
    and hold exactly the state dict's keys as initializers.  Returns the session."""
    session = export_and_load(model, autodiff.randn(batch, 1, 8, 8), path)
    assert_runs_like(model, session, (1, 8, 8))
    assert {i.name for i in onnx.load(str(path)).graph.initializer} == set(model.state_dict())
    return session


def test_mlp_exports_runs_on_any_batch_and_names_weights_by_state_dict(tmp_path):
    autodiff.manual_seed(0)
    model = nn.models.NeuralNetwork(in_features=64)
    path = tmp_path / "mlp.onnx"
    session = export_lecture_model(model, 3, path)
    assert [i.name for i in session.get_inputs()] == ["x"]
    assert session.get_inputs()[0].shape == ["batch", 1, 8, 8]
    assert session.get_outputs()[0].shape == ["batch", 10]
    assert op_types(path).count("Gemm") == 3  # linear as one Gemm each
    assert "Relu" in op_types(path)


def test_cnn_exports_as_conv_and_max_pool(tmp_path):
    autodiff.manual_seed(0)
    model = nn.models.ConvNet(image_size=8)
    path = tmp_path / "cnn.onnx"
    export_lecture_model(model, 2, path)
    types_ = op_types(path)
    assert types_.count("Conv") == 2 and types_.count("MaxPool") == 2


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_models_trained_by_the_cli_export_with_the_same_logits(tmp_path, name, monkeypatch):
    from autodiff_cli import main

    monkeypatch.chdir(tmp_path)
    args = ["--dataset", "digits", "--model", name, "--epochs", "1", "--save", "m.pth"]
    assert main(["train", *args]) == 0
    assert main(["export", "--model-path", "m.pth", "--out", "m.onnx"]) == 0
    model = nn.models.build_model(name, 8)
    model.load_state_dict(autodiff.load("m.pth"))
    session = ort.InferenceSession("m.onnx", providers=["CPUExecutionProvider"])
    onnx.checker.check_model(onnx.load("m.onnx"), full_check=True)
    images = nn.datasets.Digits(train=False).data.numpy()  # real digits, not noise
    images = (images.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    for n in (1, 64):
        x = images[:n]
        logits = session.run(None, {session.get_inputs()[0].name: x})[0]
        np.testing.assert_allclose(logits, engine_output(model, x), **TOLERANCE)


@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_with_batch_statistics_exports_for_any_batch_size(tmp_path, affine):
    """Without running statistics batch_norm normalises by the batch's own (its fused
    primitive, BatchNorm): written as ReduceMean, Sub, ..., Sqrt, Div, so that one
    file computes them for every batch size."""
    autodiff.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 3, 3),
        nn.BatchNorm2d(3, affine=affine, track_running_stats=False),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(3 * 6 * 6, 5),
        nn.BatchNorm1d(5, affine=affine, track_running_stats=False),
    )
    if affine:
        with autodiff.no_grad():  # weights and biases away from 1 and 0
            for module in (model[1], model[5]):
                module.weight.uniform_(0.5, 2.0)
                module.bias.uniform_(-1.0, 1.0)
    path = tmp_path / "batch_statistics.onnx"
    session = export_and_load(model, autodiff.randn(4, 1, 8, 8), path)
    assert_runs_like(model, session, (1, 8, 8), batches=(2, 64))
    types_ = op_types(path)
    assert "BatchNormalization" not in types_ and types_.count("ReduceMean") == 4
    assert ("Unsqueeze" in types_) == affine


def test_batch_norm_and_dropout_export_in_eval_mode_and_modes_are_restored(tmp_path):
    autodiff.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Flatten(),
        nn.Linear(4 * 8 * 8, 16),
        nn.BatchNorm1d(16),
        nn.Dropout(0.3),
        nn.Linear(16, 10),
    )
    optimizer = autodiff.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):  # running statistics and weights away from their initial values
        loss = model(autodiff.randn(16, 1, 8, 8) * 2 + 1).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.train()
    model[3].eval()  # a mixed state, restored module by module
    path = tmp_path / "bn.onnx"
    session = export_and_load(model, autodiff.randn(4, 1, 8, 8), path)
    assert [m.training for m in model.modules()] == [
        True,
        True,
        True,
        True,
        False,
        True,
        True,
        True,
        True,
        True,
    ]
    assert_runs_like(model, session, (1, 8, 8))
    types_ = op_types(path)
    assert types_.count("BatchNormalization") == 2
    assert "Dropout" not in types_ and "RandomUniformLike" not in types_
    names = {i.name for i in onnx.load(str(path)).graph.initializer}
    assert {"1.running_mean", "1.running_var", "6.running_mean", "6.running_var"} <= names


# -- layers one by one ----------------------------------------------------------------------


class PoolOneImage(nn.Module):
    """Pooling on an unbatched (C, H, W) image, as F.max_pool2d and F.avg_pool2d allow."""

    def forward(self, x):
        image = x[0]  # (C, H, W)
        pooled = F.max_pool2d(image, 2, ceil_mode=True) + F.avg_pool2d(image, 2, ceil_mode=True)
        return x * pooled.sum()


class Unfolded(nn.Module):
    def forward(self, x):
        return F.unfold(x, (2, 3), dilation=(2, 1), padding=1, stride=(1, 2))


def _layer_cases():
    return {
        "conv stride 2 pad 2 dilation 2": (
            nn.Conv2d(3, 4, 3, stride=2, padding=2, dilation=2),
            (3, 9, 9),
        ),
        "conv groups, no bias": (nn.Conv2d(4, 6, 3, groups=2, bias=False), (4, 7, 7)),
        "conv padding same, even kernel": (nn.Conv2d(2, 3, (4, 2), padding="same"), (2, 7, 6)),
        "conv padding valid": (nn.Conv2d(2, 3, 3, padding="valid"), (2, 6, 6)),
        "max pool ceil mode": (nn.MaxPool2d(2, ceil_mode=True), (2, 5, 7)),
        "max pool pad stride dilation": (
            nn.MaxPool2d(3, stride=2, padding=1, dilation=2, ceil_mode=True),
            (2, 10, 9),
        ),
        "avg pool": (nn.AvgPool2d(2), (2, 6, 6)),
        "avg pool ceil include pad": (nn.AvgPool2d(3, 2, padding=1, ceil_mode=True), (2, 6, 8)),
        "avg pool exclude pad": (
            nn.AvgPool2d(3, 2, padding=1, ceil_mode=True, count_include_pad=False),
            (2, 6, 8),
        ),
        "avg pool divisor": (nn.AvgPool2d(2, padding=1, divisor_override=3), (2, 5, 5)),
        "adaptive global": (nn.AdaptiveAvgPool2d(1), (3, 5, 6)),
        "adaptive divisible": (nn.AdaptiveAvgPool2d((2, 3)), (3, 4, 6)),
        "adaptive uneven": (nn.AdaptiveAvgPool2d(3), (3, 5, 7)),
        "leaky relu": (nn.LeakyReLU(0.2), (5,)),
        "elu": (nn.ELU(0.7), (5,)),
        "gelu": (nn.GELU(), (5,)),
        "gelu tanh": (nn.GELU("tanh"), (5,)),
        "sigmoid": (nn.Sigmoid(), (5,)),
        "tanh": (nn.Tanh(), (5,)),
        "softmax": (nn.Softmax(dim=1), (5,)),
        "log softmax last dim": (nn.LogSoftmax(dim=-1), (3, 5)),
        "relu in place": (
            nn.Sequential(nn.Linear(5, 5), nn.ReLU(inplace=True), nn.Linear(5, 2)),
            (5,),
        ),
        "flatten middle dims": (nn.Flatten(1, 2), (2, 3, 4)),
        "linear on 3-d input": (nn.Linear(4, 3), (2, 4)),
        "batch norm 1d on (N, C, L)": (nn.BatchNorm1d(3), (3, 4)),
        "unfold": (Unfolded(), (2, 6, 5)),
        "pooling an unbatched image": (PoolOneImage(), (2, 5, 5)),
    }


# Written from their primitives (no region rules), these layers read values out of the
# graph (softmax's max shift): export must refuse them.  (log_softmax's primitive,
# LogSoftmax, is one ONNX LogSoftmax.)
_NOT_FROM_PRIMITIVES = {"softmax"}


@pytest.mark.parametrize("by", ["regions", "primitives"])
@pytest.mark.parametrize("case", list(_layer_cases()))
def test_layer_runs_like_the_engine(tmp_path, case, by, monkeypatch):
    if by == "primitives":  # every region declines: the ops inside are written instead
        monkeypatch.setattr(autodiff.onnx, "_REGION_RULES", {})
    autodiff.manual_seed(1)
    layer, shape = _layer_cases()[case]
    if by == "primitives" and case in _NOT_FROM_PRIMITIVES:
        with pytest.raises(UnsupportedOperatorError, match="depends on the input's values"):
            autodiff.onnx.export(layer, autodiff.randn(2, *shape), io.BytesIO())
        return
    session = export_and_load(layer, autodiff.randn(2, *shape), tmp_path / "layer.onnx")
    assert_runs_like(layer, session, shape, batches=(1, 5))


@pytest.mark.parametrize("opset", [13, 17, 18, 20])
def test_opsets(tmp_path, opset):
    autodiff.manual_seed(2)
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3),
        nn.BatchNorm2d(2),
        nn.GELU(),
        nn.GELU("tanh"),
        nn.AvgPool2d(2, ceil_mode=True),
        nn.Flatten(),
        nn.Linear(2 * 3 * 3, 4),
        nn.LogSoftmax(dim=1),
    )
    path = tmp_path / "m.onnx"
    session = export_and_load(model, autodiff.randn(2, 1, 8, 8), path, opset_version=opset)
    assert onnx.load(str(path)).opset_import[0].version == opset
    assert ("Gelu" in op_types(path)) == (opset >= 20)
    assert_runs_like(model, session, (1, 8, 8), batches=(1, 3))


# -- layers that change their input in place ---------------------------------------------------


def _flat(nn_, inplace, *layers):
    """Flatten, then ``layers`` at the input's view, then a Linear on the (N, 6) result."""
    return nn_.Sequential(nn_.Flatten(), *layers, nn_.Linear(6, 3))


# name -> (build(nn or torch.nn, inplace) -> model, one example's shape)
_IN_PLACE_CASES = {
    "relu first": (lambda nn_, ip: nn_.Sequential(nn_.ReLU(ip), nn_.Linear(4, 3)), (4,)),
    "leaky relu first": (
        lambda nn_, ip: nn_.Sequential(nn_.LeakyReLU(0.2, ip), nn_.Linear(4, 3)),
        (4,),
    ),
    "elu first": (lambda nn_, ip: nn_.Sequential(nn_.ELU(0.7, ip), nn_.Linear(4, 3)), (4,)),
    "silu first": (lambda nn_, ip: nn_.Sequential(nn_.SiLU(ip), nn_.Linear(4, 3)), (4,)),
    "dropout first": (
        lambda nn_, ip: nn_.Sequential(nn_.Dropout(0.3, ip), nn_.Linear(4, 3)),
        (4,),
    ),
    "relu after flatten": (lambda nn_, ip: _flat(nn_, ip, nn_.ReLU(ip)), (2, 3)),
    "leaky relu after flatten": (lambda nn_, ip: _flat(nn_, ip, nn_.LeakyReLU(0.2, ip)), (2, 3)),
    "elu after flatten": (lambda nn_, ip: _flat(nn_, ip, nn_.ELU(0.7, ip)), (2, 3)),
    "silu after flatten": (lambda nn_, ip: _flat(nn_, ip, nn_.SiLU(ip)), (2, 3)),
    "dropout after flatten": (lambda nn_, ip: _flat(nn_, ip, nn_.Dropout(0.3, ip)), (2, 3)),
    "all of them after flatten": (
        lambda nn_, ip: _flat(
            nn_, ip, nn_.ReLU(ip), nn_.Dropout(0.3, ip), nn_.LeakyReLU(0.2, ip), nn_.SiLU(ip)
        ),
        (2, 3),
    ),
    "in the middle": (
        lambda nn_, ip: nn_.Sequential(
            nn_.Linear(4, 5),
            nn_.LeakyReLU(0.1, ip),
            nn_.Linear(5, 5),
            nn_.ELU(1.0, ip),
            nn_.Dropout(0.5, ip),
            nn_.Linear(5, 5),
            nn_.SiLU(ip),
            nn_.ReLU(ip),
            nn_.Linear(5, 3),
        ),
        (4,),
    ),
    "after flatten in the middle": (  # an in-place change to a view of a layer's output
        lambda nn_, ip: nn_.Sequential(
            nn_.Conv2d(1, 2, 3, padding=1),
            nn_.Flatten(),
            nn_.ReLU(ip),
            nn_.Linear(2 * 4 * 4, 5),
            nn_.Flatten(),
            nn_.SiLU(ip),
            nn_.LeakyReLU(0.1, ip),
            nn_.Linear(5, 3),
        ),
        (1, 4, 4),
    ),
    "relu first on images": (
        lambda nn_, ip: nn_.Sequential(
            nn_.ReLU(ip),
            nn_.Conv2d(1, 2, 3),
            nn_.ReLU(ip),
            nn_.MaxPool2d(2),
            nn_.Flatten(),
            nn_.Linear(2 * 3 * 3, 3),
        ),
        (1, 8, 8),
    ),
}


@pytest.mark.parametrize("case", list(_IN_PLACE_CASES))
def test_in_place_layers_export_as_their_out_of_place_twins(tmp_path, case):
    build, shape = _IN_PLACE_CASES[case]
    autodiff.manual_seed(4)
    model = build(nn, True)
    autodiff.manual_seed(4)
    twin = build(nn, False)  # the same weights, layers that return new tensors
    example = autodiff.randn(3, *shape)
    before = example.numpy().copy()
    assert (before < 0).any()  # an in-place ReLU would change it
    session = export_and_load(model, example, tmp_path / "in_place.onnx")
    np.testing.assert_array_equal(example.numpy(), before)  # export does not change the example
    export_and_load(twin, example, tmp_path / "twin.onnx")
    graph = onnx.load(str(tmp_path / "in_place.onnx")).graph
    twin_graph = onnx.load(str(tmp_path / "twin.onnx")).graph
    assert [i.name for i in graph.input] == ["input"]
    assert list(graph.input) == list(twin_graph.input)
    assert list(graph.node) == list(twin_graph.node)  # no copy node for the input, no clone
    assert graph == twin_graph  # and the same initializers and outputs
    assert "Identity" not in op_types(tmp_path / "in_place.onnx")
    assert_runs_like(model, session, shape, batches=(1, 5))


@pytest.mark.parametrize("case", list(_IN_PLACE_CASES))
def test_in_place_layers_export_computes_what_pytorch_computes(tmp_path, case, torch):
    build, shape = _IN_PLACE_CASES[case]
    model, theirs = build(nn, True), build(torch.nn, True)
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in model.state_dict().items()})
    theirs.eval()
    session = export_and_load(model, autodiff.randn(2, *shape), tmp_path / "in_place.onnx")
    x = np.random.default_rng(5).standard_normal((5, *shape)).astype(np.float32)
    with torch.no_grad():
        want = theirs(torch.tensor(x)).numpy()
    np.testing.assert_allclose(session.run(None, {"input": x})[0], want, **TOLERANCE)


class ChangesItsInput(nn.Module):
    """Tensor methods that change the input, and its views, in place."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 2)

    def forward(self, x):  # x: (N, 2, 3)
        x.relu_()
        x.mul_(2.0)
        flat = x.flatten(1)
        flat += 1
        flat.clamp_(max=3.0)
        return self.fc(flat) + flat.sum(1, keepdim=True)


def test_tensor_methods_that_change_the_input_in_place(tmp_path):
    model = ChangesItsInput()
    example = autodiff.randn(4, 2, 3)
    before = example.numpy().copy()
    path = tmp_path / "m.onnx"
    session = export_and_load(model, example, path)
    np.testing.assert_array_equal(example.numpy(), before)
    assert op_types(path) == ["Relu", "Mul", "Reshape", "Add", "Clip", "Gemm", "ReduceSum", "Add"]
    assert_runs_like(model, session, (2, 3), batches=(1, 5))


class ReadsAChangedInput(nn.Module):
    def __init__(self, how):
        super().__init__()
        self.how = how

    def forward(self, x):  # x: (N, 2, 3)
        if self.how == "the input, after a view of it changed":
            x.flatten(1).relu_()
            return x * 2
        if self.how == "an older view, after the input changed":
            view = x.flatten(1)
            x.relu_()
            return view * 2
        if self.how == "another view, after one view changed":
            view, other = x.flatten(1), x.view(-1, 6)
            view.relu_()
            return other * 2
        with autodiff.no_grad():  # a change that is not recorded
            x.add_(1.0)
        return x * 2


def test_an_older_view_read_after_the_input_changed_reads_the_new_values(tmp_path):
    """The engine takes a stale view again from its base's new history (PyTorch's view
    rebase), so ``view = x.flatten(1); x.relu_(); view * 2`` is relu -> reshape -> mul."""
    model = ReadsAChangedInput("an older view, after the input changed")
    path = tmp_path / "m.onnx"
    session = export_and_load(model, autodiff.randn(3, 2, 3), path)
    assert op_types(path) == ["Relu", "Reshape", "Mul"]
    assert_runs_like(model, session, (2, 3), batches=(1, 5))


@pytest.mark.parametrize(
    "how",
    [
        "the input, after a view of it changed",
        "another view, after one view changed",
        "the input, after a change under no_grad",
    ],
)
def test_reading_input_values_that_were_changed_behind_the_graph_is_refused(how):
    model = ReadsAChangedInput(how)
    with pytest.raises(UnsupportedOperatorError, match="changed in place since") as error:
        autodiff.onnx.export(model, autodiff.randn(3, 2, 3), io.BytesIO())
    assert "mul (in the model's own forward) reads the input 'x'" in str(error.value)


# -- operations outside the layers ----------------------------------------------------------


class Primitives(nn.Module):
    """Tensor operations written in forward, outside any nn layer."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(autodiff.randn(4))
        self.register_buffer("shift", autodiff.randn(1, 4))

    def forward(self, x):  # x: (N, 3, 4)
        y = (x * self.scale + self.shift) / 2.0 - 1  # broadcasting arithmetic, numbers
        y = y.permute(0, 2, 1)  # (N, 4, 3)
        z = autodiff.cat([y, y.exp() ** 2], dim=2)  # (N, 4, 6)
        z = z[:, 1:, ::2] + z[:, :3, -1:]  # basic indexing: slices, negative steps and stops
        s = z.sum(dim=1) + z.mean(dim=(1, 2), keepdim=True)[:, 0] + z.amax(dim=1)
        s = s.clamp(min=-3.0, max=50.0) + autodiff.where(
            autodiff.tensor([True, False, True]), s, -s
        )
        v = s.view(s.shape[0], 3, 1).expand(-1, 3, 2).reshape(-1, 6)  # batch-sized shapes
        padded = F.pad(v, (1, 2), value=0.5)
        rounded = (padded * 3).round() + padded.floor() - padded.ceil() + padded.sign()
        return autodiff.maximum(rounded.sigmoid(), padded.tanh().abs()) + x[:, 0, None, 1]


@pytest.mark.parametrize("opset", [13, 18])  # Reduce* axes: an attribute before 18
def test_tensor_operations_outside_layers(tmp_path, opset):
    autodiff.manual_seed(3)
    model = Primitives()
    path = tmp_path / "p.onnx"
    session = export_and_load(model, autodiff.randn(5, 3, 4), path, opset_version=opset)
    assert_runs_like(model, session, (3, 4), batches=(1, 2, 7))


def test_indexing_with_an_index_array_exports_as_gather(tmp_path):
    """An index array of several elements (x[:, [2, 0, 2]], x[..., [[3, 0], [1, 1]]]) is one
    Gather with the array as its constant indices (once a crash: ``Ellipsis in items``
    compared the array elementwise)."""

    class Pick(nn.Module):
        def forward(self, x):  # x: (N, 3, 4)
            rows = x[:, autodiff.tensor([2, 0, 2])]  # (N, 3, 4)
            pairs = x[..., autodiff.tensor([[3, 0], [1, 1]])]  # (N, 3, 2, 2)
            return rows + pairs.sum(-1).repeat(1, 1, 2)

    path = tmp_path / "pick.onnx"
    session = export_and_load(Pick(), autodiff.randn(2, 3, 4), path)
    assert op_types(path).count("Gather") == 2
    assert_runs_like(Pick(), session, (3, 4), batches=(1, 5))


def test_several_inputs_and_outputs_with_names_and_dynamic_axes(tmp_path):
    class TwoWay(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, a, b):
            return self.fc(a), F.softmax(a.sum(1, keepdim=True) * b, dim=1)

    model = TwoWay()
    path = tmp_path / "two.onnx"
    axes = {"a": {0: "n"}, "b": {0: "n"}, "probs": [0]}
    session = export_and_load(
        model,
        (autodiff.randn(4, 3), autodiff.randn(4, 5)),
        path,
        input_names=["a", "b"],
        output_names=["scores", "probs"],
        dynamic_axes=axes,
    )
    assert [o.name for o in session.get_outputs()] == ["scores", "probs"]
    assert session.get_outputs()[0].shape == ["n", 2]
    assert session.get_outputs()[1].shape == ["probs_dynamic_axes_1", 5]
    a, b = np.ones((6, 3), np.float32), np.linspace(0, 1, 30, dtype=np.float32).reshape(6, 5)
    scores, probs = session.run(None, {"a": a, "b": b})
    with autodiff.no_grad():
        want = model(autodiff.tensor(a), autodiff.tensor(b))
    np.testing.assert_allclose(scores, want[0].numpy(), **TOLERANCE)
    np.testing.assert_allclose(probs, want[1].numpy(), **TOLERANCE)


def test_static_shapes_and_file_objects(tmp_path):
    model = nn.Linear(3, 2)
    buffer = io.BytesIO()
    autodiff.onnx.export(model, autodiff.randn(4, 3), buffer, dynamic_axes={})
    proto = onnx.load_from_string(buffer.getvalue())
    dims = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [4, 3]
    onnx.checker.check_model(proto, full_check=True)


def test_a_mean_over_the_batch_exports_only_with_fixed_sizes(tmp_path):
    class Centered(nn.Module):
        def forward(self, x):
            return x - x.sum(0) / x.shape[0]  # the batch size, as a Python number

    with pytest.raises(UnsupportedOperatorError, match=r"div .*batch size.*dynamic_axes=\{\}"):
        autodiff.onnx.export(Centered(), autodiff.randn(4, 3), str(tmp_path / "c.onnx"))
    session = export_and_load(
        Centered(), autodiff.randn(4, 3), tmp_path / "c.onnx", dynamic_axes={}
    )
    assert_runs_like(Centered(), session, (3,), batches=(4,))


def test_a_0d_input_stays_0d_in_the_second_run(tmp_path):
    class Twice(nn.Module):
        def forward(self, x):
            return x.sum() * 2  # ReduceSum of a 1-d input, but an Identity of a 0-d one

    session = export_and_load(Twice(), autodiff.tensor(1.5), tmp_path / "t.onnx")
    assert session.get_inputs()[0].shape == []
    np.testing.assert_array_equal(session.run(None, {"x": np.array(-2.25, np.float32)})[0], -4.5)


# -- cumulative sums ---------------------------------------------------------------------------


class RunningTotals(nn.Module):
    """cumsum after a layer, along a feature dim, a negative dim and the (dynamic) batch dim."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):  # x: (N, 3, 4)
        y = self.fc(x)
        return autodiff.cat([y.cumsum(1), autodiff.cumsum(y, -1), y.cumsum(dim=0)], dim=2)


def float32_rounding(x, dim):
    """How far ONNX Runtime's float32 cumsum may be from the engine's, at each position.

    ONNX Runtime adds in float32 where the engine adds in float64 and rounds each output;
    after n terms recursive summation errs by at most (n - 1) u (|x_0| + ... + |x_n-1|),
    u = eps / 2 (Higham), and the engine's rounding by u |y_n|: n * eps * the sum of
    |x_i| bounds both."""
    x = np.abs(np.asarray(x, np.float64))
    shape = [1] * x.ndim
    shape[dim] = -1
    n = np.arange(1, x.shape[dim] + 1).reshape(shape)
    return n * np.finfo(np.float32).eps * x.cumsum(dim)


def assert_within(got, want, bound):
    error = np.abs(got.astype(np.float64) - want)
    assert np.all(error <= bound), (
        f"error {error.max()} beyond the bound by {(error - bound).max()}"
    )


@pytest.mark.parametrize("opset", [13, 20])
def test_cumsum_exports_as_one_cumsum_along_any_dim_and_batch_size(tmp_path, opset):
    autodiff.manual_seed(4)
    model = RunningTotals()
    path = tmp_path / "totals.onnx"
    session = export_and_load(model, autodiff.randn(5, 3, 4), path, opset_version=opset)
    proto = onnx.load(str(path))
    cumsums = [n for n in proto.graph.node if n.op_type == "CumSum"]
    assert len(cumsums) == 3
    assert all(not n.attribute for n in cumsums)  # exclusive=0, reverse=0: ONNX's defaults
    axes = {i.name: onnx.numpy_helper.to_array(i) for i in proto.graph.initializer}
    assert sorted(int(axes[n.input[1]]) for n in cumsums) == [0, 1, 2]
    assert {axes[n.input[1]].shape for n in cumsums} == {()}  # a 0-D axis, as the spec asks
    rng = np.random.default_rng(0)
    for batch in (1, 2, 64):  # dim 0 is the batch: its sums grow with it
        x = rng.standard_normal((batch, 3, 4)).astype(np.float32)
        got = session.run(None, {"x": x})[0]
        want = engine_output(model, x)
        with autodiff.no_grad():
            y = model.fc(autodiff.tensor(x)).numpy()  # what is summed
        bounds = [float32_rounding(y, 1), float32_rounding(y, -1), float32_rounding(y, 0)]
        assert_within(got, want, np.concatenate(bounds, axis=2))


class RunningSum(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return x.cumsum(self.dim)


def test_a_long_float32_cumsum_differs_from_the_engine_only_by_float32_rounding(tmp_path):
    x = autodiff.randn(2, 1000)  # a sum that cancels: its last bits depend on the adding
    session = export_and_load(RunningSum(-1), x, tmp_path / "long.onnx")
    data = np.random.default_rng(1).standard_normal((3, 1000)).astype(np.float32)
    got = session.run(None, {"x": data})[0]
    want = RunningSum(-1)(autodiff.tensor(data)).numpy()
    np.testing.assert_array_equal(want, np.cumsum(data, -1, dtype=np.float64).astype(np.float32))
    assert_within(got, want, float32_rounding(data, -1))


@pytest.mark.parametrize("opset", [13, 20])
@pytest.mark.parametrize("dtype", [np.float16, np.float64])
def test_cumsum_of_float16_and_float64_gives_the_engines_values(tmp_path, dtype, opset):
    """float64 is added in float64; float16 in float32, rounded at each output, as the engine
    (and PyTorch) adds it, also at opset 13, whose CumSum has no float16."""
    path = tmp_path / "cumsum.onnx"
    example = autodiff.tensor(np.ones((2, 50), dtype))
    session = export_and_load(RunningSum(1), example, path, opset_version=opset)
    wrapped = ["Cast", "CumSum", "Cast"] if dtype == np.float16 else ["CumSum"]
    assert op_types(path) == wrapped
    data = np.random.default_rng(2).standard_normal((3, 50)).astype(dtype)
    got = session.run(None, {"x": data})[0]
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, RunningSum(1)(autodiff.tensor(data)).numpy())


def test_cumsum_with_a_dtype_and_of_a_0d_input(tmp_path):
    class InDouble(nn.Module):
        def forward(self, x):
            return x.cumsum(0, dtype=autodiff.float64)  # a Cast, then the sum in float64

    path = tmp_path / "double.onnx"
    session = export_and_load(InDouble(), autodiff.randn(3, 2), path)
    assert op_types(path) == ["Cast", "CumSum"]
    x = np.random.default_rng(3).standard_normal((6, 2)).astype(np.float32)
    np.testing.assert_array_equal(session.run(None, {"x": x})[0], engine_output(InDouble(), x))
    session = export_and_load(RunningSum(-1), autodiff.tensor(2.5), tmp_path / "scalar.onnx")
    np.testing.assert_array_equal(session.run(None, {"x": np.array(-1.5, np.float32)})[0], -1.5)


class Weighted(nn.Module):
    def forward(self, x, counts):
        return x * counts.cumsum(1)


class Scaled(nn.Module):
    def forward(self, x, totals):
        return x * totals


def test_integer_cumsums_are_constants_or_refused(tmp_path):
    """The engine records no operation on integers (they take no gradient), so export sees
    an integer cumsum only as its value: kept as a constant when it comes from constants,
    refused when it comes from an integer input (a second run gives another constant),
    saying so; the sums computed before the model and passed in as an input export."""

    class Positions(nn.Module):
        def forward(self, x):  # x: (N, 3)
            return x * autodiff.ones(3, dtype=autodiff.int64).cumsum(0)  # 1, 2, 3

    buffer = io.BytesIO()
    autodiff.onnx.export(Positions(), autodiff.randn(2, 3), buffer)
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    x = np.ones((4, 3), np.float32)
    np.testing.assert_array_equal(session.run(None, {"x": x})[0], np.tile([1.0, 2.0, 3.0], (4, 1)))
    counts = autodiff.tensor([[1, 2, 3], [4, 5, 6]])
    with pytest.raises(
        UnsupportedOperatorError,
        match=r"^export: mul \(in the model's own forward\) reads an int64 tensor computed from "
        r"the input, and integer computations on the input cannot be exported yet: the engine "
        r"records no operation on integer or bool tensors \(integer arithmetic, cumsum of "
        r"integers, casts, comparisons, argmax: none takes a gradient\), so the file would "
        r"hold the first run's values as a constant, and a second run \(inputs \(2, 3\), "
        r"\(2, 3\) -> \(3, 3\), \(3, 3\)\) gave other values\. Compute such values before "
        r"the model and pass them in as inputs of their own",
    ):
        autodiff.onnx.export(Weighted(), (autodiff.randn(2, 3), counts), io.BytesIO())
    # as the message says: the sums as an input of their own
    path = tmp_path / "scaled.onnx"
    session = export_and_load(Scaled(), (autodiff.randn(2, 3), counts.cumsum(1)), path)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((5, 3)).astype(np.float32)
    c = rng.integers(-4, 5, (5, 3))
    got = session.run(None, {"x": x, "totals": np.cumsum(c, 1)})[0]
    want = Weighted()(autodiff.tensor(x), autodiff.tensor(c)).numpy()
    np.testing.assert_array_equal(got, want)


class Lambda(nn.Module):
    def __init__(self, f):
        super().__init__()
        self.f = f

    def forward(self, *args):
        return self.f(*args)


# made here without the random generator, which the other tests seed for themselves
X = autodiff.tensor([[-1.5, 0.5, 2.0], [0.25, -0.75, 1.0]])
COUNTS = autodiff.tensor([[1, 2, 3], [4, 5, 6]])

# case -> (a function that makes the model, its example inputs, the message)
INTEGER_COMPUTATIONS = {
    # an integer output: no recorded operation computed it
    "int_output": (
        lambda: Lambda(lambda counts: counts + 1),
        (COUNTS,),
        r"^export: the output 'output' was not computed by recorded operations: it is an "
        r"int64 tensor, and the engine records no operation on integer or bool tensors .*, so "
        r"integer computations on the input cannot be exported yet; export writes only",
    ),
    "bool_output": (
        lambda: Lambda(lambda counts: counts > 2),
        (COUNTS,),
        r"^export: the output 'output' .*: it is a bool tensor, .* cannot be exported yet;",
    ),
    # the integer input itself as indices (nn.Embedding indexes its weight with it)
    "embedding": (
        lambda: nn.Sequential(nn.Embedding(10, 4)),
        (COUNTS,),
        r"^export: getitem in module '0' \(Embedding\) reads int64 indices taken from the "
        r"input \(the integer input itself, or integers computed from an input, such as "
        r"argmax\), and integer computations on the input cannot be exported yet: .* Do this "
        r"lookup outside the exported model",
    ),
    "argmax_indices": (
        lambda: Lambda(lambda x: x.gather(1, x.argmax(1, keepdim=True))),
        (X,),
        r"^export: gather \(in the model's own forward\) reads int64 indices taken from the "
        r"input",
    ),
    "comparison": (
        lambda: Lambda(lambda x: autodiff.where(x > 0, x, 0.0)),
        (X,),
        r"^export: where \(in the model's own forward\) reads a bool tensor computed from the "
        r"input, and integer computations on the input cannot be exported yet",
    ),
    "arange_of_the_batch": (
        lambda: Lambda(lambda x: x * autodiff.arange(x.shape[0]).reshape(-1, 1)),
        (X,),
        r"^export: mul .* reads an int64 tensor computed from the input, .* if it depends only "
        r"on the input's sizes, export with fixed sizes: dynamic_axes=\{\}$",
    ),
    # a float tensor computed from an integer input: the general message, and why
    "float_of_an_integer_input": (
        lambda: Lambda(lambda x, counts: x * counts.float()),
        (X, COUNTS),
        r"^export: mul \(in the model's own forward\) depends on the input's values .*\. "
        r"Operations on the integer input 'input_1' \(\.float\(\), arithmetic, cumsum\) "
        r"are not recorded either: integer computations on the input cannot be exported yet$",
    ),
}


@pytest.mark.parametrize("case", list(INTEGER_COMPUTATIONS))
def test_integer_computations_on_the_input_are_refused_saying_so(case):
    """Operations on integer and bool tensors take no gradient, so the engine records none
    and export cannot write them: the refusal says so, instead of advising "tensor
    operations, not .data" to a model that used tensor operations."""
    model, args, message = INTEGER_COMPUTATIONS[case]
    with pytest.raises(UnsupportedOperatorError, match=message) as info:
        autodiff.onnx.export(model(), args, io.BytesIO())
    if case != "float_of_an_integer_input":
        assert "not .data" not in str(info.value)


def test_cumsum_of_complex_numbers_is_refused_naming_the_dtype():
    x = autodiff.tensor(np.array([[1 + 2j, 3j]]))
    with pytest.raises(
        UnsupportedOperatorError,
        match=r"cumsum \(in the model's own forward\): ONNX's CumSum .* not complex128",
    ):
        autodiff.onnx.export(RunningSum(1), x, io.BytesIO())


# -- refusals ----------------------------------------------------------------------------------


class Softsign(autodiff.Function):
    """y = x / (1 + |x|)        dL/dx = dL/dy / (1 + |x|)^2  (a student's own op: no ONNX form)"""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x / (1 + np.abs(x))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad / (1 + x.abs()) ** 2


def test_an_operation_without_mapping_names_the_op_and_module_and_writes_nothing(tmp_path):
    class Squashed(nn.Module):
        def forward(self, x):
            return Softsign.apply(x)

    model = nn.Sequential(nn.Conv2d(1, 2, 3), Squashed())
    path = tmp_path / "bad.onnx"
    with pytest.raises(
        UnsupportedOperatorError, match=r"softsign in module '1' \(Squashed\) has no ONNX mapping"
    ):
        autodiff.onnx.export(model, autodiff.randn(1, 1, 6, 6), str(path))
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind either


def test_cumprod_is_refused_saying_onnx_has_no_cumulative_product(tmp_path):
    class Growth(nn.Module):
        def forward(self, x):
            return (1 + x).cumprod(-1)  # compound growth: x holds rates

    model = nn.Sequential(nn.Linear(3, 3), Growth())
    path = tmp_path / "growth.onnx"
    with pytest.raises(
        UnsupportedOperatorError,
        match=r"^export: cumprod in module '1' \(Growth\): ONNX has a cumulative sum "
        r"\(CumSum\) but no cumulative product, and exp\(cumsum\(log x\)\) would be wrong "
        "where x is zero or negative",
    ):
        autodiff.onnx.export(model, autodiff.randn(2, 3), str(path))
    assert not path.exists()


def test_values_taken_out_of_the_graph_are_refused(tmp_path):
    class Leaky(nn.Module):
        def forward(self, x):
            return x - autodiff.tensor(
                x.detach().numpy().mean()
            )  # a constant computed from the input

    with pytest.raises(UnsupportedOperatorError, match=r"sub \(in the model's own forward\)"):
        autodiff.onnx.export(Leaky(), autodiff.randn(2, 3), str(tmp_path / "l.onnx"))


@pytest.mark.parametrize("method", ["softmax", "log_softmax"])
def test_softmax_as_a_tensor_method_exports_as_one_operator(tmp_path, method):
    class Probabilities(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(5, 4)

        def forward(self, x):
            return getattr(self.fc(x), method)(1)  # the same region as nn.functional's

    autodiff.manual_seed(3)
    model = Probabilities()
    path = tmp_path / "probabilities.onnx"
    session = export_and_load(model, autodiff.randn(2, 5), path)
    assert_runs_like(model, session, (5,))
    assert op_types(path).count("Softmax" if method == "softmax" else "LogSoftmax") == 1


def test_logsumexp_is_refused_with_a_hint():
    class LogPartition(nn.Module):
        def forward(self, x):
            return x.logsumexp(1)  # shifts by a detached max: a value taken out of the graph

    with pytest.raises(UnsupportedOperatorError, match=r"x - x\.log_softmax\(dim\)"):
        autodiff.onnx.export(LogPartition(), autodiff.randn(2, 5), io.BytesIO())


def test_control_flow_on_values_is_refused(tmp_path):
    class Branchy(nn.Module):
        def forward(self, x):
            return x.exp() if float(x.mean()) > 0.59 else x.tanh()

    x = autodiff.full(
        (2, 3), 0.6
    )  # the second run's values, 0.6 * 0.75 + 0.125, take the other branch
    with pytest.raises(UnsupportedOperatorError, match="ran other operations"):
        autodiff.onnx.export(Branchy(), x, str(tmp_path / "b.onnx"))


def test_an_output_computed_outside_the_graph_is_refused():
    class Classify(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 4)

        def forward(self, x):
            return self.fc(x).argmax(1)  # no gradient: not recorded

    with pytest.raises(UnsupportedOperatorError, match="output 'output' was not computed"):
        autodiff.onnx.export(Classify(), autodiff.randn(2, 3), io.BytesIO())


def test_max_pool_with_indices_and_training_dropout_are_refused(tmp_path):
    class Indices(nn.Module):
        def forward(self, x):
            return F.max_pool2d(x, 2, return_indices=True)[0]

    class Noisy(nn.Module):
        def forward(self, x):
            return F.dropout(x, 0.5, training=True)

    with pytest.raises(UnsupportedOperatorError, match="return_indices"):
        autodiff.onnx.export(Indices(), autodiff.randn(1, 1, 4, 4), io.BytesIO())
    with pytest.raises(UnsupportedOperatorError, match="dropout in training mode"):
        autodiff.onnx.export(Noisy(), autodiff.randn(2, 3), io.BytesIO())


def test_bad_options():
    model = nn.Linear(3, 2)
    x = autodiff.randn(1, 3)
    with pytest.raises(ValueError, match="opset_version"):
        autodiff.onnx.export(model, x, io.BytesIO(), opset_version=9)
    with pytest.raises(ValueError, match="2 input_names for 1 tensor inputs"):
        autodiff.onnx.export(model, x, io.BytesIO(), input_names=["a", "b"])
    with pytest.raises(ValueError, match="neither inputs"):
        autodiff.onnx.export(model, x, io.BytesIO(), dynamic_axes={"typo": {0: "n"}})


def test_without_onnx_the_error_says_how_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'autodiff\[onnx\]'"):
        autodiff.onnx.export(nn.Linear(2, 2), autodiff.randn(1, 2), io.BytesIO())


def test_cli_export_errors_are_one_line(tmp_path, monkeypatch, capsys):
    from autodiff_cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["export", "--model-path", "missing.pth"]) == 2
    assert capsys.readouterr().err.strip() == (
        "autodiff export: error: no saved model at missing.pth (run `autodiff train` first)"
    )
    autodiff.save(nn.models.ConvNet(8).state_dict(), "cnn.pth")
    assert main(["export", "--model-path", "cnn.pth", "--opset", "7"]) == 2
    assert "opset_version must be an int from 13" in capsys.readouterr().err
    assert main(["export", "--model-path", "cnn.pth", "--out", "out/cnn.onnx"]) == 0
    assert capsys.readouterr().out.startswith("Wrote out/cnn.onnx: the cnn for 8x8 images")
    session = ort.InferenceSession("out/cnn.onnx", providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    assert session.get_outputs()[0].shape == ["batch", 10]
    (tmp_path / "taken").write_text("a file, not a folder")
    assert main(["export", "--model-path", "cnn.pth", "--out", "taken/cnn.onnx"]) == 1
    assert capsys.readouterr().err.startswith("autodiff export: error: cannot write taken/cnn.onnx")


def test_pytorch_keywords(tmp_path, capsys):
    class Scaled(nn.Module):
        def forward(self, x, scale=1.0):
            return x * scale

    session = export_and_load(
        Scaled(),
        (autodiff.randn(2, 3),),
        tmp_path / "s.onnx",
        kwargs={"scale": 3.0},
        dynamo=False,
        do_constant_folding=True,
        verbose=True,
    )
    assert "Mul" in capsys.readouterr().out  # verbose prints the graph
    x = np.ones((4, 3), np.float32)
    np.testing.assert_allclose(session.run(None, {"x": x})[0], 3 * x)
    with pytest.raises(ValueError, match="pass tensors in args"):
        autodiff.onnx.export(
            Scaled(), autodiff.randn(2, 3), io.BytesIO(), kwargs={"scale": autodiff.tensor(x)}
        )
    with pytest.raises(NotImplementedError, match="export_params=False"):
        autodiff.onnx.export(Scaled(), autodiff.randn(2, 3), io.BytesIO(), export_params=False)
    with pytest.raises(TypeError):  # as in PyTorch 2.13, options are keyword-only
        autodiff.onnx.export(Scaled(), autodiff.randn(2, 3), io.BytesIO(), ["x"])
