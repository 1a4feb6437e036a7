import numpy as np

from cascade.trees import PairSampler, TreeGrower, subtract_leaves


def brute_force_split(pixels, residuals, rows, u, v, threshold):
    """Best candidate for the samples ``rows`` by the squared-error gain, in plain NumPy."""
    best, best_gain = None, -np.inf
    for c in range(len(u)):
        left = pixels[rows, u[c]].astype(int) - pixels[rows, v[c]] > threshold[c]
        gain = 0.0
        for side in (left, ~left):
            if side.any():
                gain += (residuals[rows][side].astype(np.float64).sum(axis=0) ** 2).sum() / side.sum()
        if gain > best_gain:
            best, best_gain = c, gain
    return best


def random_samples(rng, n=5000, n_points=30, dim=6):
    pixels = rng.integers(0, 256, (n, n_points), dtype=np.uint8)
    # Residuals that depend on a pixel difference, so that some splits are clearly better.
    signal = (pixels[:, 3].astype(int) - pixels[:, 7] > 10).astype(np.float32)
    residuals = (rng.normal(0, 0.1, (n, dim)) + signal[:, None] * np.arange(dim)).astype(np.float32)
    return pixels, residuals


def test_grown_tree_matches_brute_force(rng):
    pixels, residuals = random_samples(rng)
    depth, n_candidates = 3, 8
    n_splits = 2 ** depth - 1
    u = rng.integers(0, 30, (n_splits, n_candidates))
    v = rng.integers(0, 30, (n_splits, n_candidates))
    threshold = rng.uniform(-64, 64, (n_splits, n_candidates)).astype(np.float32)
    u[0, 5], v[0, 5], threshold[0, 5] = 3, 7, 10.0           # the informative split is on offer
    grower = TreeGrower(pixels, residuals.copy())
    tree = grower.grow(u, v, threshold)
    assert (tree.split_u[0], tree.split_v[0], tree.split_threshold[0]) == (3, 7, 10.0)
    # Replay the tree in NumPy: each node's choice is the brute-force best for its samples.
    node = np.zeros(len(pixels), dtype=int)
    for level in range(depth):
        for j in range(2 ** level - 1, 2 ** (level + 1) - 1):
            rows = np.flatnonzero(node == j)
            best = brute_force_split(pixels, residuals, rows, u[j], v[j], threshold[j])
            assert (tree.split_u[j], tree.split_v[j]) == (u[j, best], v[j, best])
        left = (pixels[np.arange(len(node)), tree.split_u[node]].astype(int)
                - pixels[np.arange(len(node)), tree.split_v[node]] > tree.split_threshold[node])
        node = 2 * node + np.where(left, 1, 2)
    leaf = node - n_splits
    np.testing.assert_array_equal(tree.leaf_of, leaf)
    np.testing.assert_array_equal(tree.leaf_counts, np.bincount(leaf, minlength=n_splits + 1))
    expected_sums = np.stack([residuals[leaf == k].astype(np.float64).sum(axis=0) for k in range(n_splits + 1)])
    np.testing.assert_allclose(tree.leaf_sums, expected_sums, rtol=1e-5, atol=1e-4)


def test_threads_do_not_change_the_tree(rng):
    pixels, residuals = random_samples(rng, n=9000)
    u = rng.integers(0, 30, (15, 20))
    v = rng.integers(0, 30, (15, 20))
    threshold = rng.uniform(-64, 64, (15, 20)).astype(np.float32)
    trees = []
    for n_jobs in (1, 2, 3):
        grower = TreeGrower(pixels, residuals.copy(), n_jobs=n_jobs)
        trees.append(grower.grow(u, v, threshold))
        grower.close()
    for other in trees[1:]:
        np.testing.assert_array_equal(other.split_u, trees[0].split_u)
        np.testing.assert_array_equal(other.leaf_sums, trees[0].leaf_sums)


def test_subtract_leaves(rng):
    residuals = rng.normal(0, 1, (50, 4)).astype(np.float32)
    leaf_of = rng.integers(0, 8, 50).astype(np.int32)
    values = rng.normal(0, 1, (8, 4)).astype(np.float32)
    expected = residuals - values[leaf_of]
    subtract_leaves(residuals, leaf_of, values)
    np.testing.assert_array_equal(residuals, expected)


def test_pair_sampler_prefers_near_pairs(rng):
    positions = np.array([[0.0, 0.0], [0.01, 0.0], [1.0, 1.0], [1.0, 0.99]])
    u, v = PairSampler(positions, 0.1).draw(rng, 20000)
    assert (u != v).all()
    near = {(0, 1), (1, 0), (2, 3), (3, 2)}
    share = np.mean([(a, b) in near for a, b in zip(u, v)])
    assert share > 0.99


def test_samples_missing_every_coordinate_change_no_split(rng):
    """A residual held at 0 where its coordinate is missing counts for no sample: samples that
    know nothing leave the tree (splits, sums, per-coordinate counts) as it is without them."""
    pixels, residuals = random_samples(rng, n=3000)
    u = rng.integers(0, 30, (15, 20))
    v = rng.integers(0, 30, (15, 20))
    threshold = rng.uniform(-64, 64, (15, 20)).astype(np.float32)
    alone = TreeGrower(pixels, residuals.copy()).grow(u, v, threshold)
    # Unknowing samples whose pixels sit where they would pull a diluted mean's split.
    extra = rng.integers(0, 256, (3000, 30), dtype=np.uint8)
    extra[:, 3], extra[:, 7] = 255, 0
    present = np.concatenate([np.ones_like(residuals), np.zeros_like(residuals)])
    with_extra = TreeGrower(np.concatenate([pixels, extra]), np.concatenate([residuals, 0 * residuals]),
                            present=present).grow(u, v, threshold)
    np.testing.assert_array_equal(with_extra.split_u, alone.split_u)
    np.testing.assert_array_equal(with_extra.split_threshold, alone.split_threshold)
    np.testing.assert_allclose(with_extra.leaf_sums, alone.leaf_sums, rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(with_extra.leaf_counts, np.repeat(alone.leaf_counts[:, None], 6, axis=1))
