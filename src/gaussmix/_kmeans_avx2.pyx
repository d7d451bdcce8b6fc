# The same kernels as _kmeans.pyx, compiled for AVX2+FMA (see setup.py).
include "_kmeans.pyx"
