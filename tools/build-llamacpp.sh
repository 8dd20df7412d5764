#!/usr/bin/env bash
# Builds llama.cpp, the reference and the speed peer, from the PyPI package llama-cpp-python,
# in a private folder (.llamacpp/, ignored by git). Never a dependency of the engine itself.
#   .llamacpp/bin/      llama-bench, llama-perplexity, libllama.so and ggml libraries
#   .llamacpp/venv/     Python with the llama_cpp bindings, loading the library above
# Idempotent: does nothing when both are already there.
set -euo pipefail
VERSION=0.3.36
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/.llamacpp"
if [ -x "$dest/bin/llama-bench" ] && [ -x "$dest/venv/bin/python" ] && [ -f "$dest/bin/.no-amx" ] && \
   "$dest/venv/bin/python" -c "import llama_cpp" 2>/dev/null; then
  exit 0
fi
mkdir -p "$dest/src"
cd "$dest/src"
if [ ! -d "llama_cpp_python-$VERSION" ]; then
  python3 -m pip download -q --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d .
  tar xzf "llama_cpp_python-$VERSION.tar.gz"
fi
src="$dest/src/llama_cpp_python-$VERSION"
jobs=$(nproc)
# The instruction sets of this CPU, as GGML_NATIVE would pick them, but without AMX: AMX tile
# instructions fault (SIGILL) under the hypervisors these machines run on.
cpu_flags=$(grep -m1 '^flags' /proc/cpuinfo)
has() { [[ " $cpu_flags " == *" $1 "* ]] && echo ON || echo OFF; }
isa=(-DGGML_AVX="$(has avx)" -DGGML_AVX2="$(has avx2)" -DGGML_FMA="$(has fma)"
     -DGGML_F16C="$(has f16c)" -DGGML_BMI2="$(has bmi2)" -DGGML_AVX_VNNI="$(has avx_vnni)"
     -DGGML_AVX512="$(has avx512f)" -DGGML_AVX512_VBMI="$(has avx512vbmi)"
     -DGGML_AVX512_VNNI="$(has avx512_vnni)" -DGGML_AVX512_BF16="$(has avx512_bf16)"
     -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF)
cmake -S "$src/vendor/llama.cpp" -B "$dest/build" -DCMAKE_BUILD_TYPE=Release "${isa[@]}" \
  -DBUILD_SHARED_LIBS=ON -DGGML_NATIVE=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF \
  -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TOOLS=ON >/dev/null
cmake --build "$dest/build" -j"$jobs" --target llama-bench llama-perplexity llama >/dev/null
mkdir -p "$dest/bin"
cp -a "$dest/build/bin/." "$dest/bin/"
find "$dest/build" -name '*.so*' -exec cp -a {} "$dest/bin/" \;
touch "$dest/bin/.no-amx"
python3 -m venv "$dest/venv"
"$dest/venv/bin/pip" install -q numpy typing-extensions diskcache jinja2
# The bindings alone: the library they load is the one built above (LLAMA_CPP_LIB_PATH).
CMAKE_ARGS="-DLLAMA_BUILD=OFF -DLLAVA_BUILD=OFF" "$dest/venv/bin/pip" install -q --no-deps "$src"
echo "llama.cpp $VERSION built in $dest" >&2
