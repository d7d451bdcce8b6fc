# The same kernels as _suffstats.pyx, compiled for AVX2+FMA (see setup.py).
include "_suffstats.pyx"
