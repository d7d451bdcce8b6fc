"""The merge loop of gaussmix._hierarchical.agglomerate in C, without the GIL.

Cluster C (n_C points, scatter W_C) costs n_C log(det(W_C / n_C) +
(trace(W_C) + alpha) / n_C), the determinant counting only when n_C exceeds
the dimension d; merging A and B costs cost(A u B) - cost(A) - cost(B). All
pairwise merge costs are kept in one n x n matrix with each row's minimum;
a merge recomputes the row and column of the merged cluster and looks again
only in the rows whose best partner took part in it. An entry whose cost
cannot be its row's minimum keeps a lower bound (the cost without the
determinant, which is >= 0) until a minimum or a tie asks for it exactly.

cost(A u B) rounds the same for (A, B) as for (B, A), so that clusters equal
by symmetry (duplicate rows) tie exactly; the two own costs are subtracted
in the order of the numpy implementation this replaces (the lower row first
at the start, the merged cluster first after a merge). Of tied merges the
order is mclust's (see ``agglomerate_loop``).
"""
from libc.float cimport DBL_EPSILON
from libc.math cimport INFINITY, fabs, isfinite, log
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

import numpy as np

# Relative slack of a lower bound of a merge cost: a few units of rounding of
# the log and of the product by the size.
cdef double BOUND_MARGIN = 16 * DBL_EPSILON


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
    """size log(det + (trace + alpha) / size), det being 0 up to size d; the
    determinant of a scatter is >= 0, below that it is rounding: 0."""
    return size * log((det if det > 0.0 else 0.0) + (trace + alpha) / size)


cdef double merged_cost(Py_ssize_t a, Py_ssize_t b, const double *sizes, const double *means,
                        const double *scatters, double alpha, Py_ssize_t d, double *work,
                        bint exact, bint *bound) noexcept nogil:
    """cost(A u B) from the sizes, means and scatters of clusters a and b, or
    (``exact`` false, ``bound`` set) a lower bound of it that skips the
    determinant; ``work`` is d * d + 2 d scratch."""
    cdef Py_ssize_t i, j, dd = d * d
    cdef double total = sizes[a] + sizes[b]
    cdef double weight = sizes[a] * sizes[b] / total, trace = 0.0, det = 0.0, cost
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
    bound[0] = total > d and not exact
    if bound[0]:
        # det >= 0 (clamped below), so the cost without it is a lower bound up
        # to the rounding of the log, which the margin covers
        cost = cluster_cost(total, trace, 0.0, alpha)
        return cost - BOUND_MARGIN * fabs(cost)
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


cdef struct State:
    Py_ssize_t n, d, m          # capacity, dimension, positions in use
    double alpha
    double *sizes               # [n] (0: merged away)
    double *means               # [n, d]
    double *scatters            # [n, d, d]
    double *own                 # [n] cost of each cluster
    double *costs               # [n, n] merge costs, or lower bounds where pending
    unsigned char *pending      # [n, n] 0: exact; 1: a bound, the row's own cost
                                # subtracted first; 2: the column's first
    Py_ssize_t *row_arg         # [n] first column of each row's minimum
    double *row_min             # [n] each row's (exact) minimum
    Py_ssize_t *slot            # [n] mclust's slot of each cluster (-1: merged away)
    Py_ssize_t *ids             # [n] founding row of each cluster
    Py_ssize_t *new_pos         # [n] scratch of compact
    double *work                # [d * d + 2 d] scratch of merged_cost
    bint failed                 # a merge cost was not finite


cdef void set_cost(State *st, Py_ssize_t a, Py_ssize_t b, bint exact) noexcept nogil:
    """costs[a, b] = costs[b, a] = cost(A u B) - cost(A) - cost(B), A's own cost
    subtracted first (the numpy version's order); a lower bound, pending,
    unless exact."""
    cdef bint bound
    cdef Py_ssize_t n = st.n
    cdef double value = merged_cost(a, b, st.sizes, st.means, st.scatters, st.alpha, st.d,
                                    st.work, exact, &bound) - st.own[a] - st.own[b]
    if not isfinite(value):
        st.failed = True
    st.costs[a * n + b] = st.costs[b * n + a] = value
    st.pending[a * n + b] = 1 if bound else 0
    st.pending[b * n + a] = 2 if bound else 0


