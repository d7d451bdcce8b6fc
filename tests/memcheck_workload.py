"""A small fit/predict workload for valgrind's memcheck (run by tests/test_memcheck.py).

Every kernel mode runs: full with d=2 and d=5, diag and spherical with d=5 (row
loops), d=10 (quadratic-feature and [z, z^2] GEMMs) and full with d=60
(trmm/syrk), tied, an mclust model, float32 and float64,
k-means++ seeding, Lloyd k-means, predict/predict_proba/score_samples, and the
missing-value pass (full and diag, float32 and float64, weighted, a pattern over
several chunks), and a small select_model grid (every mclust model through the
compiled cell EM and its starts, d = 3 row loops and d = 9 per-component BLAS, and
the compiled hierarchical agglomeration).
"""
import numpy as np

import gaussmix

rng = np.random.default_rng(0)
for d, covariance_types in ((2, ("full",)), (5, ("full", "tied", "diag", "spherical", "VEV")),
                            (10, ("full", "tied", "diag", "spherical")), (60, ("full",))):
    X = np.vstack([rng.normal(size=(300, d)), rng.normal(size=(300, d)) + 4])
    for covariance_type in covariance_types:
        for dtype in (np.float64, np.float32):
            gm = gaussmix.GaussianMixture(2, covariance_type=covariance_type, max_iter=3,
                                          random_state=0).fit(X.astype(dtype))
            gm.predict(X), gm.predict_proba(X), gm.score_samples(X)
gaussmix.GaussianMixture(3, init_params="k-means++", max_iter=2, random_state=0).fit(X)
holes = np.vstack([rng.normal(size=(300, 5)), rng.normal(size=(300, 5)) + 4])
holes[rng.random(holes.shape) < 0.3] = np.nan
holes[:200, 0] = np.nan
for covariance_type in ("full", "diag"):
    for dtype in (np.float64, np.float32):
        gm = gaussmix.GaussianMixture(2, covariance_type=covariance_type, max_iter=3,
                                      random_state=0, nan_policy="marginalize")
        gm.fit(holes.astype(dtype), sample_weight=np.arange(600) % 3)
        gm.predict_proba(holes), gm.score_samples(holes)
for d in (3, 9):
    grid = np.vstack([rng.normal(size=(60, d)), rng.normal(size=(60, d)) + 4])
    gaussmix.select_model(grid, n_components=[1, 2, 3], n_kmeans_starts=1, n_jobs=1)
print("ok")
