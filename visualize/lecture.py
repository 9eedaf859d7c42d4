"""The lecture's view of a recorded graph: one op per layer, none of the plumbing.

A layer records what is fast: ``conv2d`` one fused ``Conv2d`` (or, outside its
common case, an im2col matrix, a matrix product and reshapes).  The layers of
``nn.functional`` mark what they record as a region (``autodiff.region``); this
module turns each region into one op with the region's name, formula and local
rule, drawn between the region's real inputs (the input batch, the weights, the
previous layer's output) and its output.  What the region computed on the way
(its inner tensors, index tables and constants it made itself) is not drawn.

``expand`` opens regions: by name (``"conv2d"``: every convolution) or by the id
of the op drawn for it (``"op12"``); an opened region shows the regions inside it
(``cross_entropy`` holds ``log_softmax`` and ``nll_loss`` when it is composed) and
its other recorded ops.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from .trace import Edge, Graph, OpNode, input_names


@dataclass
class LectureView:
    """A lecture-level :class:`Graph` and how it maps to the recorded one.

    ``op_of``: recorded op id -> the id of the op drawn for it; ``tensor_of``:
    recorded tensor id -> the id of the tensor drawn for it (an inner tensor of a
    region maps to the region's output); ``members``: drawn op id -> the recorded
    op ids it stands for.
    """

    graph: Graph
    op_of: dict = field(default_factory=dict)
    tensor_of: dict = field(default_factory=dict)
    members: dict = field(default_factory=dict)


def _expand_set(expand) -> set:
    if expand is None:
        return set()
    if isinstance(expand, str):
        return {expand}
    try:
        return {str(item) for item in expand}
    except TypeError:
        raise TypeError(
            f"expand: expected a region name, an op id or a list of them, got {expand!r}"
        ) from None


def lecture_view(graph: Graph, expand=None) -> LectureView:
    """Collapse every region of ``graph`` (a recorded graph) into one op (module docstring)."""
    opened_names = _expand_set(expand)
    ops = {op.id: op for op in graph.ops}
    # The op drawn for a region takes the id of its last recorded op (its output's op).
    region_output = {}
    for op in graph.ops:
        for region in op.regions:
            current = region_output.get(id(region))
            if current is None or op.step < ops[current].step:
                region_output[id(region)] = op.id

    def opened(region) -> bool:
        return region.name in opened_names or region_output[id(region)] in opened_names

    known = {r.name for op in graph.ops for r in op.regions} | set(region_output.values())
    unknown = sorted(opened_names - known)
    if unknown:
        names = ", ".join(sorted({r.name for op in graph.ops for r in op.regions})) or "none"
        raise ValueError(
            f"expand: {', '.join(map(repr, unknown))} names no layer of this graph (its "
            f"layers: {names}; or the id of a drawn op, such as 'op3')"
        )

    unit_of, unit_region = {}, {}
    for op in graph.ops:
        region = next((r for r in op.regions if not opened(r)), None)
        unit = region_output[id(region)] if region is not None else op.id
        unit_of[op.id] = unit
        unit_region[unit] = region
    members = {}
    for op in graph.ops:
        members.setdefault(unit_of[op.id], []).append(op.id)

    # Tensors: an op's output is drawn when the op is its unit's output op.
    producer = {t.id: t.producer for t in graph.tensors}
    tensor_of = {}
    for tensor in graph.tensors:
        if tensor.producer is None:
            tensor_of[tensor.id] = tensor.id
        else:
            unit = unit_of[tensor.producer]
            tensor_of[tensor.id] = ops[unit].output

    edges, seen = [], set()

    def add(src, dst, index, per_slot=False):
        key = (src, dst, index) if per_slot else (src, dst)
        if key not in seen:
            seen.add(key)
            edges.append(Edge(src, dst, index))

    for edge in graph.edges:
        if edge.src in ops:  # op -> its output tensor
            if unit_of[edge.src] == edge.src:
                add(edge.src, edge.dst, None)
            continue
        unit = unit_of[edge.dst]
        source = edge.src
        made_by = producer.get(source)
        if made_by is not None and unit_of[made_by] == unit:
            continue  # computed inside the region
        region = unit_region[unit]
        if region is None:  # a recorded op, drawn as recorded (x * x reads x twice)
            add(tensor_of[source], unit, edge.index, per_slot=True)
            continue
        drawn = tensor_of[source]
        slots = [slot for slot, tid in graph.region_inputs.get(id(region), []) if tid == drawn]
        if source.startswith("c") and not slots:
            continue  # a constant the region made itself (an index table, a mask)
        add(drawn, unit, slots[0] if slots else None)
    for unit, region in unit_region.items():
        if region is None:
            continue
        for slot, tid in graph.region_inputs.get(id(region), []):
            if tid.startswith("c"):  # constant inputs: the input batch, the targets
                add(tid, unit, slot)

    used = {e.src for e in edges} | {e.dst for e in edges}
    tensors = [
        t
        for t in graph.tensors
        if tensor_of[t.id] == t.id and (t.kind != "constant" or t.id in used)
    ]

    # Steps: the lecture ops and the leaves in the order backward reaches them.
    first_step = {}
    for unit, ids in members.items():
        first_step[unit] = min(ops[i].step for i in ids)
    for tensor in tensors:
        if tensor.producer is None and tensor.step is not None:
            first_step[tensor.id] = tensor.step
    rank = {key: n for n, key in enumerate(sorted(first_step, key=first_step.get), start=1)}

    drawn_ops = []
    for unit, ids in members.items():
        op = ops[unit]
        region = unit_region[unit]
        if region is None:
            drawn_ops.append(dataclasses.replace(op, step=rank[unit], members=[op]))
            continue
        n_inputs = len(getattr(region, "inputs", ()) or ())
        drawn_ops.append(
            dataclasses.replace(
                op,
                name=region.name,
                backward_name=region.name,
                formula=region.formula or "",
                rule=region.rule or "",
                step=rank[unit],
                input_names=input_names(region.rule or "", n_inputs),
                members=[ops[i] for i in ids],
                region=region,
                regions=op.regions[: op.regions.index(region) + 1],
            )
        )
    # Layers computed on constants only (nothing recorded, so no backward step):
    # nn.Flatten between the input batch and the first linear.
    for number, (region, inputs, output, module) in enumerate(graph.constant_layers):
        op_id = f"opc{number}"  # an op on constants (no recorded node)
        for slot, source in inputs:
            add(source, op_id, slot)
        add(op_id, output, None)
        drawn_ops.append(
            OpNode(
                id=op_id,
                name=region.name,
                backward_name=region.name,
                formula=region.formula or "",
                rule=region.rule or "",
                step=0,
                module=module,
                output=output,
                region=region,
                regions=(region,),
            )
        )
        used.update(source for _, source in inputs)
    tensors = [
        t
        for t in graph.tensors
        if tensor_of[t.id] == t.id and (t.kind != "constant" or t.id in used)
    ]
    step_of_tensor = {}
    for op in drawn_ops:
        step_of_tensor[op.output] = op.step
    drawn_tensors = []
    for tensor in tensors:
        if tensor.producer is not None:
            tensor = dataclasses.replace(tensor, step=step_of_tensor.get(tensor.id, tensor.step))
        elif tensor.id in rank:
            tensor = dataclasses.replace(tensor, step=rank[tensor.id])
        drawn_tensors.append(tensor)
    lecture = dataclasses.replace(
        graph, tensors=drawn_tensors, ops=drawn_ops, edges=edges, detail="lecture"
    )
    op_of = {op_id: unit_of[op_id] for op_id in ops}
    return LectureView(lecture, op_of, tensor_of, members)
