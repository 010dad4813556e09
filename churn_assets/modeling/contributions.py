"""LightGBM's SHAP contributions (``pred_contrib=True``): the same numbers, far cheaper.

Batch scoring words every A and B user's reasons from path-dependent TreeSHAP contributions
(Lundberg et al. 2018, "Consistent individualized feature attribution for tree ensembles";
2020, "From local explanations to global understanding with explainable AI for trees"), which
LightGBM computes row by row in O(trees x leaves x depth^2): on a deep model that is hundreds of
predictions' worth per row. Fast TreeSHAP v2 (Yang 2021, "Fast TreeSHAP: Accelerating SHAP Value
Computation for Trees") observes that a leaf's contribution to a row depends on the row only
through which of the leaf's path conditions it meets, so it can be tabulated once per model and
looked up per row.

Here a leaf ``l`` with unique path features ``U`` and value ``v`` adds, for ``i`` in ``U``::

    v * (o_i - z_i) * sum_k k! (d-1-k)! / d! * [t^k] prod_{j in U, j != i} (z_j + o_j t)

with ``d = |U|``, ``z_j`` the product of the data-count ratios (child / parent) of the path's
splits on ``j`` and ``o_j`` 1 when the row meets every one of them (LightGBM's own routing:
NaN read as 0 unless the split's missing type is NaN, zero as missing, default directions,
categorical bitsets, inputs within 1e-35 of zero read as zero). Since o is 0/1, a leaf's
contributions take one of 2**d values, tabulated once (a subset DP: O(2**d d) per leaf).

Rather than one lookup per leaf, the leaves under a subtree share one table keyed by the
subtree's own split decisions plus one bit per feature split above it (that split's decision, or
the conjunction of all of them when the path splits on the feature more than once): a row costs
one comparison per split and one gather per (table, feature) instead of one per (leaf, feature).
Subtrees are cut as high as a key of ``MAX_KEY_BITS`` bits allows; a leaf with more distinct
features on its path is computed per row with the same formula (O(d^2) per row: slow, and only
met in trees of unbounded depth). Contributions equal ``pred_contrib``'s to rounding (about
1e-14 on 300 trees), the last column included (each tree's expected value, summed in LightGBM's
order); every row sums to the raw score.

Unsupported models (several trees per iteration, linear trees, averaged output, a node with no
data) and inputs (pandas categoricals, sparse matrices, a wrong number of columns) are computed
by ``pred_contrib`` itself: :attr:`ContributionTables.fallback_reason` says why for a model.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from churn_assets.modeling.shapley import leaf_shapley, leaf_tables

# LightGBM's kZeroThreshold (a float): dense inputs this close to 0 are read as 0.
ZERO_THRESHOLD = float(np.float32(1e-35))
# A table covers at most 2**MAX_KEY_BITS decision patterns (at most 16: keys are uint16);
# deeper leaves are computed per row.
MAX_KEY_BITS = 10
# Splits evaluated together (several small trees share one pass over the rows).
GROUP_SPLITS = 192
# Rows processed at once (per thread): keeps the working arrays to tens of MB.
ROW_CHUNK = 16384
_MISSING_TYPES = {"None": 0, "Zero": 1, "NaN": 2}


@dataclass
class _Split:
    feature: int
    threshold: float
    categories: np.ndarray | None  # categorical split: categories that go left
    default_left: bool
    missing_type: int
    count: int


@dataclass
class _Leaf:
    value: float
    path: list[tuple[int, bool]]  # (split, goes left) from the root
    features: list[int]  # unique features of the path, in order of first appearance
    slots: list[int]  # per path step, the position of its feature in ``features``
    cover: np.ndarray  # z per unique feature


# A key bit: 1 when every (split, goes left) literal holds. A lone (split, True) is the split's
# own decision, which a table may also read as "went right".
_Condition = tuple[tuple[int, bool], ...]


@dataclass
class _Block:
    """A subtree tabulated as one: keyed by the conditions of the path above it (one bit per
    feature: the split itself, or all the path's splits on that feature) and its own splits."""

    conditions: list[_Condition]
    leaves: list[int]
    above: int  # path steps above the subtree


@dataclass
class _Tree:
    splits: list[_Split]
    leaves: list[_Leaf]
    expected_value: float
    blocks: list[_Block] = field(default_factory=list)
    deep_leaves: list[int] = field(default_factory=list)


def _parse_tree(info: dict[str, Any], max_key_bits: int) -> _Tree:
    """A dumped tree as splits, leaves with their paths, its blocks and its expected value."""
    root = info["tree_structure"]
    if "leaf_value" in root:  # a single leaf: LightGBM's ExpectedValue is its value
        return _Tree([], [], float(root["leaf_value"]))
    splits: list[_Split] = []
    leaves: list[_Leaf] = []
    counted: list[tuple[int, int, float]] = []  # (leaf index, count, value)
    inside: dict[int, tuple[list[int], list[int]]] = {}  # split -> (splits, leaves) below it
    children: dict[int, list[tuple[bool, int]]] = {}  # split -> its two (is a split, index)

    def count(node: dict[str, Any]) -> int:
        return int(node["leaf_count"] if "leaf_value" in node else node["internal_count"])

    def walk(
        node: dict[str, Any], path: list[tuple[int, bool]], covers: list[float]
    ) -> tuple[bool, int]:
        if "leaf_value" in node:
            leaves.append(_path_leaf(float(node["leaf_value"]), path, covers, splits))
            counted.append((int(node["leaf_index"]), count(node), float(node["leaf_value"])))
            return False, len(leaves) - 1
        index = len(splits)
        splits.append(_dumped_split(node))
        parent = count(node)
        refs = [
            walk(child, [*path, (index, left)], [*covers, count(child) / parent])
            for child, left in ((node["left_child"], True), (node["right_child"], False))
        ]
        children[index] = refs
        below_splits, below_leaves = [index], []
        for is_split, ref in refs:
            if is_split:
                below_splits += inside[ref][0]
                below_leaves += inside[ref][1]
            else:
                below_leaves.append(ref)
        inside[index] = (below_splits, below_leaves)
        return True, index

    walk(root, [], [])
    total = float(count(root))
    expected = 0.0
    for _, leaf_count, value in sorted(counted):  # by leaf index, as LightGBM sums
        expected += (leaf_count / total) * value
    tree = _Tree(splits, leaves, expected)
    _cut_into_blocks(tree, inside, children, max_key_bits)
    return tree


def _cut_into_blocks(
    tree: _Tree,
    inside: dict[int, tuple[list[int], list[int]]],
    children: dict[int, list[tuple[bool, int]]],
    max_key_bits: int,
) -> None:
    """Blocks as high in the tree as their key fits in ``max_key_bits``; the rest: deep leaves."""

    def cut(is_split: bool, ref: int, above: list[tuple[int, bool]]) -> None:
        below_splits, below_leaves = inside[ref] if is_split else ([], [ref])
        steps: dict[int, list[tuple[int, bool]]] = {}
        for split, left in above:
            steps.setdefault(tree.splits[split].feature, []).append((split, left))
        conditions = [((s[0][0], True),) if len(s) == 1 else tuple(s) for s in steps.values()]
        conditions += [((split, True),) for split in below_splits]
        if len(conditions) <= max_key_bits:
            tree.blocks.append(_Block(conditions, below_leaves, len(above)))
        elif not is_split:
            tree.deep_leaves.append(ref)
        else:
            for child, left in zip(children[ref], (True, False), strict=True):
                cut(*child, [*above, (ref, left)])

    cut(True, 0, [])


def _dumped_split(node: dict[str, Any]) -> _Split:
    """One split of ``dump_model``'s tree structure."""
    categorical = node["decision_type"] == "=="
    return _Split(
        feature=int(node["split_feature"]),
        threshold=float("nan") if categorical else float(node["threshold"]),
        categories=(
            np.array([int(c) for c in str(node["threshold"]).split("||")]) if categorical else None
        ),
        default_left=bool(node["default_left"]),
        missing_type=_MISSING_TYPES[node["missing_type"]],
        count=int(node["internal_count"]),
    )


def _path_leaf(
    value: float, path: list[tuple[int, bool]], covers: list[float], splits: list[_Split]
) -> _Leaf:
    """A leaf with its path's unique features and their covers (products of count ratios)."""
    features: list[int] = []
    slots: list[int] = []
    cover: list[float] = []
    for (split, _), ratio in zip(path, covers, strict=True):
        feature = splits[split].feature
        if feature not in features:
            features.append(feature)
            cover.append(1.0)
        slot = features.index(feature)
        slots.append(slot)
        cover[slot] = ratio * cover[slot]  # LightGBM's order of the product
    return _Leaf(value, list(path), features, slots, np.array(cover))


def _block_table(
    tree: _Tree, block: _Block, flat: np.ndarray, offsets: list[int]
) -> tuple[list[int], np.ndarray]:
    """The block's features and its table (features, 2**bits): the sum of its leaves' lookups.

    ``flat`` holds the tree's leaf tables one after another, leaf ``l``'s from ``offsets[l]``.
    """
    key_splits, leaves = block.conditions, block.leaves
    bit_of = {c[0][0]: bit for bit, c in enumerate(key_splits) if len(c) == 1}
    feature_bit = {  # features split more than once above: one bit for all their splits
        tree.splits[c[0][0]].feature: bit for bit, c in enumerate(key_splits) if len(c) > 1
    }
    features = sorted({f for leaf in leaves for f in tree.leaves[leaf].features})
    column = {f: c for c, f in enumerate(features)}
    depth = max(len(tree.leaves[leaf].path) for leaf in leaves)
    steps = np.zeros((3, len(leaves), depth), dtype=np.int64)  # bit, wanted, slot
    met = np.zeros((len(leaves), depth), dtype=bool)  # padding: always met
    lookups: list[tuple[int, int, int, int]] = []  # (leaf row, base, width, slot)
    columns: list[int] = []
    for row, position in enumerate(leaves):
        leaf = tree.leaves[position]
        for step, ((split, left), slot) in enumerate(zip(leaf.path, leaf.slots, strict=True)):
            feature = tree.splits[split].feature
            if step < block.above and feature in feature_bit:
                steps[:, row, step] = feature_bit[feature], True, slot
            else:
                steps[:, row, step] = bit_of[split], left, slot
        met[row, len(leaf.path) :] = True
        width = len(leaf.features)
        lookups += [(row, offsets[position], width, slot) for slot in range(width)]
        columns += [column[f] for f in leaf.features]
    keys = np.arange(2 ** len(key_splits))
    goes_left = (keys >> steps[0][..., None]) & 1  # (leaves, depth, keys)
    unmet = ((goes_left != steps[1][..., None]) & ~met[..., None]).astype(np.int64)
    masks = np.bitwise_or.reduce(unmet << steps[2][..., None], axis=1)  # unmet features
    row, base, width, slot = np.array(lookups).T
    full = (1 << width) - 1
    values = flat[(base + slot)[:, None] + (full[:, None] ^ masks[row]) * width[:, None]]
    selector = np.zeros((len(features), len(columns)))
    selector[columns, np.arange(len(columns))] = 1.0
    return features, selector @ values


@dataclass
class _Group:
    """Consecutive trees evaluated together: their splits, and per block its key and table."""

    sources: np.ndarray  # per split, its row in the stacked (NaN as 0, NaN kept) ranks
    thresholds: np.ndarray
    zero_splits: np.ndarray  # missing type Zero: zero (or NaN) takes the default direction
    zero_features: np.ndarray
    zero_default_left: np.ndarray
    nan_left_splits: np.ndarray  # missing type NaN with default left: NaN goes left
    nan_left_features: np.ndarray
    categorical: list[tuple[int, int, np.ndarray]]  # (split, feature, categories going left)
    key_bits: np.ndarray  # (bits, blocks): each key bit's row among splits, then conditions
    conditions: list[_Condition]  # rows after the splits': conjunctions of decisions
    tables: list[tuple[np.ndarray, np.ndarray]]  # per block: its features, (features, keys)
    deep: list[tuple[_Leaf, list[int]]]  # leaves computed per row, with their group splits
    # per split, its threshold's rank among its feature's cuts (set once all groups are built)
    positions: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def _build_group(trees: list[_Tree], max_key_bits: int) -> _Group:
    """Stack the trees' splits, compile their blocks and tables."""
    splits: list[_Split] = []
    keys: list[list[_Condition]] = []
    tables: list[tuple[np.ndarray, np.ndarray]] = []
    deep: list[tuple[_Leaf, list[int]]] = []
    every_leaf = [leaf for tree in trees for leaf in tree.leaves]
    every_table = leaf_tables(
        [leaf.cover for leaf in every_leaf], [leaf.value for leaf in every_leaf], max_key_bits
    )
    for tree in trees:
        first = len(splits)
        splits += tree.splits
        tables_here, every_table = every_table[: len(tree.leaves)], every_table[len(tree.leaves) :]
        offsets = np.cumsum([0] + [t.size for t in tables_here]).tolist()
        flat = np.concatenate([t.ravel() for t in tables_here]) if tables_here else np.zeros(0)
        for block in tree.blocks:
            features, table = _block_table(tree, block, flat, offsets)
            keys.append([tuple((first + s, left) for s, left in c) for c in block.conditions])
            tables.append((np.array(features, dtype=np.int64), table))
        for position in tree.deep_leaves:
            leaf = tree.leaves[position]
            deep.append((leaf, [first + s for s, _ in leaf.path]))
    derived: dict[_Condition, int] = {}
    for conditions in keys:
        for c in conditions:
            if len(c) > 1 and c not in derived:
                derived[c] = len(splits) + len(derived)
    width = max((len(k) for k in keys), default=0)
    key_bits = np.full((width, len(keys)), len(splits) + len(derived), dtype=np.int64)  # 0 row
    for block, conditions in enumerate(keys):
        key_bits[: len(conditions), block] = [
            c[0][0] if len(c) == 1 else derived[c] for c in conditions
        ]
    numeric = [s.categories is None for s in splits]
    zero = [i for i, s in enumerate(splits) if numeric[i] and s.missing_type == 1]
    nan_left = [
        i for i, s in enumerate(splits) if numeric[i] and s.missing_type == 2 and s.default_left
    ]
    return _Group(
        sources=np.array([s.feature * 2 + (s.missing_type == 2) for s in splits], dtype=np.int64),
        thresholds=np.array([s.threshold for s in splits]),
        zero_splits=np.array(zero, dtype=np.int64),
        zero_features=np.array([splits[i].feature for i in zero], dtype=np.int64),
        zero_default_left=np.array([splits[i].default_left for i in zero], dtype=bool),
        nan_left_splits=np.array(nan_left, dtype=np.int64),
        nan_left_features=np.array([splits[i].feature for i in nan_left], dtype=np.int64),
        categorical=[
            (i, s.feature, s.categories) for i, s in enumerate(splits) if s.categories is not None
        ],
        key_bits=key_bits,
        conditions=list(derived),
        tables=tables,
        deep=deep,
    )


def _goes_left(
    group: _Group, ranks: np.ndarray, kept: np.ndarray, zero: np.ndarray, nan: np.ndarray
) -> np.ndarray:
    """Per split and row, whether LightGBM sends the row left (tree.h's Numerical/Categorical
    decisions): NaN is 0 unless the missing type is NaN, where it takes the default direction,
    as zero does under missing type Zero.

    ``value <= threshold`` is read as ``rank(value) <= rank(threshold)`` among the feature's
    sorted cuts (NaN ranks last): small integers instead of doubles to gather and compare.
    """
    splits = len(group.sources)
    left = np.zeros((splits + len(group.conditions) + 1, ranks.shape[1]), dtype=bool)  # 0 last
    np.less_equal(ranks[group.sources], group.positions[:, None], out=left[:splits])
    if len(group.zero_splits):
        left[group.zero_splits] = np.where(
            zero[group.zero_features], group.zero_default_left[:, None], left[group.zero_splits]
        )
    if len(group.nan_left_splits):
        left[group.nan_left_splits] |= nan[group.nan_left_features]
    for split, feature, categories in group.categorical:
        value = kept[feature]  # NaN and negatives go right
        with np.errstate(invalid="ignore"):
            usable = (value > -1.0) & (value < 2.0**31)
        whole = np.trunc(np.where(usable, value, -1.0))
        left[split] = usable & np.isin(whole, categories)
    for row, condition in enumerate(group.conditions, start=splits):
        met = left[row]
        met[:] = True
        for split, goes_left in condition:
            met &= left[split] if goes_left else ~left[split]
    return left


def _keys(group: _Group, left: np.ndarray) -> np.ndarray:
    """(blocks, rows): each block's table row, its splits' decisions read as a binary number."""
    keys = np.zeros((group.key_bits.shape[1], left.shape[1]), dtype=np.uint16)
    bits = np.empty_like(keys)
    for bit, splits in enumerate(group.key_bits):
        np.copyto(bits, left[splits])
        bits <<= bit
        keys |= bits
    return keys.astype(np.intp)


def _deep_leaf(leaf: _Leaf, splits: list[int], left: np.ndarray) -> np.ndarray:
    """A leaf too deep to tabulate: its contributions (d, rows) from the rows' decisions."""
    met = np.ones((len(leaf.features), left.shape[1]))
    for (_, goes_left), split, slot in zip(leaf.path, splits, leaf.slots, strict=True):
        met[slot] *= left[split] == goes_left
    return leaf_shapley(met[None], leaf.cover[None], np.array([leaf.value]))[0]


@dataclass
class ContributionTables:
    """A booster's contributions compiled once: apply to as many row chunks as needed."""

    booster: lgb.Booster
    num_feature: int
    groups: list[_Group]
    expected_value: float
    start_iteration: int
    num_iteration: int | None
    fallback_reason: str | None = None
    cuts: dict[int, np.ndarray] = field(default_factory=dict)  # feature -> sorted thresholds
    rank_dtype: type = np.int16

    def __call__(self, x: np.ndarray | pd.DataFrame, num_threads: int = 1) -> np.ndarray:
        """(rows, features + 1) contributions, as ``booster.predict(x, pred_contrib=True)``.

        ``num_threads`` row chunks are computed at once (numpy releases the GIL in the gathers
        and sums), as LightGBM's ``num_threads``; 0 or less: one.
        """
        matrix, reason = _as_dense(x, self.num_feature)
        if self.fallback_reason or reason is not None:
            return self.booster.predict(
                x,
                pred_contrib=True,
                start_iteration=self.start_iteration,
                num_iteration=self.num_iteration,
                num_threads=max(num_threads, 0),
            )
        out = np.empty((len(matrix), self.num_feature + 1))

        def fill(start: int) -> None:
            chunk = matrix[start : start + ROW_CHUNK]
            out[start : start + len(chunk)] = self._chunk(chunk).T

        starts = range(0, len(matrix), ROW_CHUNK)
        if num_threads <= 1 or len(starts) <= 1:
            for start in starts:
                fill(start)
        else:
            with ThreadPoolExecutor(max_workers=num_threads) as pool:
                list(pool.map(fill, starts))
        return out

    def _chunk(self, chunk: np.ndarray) -> np.ndarray:
        """(features + 1, rows) contributions of one chunk of rows."""
        kept = np.where(np.abs(chunk) <= ZERO_THRESHOLD, 0.0, chunk).T  # as LightGBM reads it
        nan = np.isnan(kept)
        as_zero = np.where(nan, 0.0, kept)
        zero = as_zero == 0.0
        ranks = np.zeros((2 * len(kept), kept.shape[1]), dtype=self.rank_dtype)
        for feature, cuts in self.cuts.items():  # NaN sorts last: beyond every threshold
            ranks[2 * feature] = np.searchsorted(cuts, as_zero[feature])
            ranks[2 * feature + 1] = np.searchsorted(cuts, kept[feature])
        phi = np.zeros((self.num_feature + 1, chunk.shape[0]))
        gathered = np.empty(chunk.shape[0])
        for group in self.groups:
            left = _goes_left(group, ranks, kept, zero, nan)
            keys = _keys(group, left)
            for (features, table), key in zip(group.tables, keys, strict=True):
                for feature, row in zip(features, table, strict=True):
                    np.take(row, key, out=gathered)
                    phi[feature] += gathered
            for leaf, splits in group.deep:
                phi[leaf.features] += _deep_leaf(leaf, splits, left)
        phi[self.num_feature] = self.expected_value
        return phi


def _as_dense(x: Any, num_feature: int) -> tuple[np.ndarray, str | None]:
    """The rows as float64, or why ``pred_contrib`` must read them itself."""
    if isinstance(x, pd.DataFrame):
        if not all(pd.api.types.is_numeric_dtype(t) for t in x.dtypes) or any(
            isinstance(t, pd.CategoricalDtype) for t in x.dtypes
        ):
            return np.empty((0, 0)), "non-numeric or categorical columns"
        matrix = x.to_numpy(dtype=np.float64, na_value=np.nan)
    elif isinstance(x, np.ndarray) and x.ndim == 2 and x.dtype.kind in "fiub":
        matrix = np.asarray(x, dtype=np.float64)
    else:
        return np.empty((0, 0)), f"input of type {type(x).__name__}"
    if matrix.shape[1] != num_feature:
        return matrix, "wrong number of features"  # pred_contrib raises LightGBM's error
    return matrix, None


def _unsupported(dump: dict[str, Any]) -> str | None:
    """Why these trees cannot be tabulated exactly, if they cannot."""
    if dump.get("num_tree_per_iteration", 1) != 1:
        return "several trees per iteration (multiclass)"
    if dump.get("average_output"):
        return "averaged output (random forest)"
    for info in dump["tree_info"]:
        if info.get("is_linear"):
            return "linear trees"
        root = info["tree_structure"]
        stack = [] if "leaf_value" in root else [root]  # a single leaf needs no cover
        while stack:
            node = stack.pop()
            if "leaf_coeff" in node:
                return "linear trees"
            count = node["leaf_count"] if "leaf_value" in node else node["internal_count"]
            if int(count) <= 0:
                return "a node without data (no cover to weigh it)"
            if "leaf_value" not in node:
                stack += [node["left_child"], node["right_child"]]
    return None


def compile_contributions(
    booster: lgb.Booster,
    start_iteration: int = 0,
    num_iteration: int | None = None,
    max_key_bits: int = MAX_KEY_BITS,
) -> ContributionTables:
    """Tabulate ``booster``'s trees (those ``predict`` would use with these arguments).

    ``max_key_bits`` bounds a table at 2**bits rows: wider tables mean fewer lookups per row
    but a longer build; leaves deeper than it are computed row by row.
    """
    if not 0 <= max_key_bits <= 16:
        raise ValueError(f"max_key_bits must be within 0..16 (keys are uint16): {max_key_bits}")
    if num_iteration is None:  # Booster.predict's default
        num_iteration = booster.best_iteration if start_iteration <= 0 else -1
    dump = booster.dump_model(num_iteration=-1, start_iteration=0)
    start = max(start_iteration, 0)
    end = len(dump["tree_info"]) if num_iteration <= 0 else start + num_iteration
    dump["tree_info"] = dump["tree_info"][start:end]
    tables = ContributionTables(
        booster, booster.num_feature(), [], 0.0, start_iteration, num_iteration
    )
    tables.fallback_reason = _unsupported(dump)
    if tables.fallback_reason:
        return tables
    trees = [_parse_tree(info, max_key_bits) for info in dump["tree_info"]]
    expected = 0.0
    for tree in trees:
        expected += tree.expected_value
    tables.expected_value = expected
    batch: list[_Tree] = []
    for tree in trees:
        batch.append(tree)
        if sum(len(t.splits) for t in batch) >= GROUP_SPLITS:
            tables.groups.append(_build_group(batch, max_key_bits))
            batch = []
    if batch:
        tables.groups.append(_build_group(batch, max_key_bits))
    _rank_thresholds(tables)
    return tables


def _rank_thresholds(tables: ContributionTables) -> None:
    """Each feature's sorted thresholds, and each numerical split's rank among them."""
    by_feature: dict[int, list[np.ndarray]] = {}
    for group in tables.groups:
        numeric = ~np.isnan(group.thresholds)
        for feature in np.unique(group.sources[numeric] // 2):
            mine = numeric & (group.sources // 2 == feature)
            by_feature.setdefault(int(feature), []).append(group.thresholds[mine])
    tables.cuts = {f: np.unique(np.concatenate(t)) for f, t in by_feature.items()}
    longest = max((len(c) for c in tables.cuts.values()), default=0)
    tables.rank_dtype = np.int16 if longest < np.iinfo(np.int16).max else np.int32
    for group in tables.groups:
        positions = np.full(len(group.sources), -1, dtype=tables.rank_dtype)  # categorical
        pairs = zip(group.sources, group.thresholds, strict=True)
        for split, (source, threshold) in enumerate(pairs):
            if not np.isnan(threshold):
                positions[split] = np.searchsorted(tables.cuts[int(source) // 2], threshold)
        group.positions = positions


def tree_contributions(
    booster: lgb.Booster,
    x: np.ndarray | pd.DataFrame,
    start_iteration: int = 0,
    num_iteration: int | None = None,
    num_threads: int = 1,
) -> np.ndarray:
    """``booster.predict(x, pred_contrib=True)``: same shape, columns and values (to 1e-9).

    Compiles the tables on every call: to explain many chunks, compile once with
    :func:`compile_contributions` and call the result per chunk.
    """
    return compile_contributions(booster, start_iteration, num_iteration)(x, num_threads)