cdef inline double exact_cost(State *st, Py_ssize_t r, Py_ssize_t c) noexcept nogil:
    """costs[r, c], made exact first if pending."""
    cdef unsigned char p = st.pending[r * st.n + c]
    if p == 1:
        set_cost(st, r, c, True)
    elif p == 2:
        set_cost(st, c, r, True)
    return st.costs[r * st.n + c]


cdef Py_ssize_t resolve_argmin(State *st, Py_ssize_t r) noexcept nogil:
    """The first column of row r's (exact) minimum: the first smallest entry,
    until it is not a pending bound (a bound above it rules its entry out)."""
    cdef Py_ssize_t c
    while True:
        c = row_argmin(st.costs + r * st.n, st.m)
        if st.pending[r * st.n + c] == 0 or st.failed:
            return c
        exact_cost(st, r, c)


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


cdef void compact(State *st) noexcept nogil:
    """Move the live clusters (size > 0) among positions 0..m-1 to the first
    positions, in order. Every entry moves to a lower or the same index, so a
    forward copy reads nothing it overwrote."""
    cdef Py_ssize_t p, q, c, u, i, live = 0, n = st.n, d = st.d, dd = st.d * st.d
    cdef Py_ssize_t *new_pos = st.new_pos
    for p in range(st.m):
        new_pos[p] = -1
        if st.sizes[p] > 0:
            new_pos[p] = live
            live += 1
    for p in range(st.m):
        q = new_pos[p]
        if q < 0:
            continue
        for c in range(st.m):
            u = new_pos[c]
            if u >= 0:
                st.costs[q * n + u] = st.costs[p * n + c]
                st.pending[q * n + u] = st.pending[p * n + c]
        st.sizes[q], st.own[q], st.row_min[q] = st.sizes[p], st.own[p], st.row_min[p]
        st.slot[q], st.ids[q], st.row_arg[q] = st.slot[p], st.ids[p], new_pos[st.row_arg[p]]
        for i in range(d):
            st.means[q * d + i] = st.means[p * d + i]
        for i in range(dd):
            st.scatters[q * dd + i] = st.scatters[p * dd + i]
    st.m = live


