"""Path-dependent TreeSHAP for one leaf, in closed form (Fast TreeSHAP v2, Yang 2021).

A leaf with value v, unique path features U (d of them), covers z (products of the path's
data-count ratios) and o (1 where a row meets all of the path's conditions on the feature) adds
to feature i of U::

    v * (o_i - z_i) * sum_k k! (d-1-k)! / d! * [t^k] prod_{j in U, j != i} (z_j + o_j t)

which is Lundberg et al.'s TreeSHAP restricted to one leaf (its other features are null players).
:func:`leaf_tables` evaluates it for every 0/1 pattern of o, :func:`leaf_shapley` for given o.
"""

from __future__ import annotations

import math

import numpy as np


def shapley_weights(d: int) -> np.ndarray:
    """k! (d-1-k)! / d! for k = 0..d-1: the weight of a coalition of k of the other d-1."""
    return np.array(
        [math.factorial(k) * math.factorial(d - 1 - k) / math.factorial(d) for k in range(d)]
    )


def leaf_shapley(o: np.ndarray, z: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Contributions of leaves to their unique path features, for patterns of met conditions.

    ``o`` (leaves, d, patterns) holds 0/1, ``z`` (leaves, d) the covers, ``v`` (leaves,) the
    values; returns (leaves, d, patterns). The polynomial prod_j (z_j + o_j t) is built once and
    each feature's factor divided back out (exactly by z_i when o_i is 0, by synthetic division
    otherwise: z_i <= 1 keeps it stable).
    """
    leaves, d, patterns = o.shape
    poly = np.zeros((leaves, d + 1, patterns))
    poly[:, 0] = 1.0
    for j in range(d):
        zj = z[:, j, None, None]
        poly[:, 1 : j + 2] = poly[:, 1 : j + 2] * zj + poly[:, 0 : j + 1] * o[:, j, None]
        poly[:, 0] *= z[:, j, None]
    weights = shapley_weights(d)
    without_met = np.einsum("k,lkp->lp", weights, poly[:, :d])
    phi = np.empty_like(o)
    for i in range(d):
        zi = z[:, i, None]
        quotient = poly[:, d]
        met = weights[d - 1] * quotient
        for k in range(d - 1, 0, -1):
            quotient = poly[:, k] - zi * quotient
            met = met + weights[k - 1] * quotient
        summed = np.where(o[:, i] > 0, met, without_met / zi)
        phi[:, i] = v[:, None] * (o[:, i] - zi) * summed
    return phi


def subset_sums(z: np.ndarray) -> np.ndarray:
    """(leaves, 2**d): per mask m, sum_k w_k [t^k] prod_j (z_j + [j in m] t), w the weights.

    Built by doubling over the features (no division), so every mask costs O(d).
    """
    leaves, d = z.shape
    poly = np.ones((leaves, 1, 1))
    for j in range(d):
        scaled = np.concatenate([poly * z[:, j, None, None], np.zeros((*poly.shape[:2], 1))], 2)
        raised = scaled.copy()
        raised[:, :, 1:] += poly  # times (z_j + t)
        poly = np.concatenate([scaled, raised], axis=1)
    return poly[:, :, :d] @ shapley_weights(d)


def leaf_tables(
    covers: list[np.ndarray], values: list[float], max_features: int
) -> list[np.ndarray]:
    """Per leaf, (2**d, d): its contributions for every mask of met unique features (an empty
    table for a leaf with more than ``max_features`` features: it is computed per row).

    ``covers[l]`` holds leaf ``l``'s z per unique feature, ``values[l]`` its value. With o the
    mask, feature i gets v (o_i - z_i) S(o without i) / z_i: the sum S of the mask without i
    carries the factor z_i for i, which the division takes back out.
    """
    tables: list[np.ndarray] = [np.empty((1, 0))] * len(covers)
    by_depth: dict[int, list[int]] = {}
    for position, cover in enumerate(covers):
        by_depth.setdefault(len(cover), []).append(position)
    for d, positions in by_depth.items():
        if d > max_features:
            continue
        masks = np.arange(2**d)
        bits = np.arange(d)
        met = (masks[:, None] >> bits) & 1  # (masks, d)
        without = masks[:, None] & ~(1 << bits)  # (masks, d): the mask less feature i
        step = max(1, (1 << 21) // (2**d * (d + 1)))
        for start in range(0, len(positions), step):
            batch = positions[start : start + step]
            z = np.array([covers[p] for p in batch])
            v = np.array([values[p] for p in batch])
            sums = subset_sums(z)  # (batch, masks)
            phi = v[:, None, None] * (met - z[:, None, :]) * sums[:, without] / z[:, None, :]
            for p, table in zip(batch, phi, strict=True):
                tables[p] = table
    return tables
