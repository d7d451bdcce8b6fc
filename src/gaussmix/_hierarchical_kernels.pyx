"""The merge loop of gaussmix._hierarchical.agglomerate in C, without the GIL.

Cluster C (n_C points, scatter W_C) costs n_C log(det(W_C / n_C) +
(trace(W_C) + alpha) / n_C), the determinant counting only when n_C exceeds
the dimension d; merging A and B costs cost(A u B) - cost(A) - cost(B). All
pairwise merge costs are kept in one n x n matrix with each row's minimum;
a merge recomputes the row and column of the merged cluster and looks again
only in the rows whose best partner took part in it.

cost(A u B) rounds the same for (A, B) as for (B, A), so that clusters equal
by symmetry (duplicate rows) tie exactly; the two own costs are subtracted
in the order of the numpy implementation this replaces (the lower row first
at the start, the merged cluster first after a merge). Of tied merges the
order is mclust's (see ``agglomerate_loop``).
"""
from libc.math cimport INFINITY, fabs, isfinite, log
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

import numpy as np


cdef double scaled_det(double *a, double size, Py_ssize_t d) noexcept nogil:
    """det(a / size) of the row-major d x d matrix ``a`` (overwritten): LU of a
    with partial pivoting as LAPACK's getrf pivots (first largest |entry|),
    the pivots divided by size (d divisions, not d * d) multiplied in order;
    0 at an exactly zero pivot, as np.linalg.det."""
    cdef Py_ssize_t i, j, k, p
    cdef double det = 1.0, sign = 1.0, largest, pivot, inverse, factor, swap
    for k in range(d):
        p = k
        largest = fabs(a[k * d + k])
        for i in range(k + 1, d):
            if fabs(a[i * d + k]) > largest:
                largest = fabs(a[i * d + k])
                p = i
        pivot = a[p * d + k]
        if pivot == 0.0:
            return 0.0
        if p != k:
            sign = -sign
            for j in range(k, d):
                swap = a[k * d + j]
                a[k * d + j] = a[p * d + j]
                a[p * d + j] = swap
        det = det * (pivot / size)
        inverse = 1.0 / pivot
        for i in range(k + 1, d):
            factor = a[i * d + k] * inverse
            for j in range(k + 1, d):
                a[i * d + j] = a[i * d + j] - factor * a[k * d + j]
    return sign * det


cdef inline double cluster_cost(double size, double trace, double det,
                               double alpha) noexcept nogil:
    """size log(det + (trace + alpha) / size), det being 0 up to size d."""
    return size * log(det + (trace + alpha) / size)


cdef double merged_cost(Py_ssize_t a, Py_ssize_t b, const double *sizes, const double *means,
                        const double *scatters, double alpha, Py_ssize_t d,
                        double *work) noexcept nogil:
    """cost(A u B) from the sizes, means and scatters of clusters a and b;
    ``work`` is d * d + 2 d scratch."""
    cdef Py_ssize_t i, j, dd = d * d
    cdef double total = sizes[a] + sizes[b]
    cdef double weight = sizes[a] * sizes[b] / total, trace = 0.0, det = 0.0
    cdef const double *Wa = scatters + a * dd
    cdef const double *Wb = scatters + b * dd
    cdef double *delta = work + dd
    cdef double *weighted = delta + d
    # W_A + W_B + ((n_A n_B / n) delta) delta' with delta = mean_B - mean_A:
    # exchanging A and B flips the signs of both delta factors only
    for i in range(d):
        delta[i] = means[b * d + i] - means[a * d + i]
        weighted[i] = weight * delta[i]
        trace = trace + ((Wa[i * d + i] + Wb[i * d + i]) + weighted[i] * delta[i])
    if total > d:
        for i in range(d):
            for j in range(d):
                work[i * d + j] = (Wa[i * d + j] + Wb[i * d + j]) + weighted[i] * delta[j]
        det = scaled_det(work, total, d)
    return cluster_cost(total, trace, det, alpha)


cdef double own_cost(double size, const double *scatter, double alpha, Py_ssize_t d,
                     double *work) noexcept nogil:
    """cost(C) of one cluster; ``work`` is d * d scratch."""
    cdef Py_ssize_t i
    cdef double trace = 0.0, det = 0.0
    for i in range(d):
        trace = trace + scatter[i * d + i]
    if size > d:
        memcpy(work, scatter, d * d * sizeof(double))
        det = scaled_det(work, size, d)
    return cluster_cost(size, trace, det, alpha)


