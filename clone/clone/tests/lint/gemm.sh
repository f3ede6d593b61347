#!/usr/bin/env bash
# lib/model/gemm.h is lib/'s one GEMM entry point: it picks the kernel the CPU runs, so a
# product that calls BLAS directly skips that choice (and KILN_CPU).  Only lib/model/gemm.c
# (its OpenBLAS fallback) calls cblas_*; generation decodes on the model's own kernels.
set -u
root=${KILN_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
calls=$(cd "$root" && grep -n 'cblas_[a-z]*(' lib/*/*.c lib/*/*.h |
    grep -v -e '^lib/model/gemm\.c:')
if [ -n "$calls" ]; then
    echo "BLAS called outside lib/model/gemm (use kgemm):"
    echo "$calls"
    exit 1
fi
echo "lib/: every product goes through lib/model/gemm"
