"""Per-example gradients of one parameter given by their nonzeros.

White-box canaries (:mod:`.canaries`) are extra examples of a step whose gradient has one
nonzero each. Handed to the clipping as :class:`SparseExamples`, their norms and clipped sums
cost a few operations on those nonzeros, not the examples times the parameter's size, and
nothing about them is worked out again at each step (a sparse COO tensor is re-indexed and
decoded every time it is built).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SparseExamples:
    """``count`` per-example gradients of a parameter of ``shape``: nonzero i is ``values[i]``
    in example ``rows[i]`` (in [0, count)) at flat position ``columns[i]`` of the parameter.

    ``rows`` and ``columns`` are (nnz,) int64 and ``values`` (nnz,) in the parameter's dtype,
    all on its device; a (row, column) pair appears at most once. ``rows`` None says that
    nonzero i is example i's only one (nnz = count), as for canaries that all sit in this
    parameter: their norms and factors then need no gathering.
    """

    count: int
    rows: torch.Tensor | None
    columns: torch.Tensor
    values: torch.Tensor
    shape: tuple[int, ...]

    def __len__(self) -> int:
        return self.count

    def squared_norms(self) -> torch.Tensor:
        """(count,) each example's squared L2 norm."""
        if self.rows is None:
            return self.values.square()
        return self.values.new_zeros(self.count).index_add_(0, self.rows, self.values.square())

    def add_clipped_sum_(self, target: torch.Tensor, factors: torch.Tensor) -> None:
        """Add Σ_examples factors[example] · gradient(example) to ``target`` (shaped like the
        parameter, contiguous) in place; ``factors`` is (count,)."""
        scaled = (factors if self.rows is None else factors[self.rows]) * self.values
        target.view(-1).index_add_(0, self.columns, scaled.to(target.dtype))

    def to_dense(self) -> torch.Tensor:
        """(count, *shape) the examples' gradients as one dense tensor."""
        dense = self.values.new_zeros((self.count, math.prod(self.shape)))
        rows = torch.arange(self.count, device=self.values.device) if self.rows is None \
            else self.rows
        dense[rows, self.columns] = self.values
        return dense.view(self.count, *self.shape)
