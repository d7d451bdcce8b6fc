# The same kernels as _kmeans_kernels.pyx, compiled for AVX2+FMA (see setup.py).
include "_kmeans_kernels.pyx"
