// Fast paths of quant.h. Temporary: everything runs the scalar reference until the Highway
// kernels land.
#include "quant/quant.h"
#include "quant/reference.h"

namespace kvc::quant {

void dequantize_row(GgmlType t, const void* src, float* dst, int64_t n) {
  ref::dequantize_row(t, src, dst, n);
}
void quantize_activation(GgmlType weight, const float* x, void* dst, int64_t n) {
  ref::quantize_activation(weight, x, dst, n);
}
float dot(GgmlType weight, const void* w_row, const void* x_act, int64_t n) {
  return ref::dot(weight, w_row, x_act, n);
}
void matmul(GgmlType weight, const void* w, size_t w_row_bytes, int64_t r0, int64_t r1,
            const void* x_act, size_t x_col_bytes, int64_t n_cols, int64_t n, float* out,
            int64_t ldo) {
  const auto* wb = static_cast<const uint8_t*>(w);
  const auto* xb = static_cast<const uint8_t*>(x_act);
  for (int64_t c = 0; c < n_cols; ++c)
    for (int64_t r = r0; r < r1; ++r)
      out[c * ldo + r] = ref::dot(weight, wb + r * w_row_bytes, xb + c * x_col_bytes, n);
}
const char* simd_target() { return "scalar"; }

}  // namespace kvc::quant
