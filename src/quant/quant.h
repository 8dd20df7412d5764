// Block-quantized tensor formats: what a row of each type looks like, and the three things the
// engine does with rows: dequantize, dot with a quantized activation, and many dots at once
// (matmul). Every function has a scalar reference in namespace ref (quant/reference.h); the
// unqualified ones are the fast paths (Highway SIMD, dispatched at run time) and tests hold the
// fast ones to the reference.
#pragma once

#include <cstddef>
#include <cstdint>

#include "quant/ggml_type.h"

namespace kvc::quant {

struct TypeInfo {
  const char* name;     // as ggml prints it: "q4_K", "f16", ...
  int64_t block_size;   // elements per block (1 for f32/f16/bf16)
  size_t block_bytes;   // bytes per block
};

// The name of a raw GGUF type number for messages, also for types the engine cannot run.
const char* type_name(uint32_t raw_type);
// True for the types the engine can dequantize and multiply.
bool is_supported(GgmlType t);
// Layout of a supported type; throws kvc::Error for an unsupported one.
const TypeInfo& info(GgmlType t);
// Bytes of a row of n elements; throws kvc::Error if n is not a whole number of blocks.
size_t row_bytes(GgmlType t, int64_t n);

// The format activations are converted to before a dot with weights of type `weight`:
// Q8_0 for Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1, Q8_K for the K-quants, F32 for F32/F16/BF16.
GgmlType activation_type(GgmlType weight);

// Fast paths, dispatched to the best SIMD target of the running CPU.
void dequantize_row(GgmlType t, const void* src, float* dst, int64_t n);
// x (n floats) -> dst in activation_type(weight); dst holds row_bytes(activation_type(weight), n).
void quantize_activation(GgmlType weight, const float* x, void* dst, int64_t n);
// One weight row (n elements of type `weight`) times one activation (activation_type(weight)).
float dot(GgmlType weight, const void* w_row, const void* x_act, int64_t n);
// out[c * ldo + r] = dot(weight row r, activation column c) for r in [r0, r1), c in [0, n_cols).
// w points at row 0; rows are w_row_bytes apart; activation columns are x_col_bytes apart.
// Prefill uses many columns: the kernel reuses each unpacked weight block across them.
void matmul(GgmlType weight, const void* w, size_t w_row_bytes, int64_t r0, int64_t r1,
            const void* x_act, size_t x_col_bytes, int64_t n_cols, int64_t n, float* out,
            int64_t ldo);

// Name of the SIMD target the fast paths run on (for `info` and benchmarks).
const char* simd_target();

}  // namespace kvc::quant