cdef int agglomerate_loop(State *st, Py_ssize_t *merges) noexcept nogil:
    """Fill ``merges`` (n - 1 rows of ``ids``); 0, or -1 at a non-finite merge
    cost. Clusters live at positions 0..m-1 (size 0: merged away, its costs
    infinite). Costs that cannot be a row's minimum stay lower bounds (the
    determinant, most of the work, skipped) until a row's minimum or a tie
    needs them exact."""
    cdef Py_ssize_t i, j, x, r, c, a, b, last, step, n = st.n, d = st.d, n_alive = st.n
    cdef Py_ssize_t key_high, key_low, high, low, dd = d * d
    cdef double best, weight, share, total
    cdef double *costs = st.costs
    cdef double *sizes = st.sizes
    cdef double *means = st.means
    cdef Py_ssize_t *slot = st.slot
    cdef double *Wa
    cdef double *Wb
    for i in range(n):
        st.own[i] = own_cost(sizes[i], st.scatters + i * dd, st.alpha, d, st.work)
    for i in range(n):
        costs[i * n + i] = INFINITY
        st.pending[i * n + i] = 0
        for j in range(i + 1, n):
            set_cost(st, i, j, False)
    for i in range(n):
        st.row_arg[i] = resolve_argmin(st, i)
        st.row_min[i] = costs[i * n + st.row_arg[i]]
    for step in range(n - 1):
        if st.failed:
            return -1
        best = INFINITY
        for i in range(st.m):
            if st.row_min[i] < best:
                best = st.row_min[i]
        # mclust's slots: clusters in order of first row; a merge keeps the
        # lower slot and moves the last cluster into the freed one. Of tied
        # merges it takes the pair with the highest higher slot, then the
        # highest lower slot.
        a = b = -1
        key_high = key_low = -1
        for r in range(st.m):
            if st.row_min[r] != best:
                continue
            for c in range(st.m):
                if costs[r * n + c] > best or exact_cost(st, r, c) != best:
                    continue
                high = slot[r] if slot[r] > slot[c] else slot[c]
                low = slot[r] + slot[c] - high
                if high > key_high or (high == key_high and low > key_low):
                    key_high, key_low = high, low
                    a, b = (r, c) if slot[r] < slot[c] else (c, r)
        last = a
        for i in range(st.m):
            if slot[i] > slot[last]:
                last = i
        slot[last] = slot[b]
        merges[2 * step] = st.ids[a]
        merges[2 * step + 1] = st.ids[b]
        # the merged cluster's statistics, rounded as numpy's
        # W_a += W_b + (n_a n_b / n) outer(delta, delta) and mean_a += delta n_b / n
        total = sizes[a] + sizes[b]
        weight = sizes[a] * sizes[b] / total
        share = sizes[b] / total
        Wa = st.scatters + a * dd
        Wb = st.scatters + b * dd
        for i in range(d):
            for j in range(d):
                Wa[i * d + j] = Wa[i * d + j] + (
                    Wb[i * d + j] + weight * ((means[b * d + i] - means[a * d + i])
                                              * (means[b * d + j] - means[a * d + j])))
        for i in range(d):
            means[a * d + i] = means[a * d + i] + (means[b * d + i] - means[a * d + i]) * share
        sizes[a] = total
        st.own[a] = own_cost(total, Wa, st.alpha, d, st.work)
        sizes[b] = 0.0
        slot[b] = -1
        st.row_min[b] = INFINITY
        for i in range(st.m):
            costs[b * n + i] = costs[i * n + b] = INFINITY
            st.pending[b * n + i] = st.pending[i * n + b] = 0
        n_alive -= 1
        if n_alive == 1:
            continue
        # the scans below cover m positions: at most twice the live clusters
        if 2 * n_alive < st.m:
            compact(st)
            a, b = st.new_pos[a], -1
        for x in range(st.m):
            if x != a and sizes[x] != 0.0:
                set_cost(st, a, x, False)
        st.row_arg[a] = resolve_argmin(st, a)
        st.row_min[a] = costs[a * n + st.row_arg[a]]
        # each row compares with the new cluster; below the old minimum it is
        # the new one (every other entry is at least that), else a row whose
        # best partner took part in the merge looks again
        for x in range(st.m):
            if x == a or sizes[x] == 0.0:
                continue
            if costs[x * n + a] < st.row_min[x] and exact_cost(st, x, a) < st.row_min[x]:
                st.row_arg[x] = a
                st.row_min[x] = costs[x * n + a]
            elif st.row_arg[x] == a or st.row_arg[x] == b:
                st.row_arg[x] = resolve_argmin(st, x)
                st.row_min[x] = costs[x * n + st.row_arg[x]]
    return -1 if st.failed else 0


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
    pending_array = np.empty((n, n), dtype=np.uint8)
    cdef unsigned char[:, ::1] pending = pending_array
    cdef State st
    cdef int status
    st.n, st.d, st.m, st.alpha, st.failed = n, d, n, alpha, False
    st.sizes, st.means, st.scatters = &sizes[0], &means[0, 0], &scatters[0, 0, 0]
    st.own, st.costs, st.pending = &own[0], &costs[0, 0], &pending[0, 0]
    st.row_arg, st.row_min, st.slot = &row_arg[0], &row_min[0], &slot[0]
    st.ids, st.new_pos = &ids[0], &new_pos[0]
    st.work = <double *> malloc((d * d + 2 * d) * sizeof(double))
    if st.work == NULL:
        raise MemoryError()
    with nogil:
        status = agglomerate_loop(&st, &merges[0, 0])
    free(st.work)
    if status != 0:
        raise ValueError("a merge cost is not finite (are the data finite?)")
    return merges_array
