"""Benchmark: memory of a ``SoftMembership`` kept sparse vs the dense (N, C) matrix it replaced.

Synthetic setting: ``--contributors`` contributors, each with one condition of its own and,
in groups of ``--holders``, one condition shared by the group (so every contributor holds two
units); ``--samples`` bank samples spread evenly over the units, each with Dirichlet
responsibilities over its unit's holders. Measured with ``tracemalloc`` in one process:

- sparse: peak while building ``SoftMembership`` from the (row, column, value) triplets and its
  ``cell_matrix()`` (what ``ProxyGame`` feeds the metric), and the bytes the membership keeps;
- dense: the (N, C) float64 responsibility matrix plus the (N, cells) cell matrix that the
  dense implementation held (allocated, not filled: the lower bound of what it used).

Prints both and their ratio. ``python benchmarks/membership_memory.py [--samples 100000]
[--contributors 1000] [--holders 2]``
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
from scipy import sparse

from surrogateshap import SoftMembership


def synthetic_membership_inputs(n: int, c: int, holders: int, seed: int = 0):
    """Counts (C, U), unit_index (N,) and sparse responsibilities of the synthetic setting."""
    rng = np.random.default_rng(seed)
    groups = c // holders
    u = c + groups  # own units, then shared units
    counts = np.zeros((c, u))
    counts[np.arange(c), np.arange(c)] = rng.integers(20, 200, size=c)
    for g in range(groups):
        counts[g * holders:(g + 1) * holders, c + g] = rng.integers(20, 200, size=holders)
    unit_index = np.sort(np.arange(n) % u)
    rows, cols, values = [], [], []
    for unit in range(u):
        samples = np.flatnonzero(unit_index == unit)
        who = np.flatnonzero(counts[:, unit])
        resp = rng.dirichlet(np.ones(who.size), size=samples.size)
        rows.append(np.repeat(samples, who.size))
        cols.append(np.tile(who, samples.size))
        values.append(resp.ravel())
    triplets = (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols)))
    return counts, unit_index, sparse.coo_array(triplets, shape=(n, c))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--contributors", type=int, default=1000)
    parser.add_argument("--holders", type=int, default=2, help="contributors sharing each shared condition")
    args = parser.parse_args()
    counts, unit_index, resp = synthetic_membership_inputs(args.samples, args.contributors, args.holders)
    ids = [f"c{i}" for i in range(counts.shape[0])]
    units = [f"u{k}" for k in range(counts.shape[1])]

    tracemalloc.start()
    start = time.perf_counter()
    membership = SoftMembership(ids, units, counts, unit_index, resp)
    cells = membership.cell_matrix()
    sparse_seconds = time.perf_counter() - start
    _, sparse_peak = tracemalloc.get_traced_memory()
    kept = sum(a.nbytes for a in (membership.responsibility.data, membership.responsibility.indices,
                                  membership.responsibility.indptr, cells.data, cells.indices, cells.indptr))
    del cells
    tracemalloc.reset_peak()
    dense_resp = np.empty((args.samples, counts.shape[0]))
    dense_cells = np.empty((args.samples, membership.n_cells))
    dense_bytes = dense_resp.nbytes + dense_cells.nbytes
    del dense_resp, dense_cells
    tracemalloc.stop()

    mb = 1 / 2**20
    print(f"{args.samples} samples, {counts.shape[0]} contributors, {counts.shape[1]} units, "
          f"{membership.n_cells} cells, {membership.responsibility.nnz} stored responsibilities")
    print(f"sparse: responsibility + cell matrix {kept * mb:.1f} MB, peak while building {sparse_peak * mb:.1f} MB "
          f"({sparse_seconds:.2f} s)")
    print(f"dense:  responsibility + cell matrix {dense_bytes * mb:.1f} MB")
    print(f"dense / sparse-peak ratio: {dense_bytes / sparse_peak:.1f}x")


if __name__ == "__main__":
    main()