cdef inline Py_ssize_t row_argmin(const double *row, Py_ssize_t m) noexcept nogil:
    """The first column of the smallest of the m entries of ``row``."""
    cdef Py_ssize_t i
    cdef double m0 = INFINITY, m1 = INFINITY, m2 = INFINITY, m3 = INFINITY
    # four running minima, not one chain of dependent compares
    for i in range(0, m - 3, 4):
        m0 = row[i] if row[i] < m0 else m0
        m1 = row[i + 1] if row[i + 1] < m1 else m1
        m2 = row[i + 2] if row[i + 2] < m2 else m2
        m3 = row[i + 3] if row[i + 3] < m3 else m3
    for i in range(m - m % 4, m):
        m0 = row[i] if row[i] < m0 else m0
    m0 = m1 if m1 < m0 else m0
    m2 = m3 if m3 < m2 else m2
    m0 = m2 if m2 < m0 else m0
    for i in range(m):
        if row[i] == m0:
            return i
    return 0


cdef Py_ssize_t compact(Py_ssize_t m, Py_ssize_t n, Py_ssize_t d, double *sizes, double *means,
                        double *scatters, double *own, double *costs, Py_ssize_t *row_arg,
                        double *row_min, Py_ssize_t *slot, Py_ssize_t *ids,
                        Py_ssize_t *new_pos) noexcept nogil:
    """Move the live clusters (size > 0) among positions 0..m-1 to the first
    positions, in order, and return their count. Every entry moves to a lower
    or the same index, so a forward copy reads nothing it overwrote."""
    cdef Py_ssize_t p, q, c, u, i, live = 0, dd = d * d
    for p in range(m):
        new_pos[p] = -1
        if sizes[p] > 0:
            new_pos[p] = live
            live += 1
    for p in range(m):
        q = new_pos[p]
        if q < 0:
            continue
        for c in range(m):
            u = new_pos[c]
            if u >= 0:
                costs[q * n + u] = costs[p * n + c]
        sizes[q], own[q], row_min[q] = sizes[p], own[p], row_min[p]
        slot[q], ids[q], row_arg[q] = slot[p], ids[p], new_pos[row_arg[p]]
        for i in range(d):
            means[q * d + i] = means[p * d + i]
        for i in range(dd):
            scatters[q * dd + i] = scatters[p * dd + i]
    return live


