// The small per-element kernels of a transformer block.
#pragma once

#include <cstdint>

namespace kvc {

// out = x / rms(x) * weight, over n elements (out may alias x).
void rmsnorm(const float* x, const float* weight, float* out, int64_t n, float eps);
// gate = silu(gate) * up (SIMD; swiglu_reference is the scalar definition)
void swiglu(float* gate, const float* up, int64_t n);
void swiglu_reference(float* gate, const float* up, int64_t n);
// gate = gelu_tanh(gate) * up (SIMD; geglu_reference is the scalar definition)
void geglu(float* gate, const float* up, int64_t n);
void geglu_reference(float* gate, const float* up, int64_t n);
// x += y
void add_inplace(float* x, const float* y, int64_t n);
// x *= s
void scale_inplace(float* x, float s, int64_t n);

}  // namespace kvc
