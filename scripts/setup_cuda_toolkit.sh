#!/usr/bin/env bash
# Sets up what `cargo build --features cuda` needs on a machine without a CUDA installation:
#
#   PREFIX/cuda           a toolkit root (nvcc, headers, libcudart) from the CUDA 13.0 PyPI
#                         wheels, with link stubs of the driver and library APIs in lib64/stubs
#   PREFIX/nogpu-runtime  the same stubs under their sonames, for starting a cuda build's
#                         binaries on a machine with no GPU driver (they then see no device)
#   PREFIX/env.sh         the build environment: `. PREFIX/env.sh` before cargo
#   PREFIX/gpu-env.sh     with --runtime: the real cuBLAS, cuRAND and NVRTC 13.0 (more wheels,
#                         about 1.2 GB) on LD_LIBRARY_PATH, for running on a GPU machine whose
#                         system has no CUDA 13 libraries (the driver's libcuda is always the
#                         system's)
#
# Usage: scripts/setup_cuda_toolkit.sh PREFIX [--runtime]   (after `cargo fetch`: the stubs take
# their symbol names from cudarc's sources in the cargo registry).
#
# CUDA 13.0 because the GPU machines this project is checked on run driver 580 (CUDA 13.0,
# whose driver JIT-compiles the PTX of nvcc 13.0), and cudarc 0.19 knows toolkits up to 13.4.
# Never put PREFIX/nogpu-runtime or the stubs on LD_LIBRARY_PATH on a GPU machine: the stub
# libcuda would hide the real driver. See docs/gpu.md.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ] || { [ $# -eq 2 ] && [ "$2" != --runtime ]; }; then
  echo "usage: $0 PREFIX [--runtime]" >&2
  exit 2
fi
prefix=$(realpath -m "$1")
mkdir -p "$prefix"
python=${PYTHON:-python3}

[ -x "$prefix/venv/bin/pip" ] || "$python" -m venv "$prefix/venv"
"$prefix/venv/bin/pip" install --quiet --disable-pip-version-check \
  "cuda-toolkit[nvcc,crt,nvvm,cudart,cccl]==13.0.2"
cu=$("$prefix/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/nvidia/cu13

root="$prefix/cuda"
stubs="$root/lib64/stubs"
runtime="$prefix/nogpu-runtime"
mkdir -p "$stubs" "$runtime"
for d in bin include nvvm; do ln -sfn "$cu/$d" "$root/$d"; done
# The real runtime library: candle-kernels' static library links it.
ln -sfn "$cu/lib/libcudart.so.13" "$root/lib64/libcudart.so"
ln -sfn "$cu/lib/libcudart.so.13" "$runtime/libcudart.so.13"

registry=${CARGO_HOME:-$HOME/.cargo}/registry/src
cudarc=$(ls -d "$registry"/*/cudarc-0.19.* 2>/dev/null | sort -V | tail -n 1)
[ -n "$cudarc" ] || { echo "cudarc 0.19 is not in $registry: run cargo fetch first" >&2; exit 1; }

# Function names declared in cudarc's bindings (and, for the driver, in cuda.h).
symbols() { grep -hoP '^\s*fn \K\w+(?=\()' "$@" | sort -u; }

# stub NAME SONAME RETURN: a library whose every function (names on stdin) returns RETURN.
stub() {
  awk -v r="$3" '{ print "int " $1 "(void) { return " r "; }" }' > "$prefix/stub_$1.c"
  gcc -shared -fPIC -O2 -Wl,-soname,"$2" -o "$stubs/lib$1.so" "$prefix/stub_$1.c"
  cp "$stubs/lib$1.so" "$runtime/$2"
}

# 34 is CUDA_ERROR_STUB_LIBRARY: a program started with the stub driver finds no device.
{
  symbols "$cudarc/src/driver/sys/mod.rs"
  gcc -E -P -I"$cu/include" "$cu/include/cuda.h" | tr -s ' \n' ' ' | grep -oP '\bcu[A-Z]\w*(?=\s*\()'
} | sort -u | stub cuda libcuda.so.1 34
symbols "$cudarc/src/cublas/sys/mod.rs" | stub cublas libcublas.so.13 1
symbols "$cudarc/src/cublaslt/sys/mod.rs" | stub cublasLt libcublasLt.so.13 1
symbols "$cudarc/src/curand/sys/mod.rs" | stub curand libcurand.so.10 1
symbols "$cudarc/src/nvrtc/sys/mod.rs" | stub nvrtc libnvrtc.so.13 1

cat > "$prefix/env.sh" <<EOF
# The build environment of a cuda build (made by scripts/setup_cuda_toolkit.sh).
export CUDA_HOME="$root"
export PATH="$root/bin:\$PATH"
# Hopper (H100/H200) unless set: candle-kernels compiles its static kernels for one architecture.
export CUDA_COMPUTE_CAP="\${CUDA_COMPUTE_CAP:-90}"
export CUDAFORGE_THREADS="\${CUDAFORGE_THREADS:-$(nproc)}"
EOF
if [ "${2:-}" = --runtime ]; then
  "$prefix/venv/bin/pip" install --quiet --disable-pip-version-check \
    "cuda-toolkit[cudart,cublas,curand,nvrtc]==13.0.2"
  cat > "$prefix/gpu-env.sh" <<EOF
# The CUDA 13.0 libraries a cuda build links, from the PyPI wheels (scripts/setup_cuda_toolkit.sh).
export LD_LIBRARY_PATH="$cu/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
EOF
fi
echo "CUDA 13.0 toolkit in $root; build with: . $prefix/env.sh && cargo build --features cuda"
