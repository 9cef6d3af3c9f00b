"""Per-example outputs: the audited model's (``ModelOutputs``, with the examples' inputs as
``ExampleInputs``) and its reference models' (``ReferenceOutputs``). Both are validated once
at construction; numpy only."""

from memberscope.outputs._inputs import ExampleInputs, InputPart, as_input_array
from memberscope.outputs._model import (
    LOSS_TRACE_KEY,
    ModelOutputs,
    load_outputs_and_trace,
    load_outputs_npz,
)
from memberscope.outputs._reference import (
    REFERENCE_SCHEMA_VERSION,
    ReferenceOutputs,
    load_reference_npz,
    true_class_signals,
)

__all__ = [
    "LOSS_TRACE_KEY",
    "REFERENCE_SCHEMA_VERSION",
    "ExampleInputs",
    "InputPart",
    "ModelOutputs",
    "ReferenceOutputs",
    "as_input_array",
    "load_outputs_and_trace",
    "load_outputs_npz",
    "load_reference_npz",
    "true_class_signals",
]
