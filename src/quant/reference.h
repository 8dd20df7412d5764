// Scalar reference implementations of every quant kernel: plain loops that follow the block
// layouts literally. They define correctness; the SIMD paths in quant.h are tested against them.
#pragma once

#include <cstdint>

#include "quant/ggml_type.h"

namespace kvc::quant::ref {

void dequantize_row(GgmlType t, const void* src, float* dst, int64_t n);
// Quantizes n floats into a row of type t (any supported type, weights and activations alike).
// Used for activations and by tests to write synthetic models; not tuned for quality.
void quantize_row(GgmlType t, const float* x, void* dst, int64_t n);
void quantize_activation(GgmlType weight, const float* x, void* dst, int64_t n);
float dot(GgmlType weight, const void* w_row, const void* x_act, int64_t n);

}  // namespace kvc::quant::ref