cdef int agglomerate_loop(Py_ssize_t n, Py_ssize_t d, double alpha, double *sizes,
                          double *means, double *scatters, double *own, double *costs,
                          Py_ssize_t *row_arg, double *row_min, Py_ssize_t *slot,
                          Py_ssize_t *ids, Py_ssize_t *new_pos, Py_ssize_t *merges,
                          double *work) noexcept nogil:
    """Fill ``merges`` (n - 1 rows of ``ids``); 0, or -1 at a non-finite merge
    cost. Clusters live at positions 0..m-1 (size 0: merged away, its costs
    infinite), founded by row ids[position]; ``work`` is d * d + 2 d scratch."""
    cdef Py_ssize_t i, j, x, r, c, a, b, last, step, m = n, n_alive = n, dd = d * d
    cdef Py_ssize_t key_high, key_low, high, low
    cdef double best, value, weight, share, total
    cdef double *Wa
    cdef double *Wb
    for i in range(n):
        own[i] = own_cost(sizes[i], scatters + i * dd, alpha, d, work)
    for i in range(n):
        costs[i * n + i] = INFINITY
        for j in range(i + 1, n):
            value = merged_cost(i, j, sizes, means, scatters, alpha, d, work) - own[i] - own[j]
            if not isfinite(value):
                return -1
            costs[i * n + j] = value
            costs[j * n + i] = value
    for i in range(n):
        row_arg[i] = row_argmin(costs + i * n, n)
        row_min[i] = costs[i * n + row_arg[i]]
    for step in range(n - 1):
        best = INFINITY
        for i in range(m):
            if row_min[i] < best:
                best = row_min[i]
        # mclust's slots: clusters in order of first row; a merge keeps the
        # lower slot and moves the last cluster into the freed one. Of tied
        # merges it takes the pair with the highest higher slot, then the
        # highest lower slot.
        a = b = -1
        key_high = key_low = -1
        for r in range(m):
            if row_min[r] != best:
                continue
            for c in range(m):
                if costs[r * n + c] != best:
                    continue
                high = slot[r] if slot[r] > slot[c] else slot[c]
                low = slot[r] + slot[c] - high
                if high > key_high or (high == key_high and low > key_low):
                    key_high, key_low = high, low
                    a, b = (r, c) if slot[r] < slot[c] else (c, r)
        last = a
        for i in range(m):
            if slot[i] > slot[last]:
                last = i
        slot[last] = slot[b]
        merges[2 * step] = ids[a]
        merges[2 * step + 1] = ids[b]
        # the merged cluster's statistics, rounded as numpy's
        # W_a += W_b + (n_a n_b / n) outer(delta, delta) and mean_a += delta n_b / n
        total = sizes[a] + sizes[b]
        weight = sizes[a] * sizes[b] / total
        share = sizes[b] / total
        Wa = scatters + a * dd
        Wb = scatters + b * dd
        for i in range(d):
            for j in range(d):
                Wa[i * d + j] = Wa[i * d + j] + (
                    Wb[i * d + j] + weight * ((means[b * d + i] - means[a * d + i])
                                              * (means[b * d + j] - means[a * d + j])))
        for i in range(d):
            means[a * d + i] = means[a * d + i] + (means[b * d + i] - means[a * d + i]) * share
        sizes[a] = total
        own[a] = own_cost(total, Wa, alpha, d, work)
        sizes[b] = 0.0
        slot[b] = -1
        row_min[b] = INFINITY
        for i in range(m):
            costs[b * n + i] = INFINITY
            costs[i * n + b] = INFINITY
        n_alive -= 1
        if n_alive == 1:
            continue
        # the scans below cover m positions: at most twice the live clusters
        if 2 * n_alive < m:
            m = compact(m, n, d, sizes, means, scatters, own, costs, row_arg, row_min, slot,
                        ids, new_pos)
            a, b = new_pos[a], -1
        for x in range(m):
            if x == a or sizes[x] == 0.0:
                continue
            value = merged_cost(a, x, sizes, means, scatters, alpha, d, work) - own[a] - own[x]
            if not isfinite(value):
                return -1
            costs[a * n + x] = value
        for x in range(m):
            costs[x * n + a] = costs[a * n + x]
        row_arg[a] = row_argmin(costs + a * n, m)
        row_min[a] = costs[a * n + row_arg[a]]
        # rows whose best partner was merged away look again; the others
        # only compare with the new cluster
        for x in range(m):
            if x == a or sizes[x] == 0.0:
                continue
            if row_arg[x] == a or row_arg[x] == b:
                row_arg[x] = row_argmin(costs + x * n, m)
                row_min[x] = costs[x * n + row_arg[x]]
            if costs[a * n + x] < row_min[x]:
                row_arg[x] = a
                row_min[x] = costs[a * n + x]
    return 0


def merge_history(const double[:, ::1] X, double alpha):
    """``agglomerate``'s merges of the rows of X (n >= 2, d >= 1) with the
    trace term's alpha."""
    cdef Py_ssize_t n = X.shape[0], d = X.shape[1]
    if n < 2 or d < 1:
        raise ValueError(f"the agglomeration needs at least 2 rows and 1 column, got {n} x {d}")
    means_array = np.array(X, dtype=np.float64)
    sizes_array = np.ones(n)
    scatters_array = np.zeros((n, d, d))
    costs_array = np.empty((n, n))
    own_array = np.empty(n)
    row_min_array = np.empty(n)
    row_arg_array = np.empty(n, dtype=np.intp)
    slot_array = np.arange(n, dtype=np.intp)
    ids_array = np.arange(n, dtype=np.intp)
    new_pos_array = np.empty(n, dtype=np.intp)
    merges_array = np.empty((n - 1, 2), dtype=np.intp)
    cdef double[::1] sizes = sizes_array, own = own_array, row_min = row_min_array
    cdef double[:, ::1] means = means_array, costs = costs_array
    cdef double[:, :, ::1] scatters = scatters_array
    cdef Py_ssize_t[::1] row_arg = row_arg_array, slot = slot_array, ids = ids_array
    cdef Py_ssize_t[::1] new_pos = new_pos_array
    cdef Py_ssize_t[:, ::1] merges = merges_array
    cdef double *work = <double *> malloc((d * d + 2 * d) * sizeof(double))
    cdef int status
    if work == NULL:
        raise MemoryError()
    with nogil:
        status = agglomerate_loop(n, d, alpha, &sizes[0], &means[0, 0], &scatters[0, 0, 0],
                                  &own[0], &costs[0, 0], &row_arg[0], &row_min[0], &slot[0],
                                  &ids[0], &new_pos[0], &merges[0, 0], work)
    free(work)
    if status != 0:
        raise ValueError("a merge cost is not finite (are the data finite?)")
    return merges_array
