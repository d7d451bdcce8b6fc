# The same kernels as _estep.pyx, compiled for AVX2+FMA (see setup.py).
include "_estep.pyx"
