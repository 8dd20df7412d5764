// Per-element kernels. The gated activations run over n_ff values per token (a million per
// layer in a 512-token prefill), where libm's scalar tanh/exp cost ~10% of Gemma's prefill, so
// they are Highway SIMD with the scalar versions kept as the reference. The rest touch a few
// thousand floats per token next to megabytes of weights: plain loops are enough.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/elementwise.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
#include <hwy/contrib/math/math-inl.h>

#include <cmath>

#include "ops/elementwise.h"

HWY_BEFORE_NAMESPACE();
namespace kvc {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// gate = silu(gate) * up = gate / (1 + exp(-gate)) * up
void SwiGlu(float* HWY_RESTRICT gate, const float* HWY_RESTRICT up, int64_t n) {
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const auto one = hn::Set(d, 1.0f);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto g = hn::LoadU(d, gate + i);
    const auto sig = hn::Div(one, hn::Add(one, hn::Exp(d, hn::Neg(g))));
    hn::StoreU(hn::Mul(hn::Mul(g, sig), hn::LoadU(d, up + i)), d, gate + i);
  }
  swiglu_reference(gate + i, up + i, n - i);  // the tail
}

// gate = gelu_tanh(gate) * up = 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))) * up
void GeGlu(float* HWY_RESTRICT gate, const float* HWY_RESTRICT up, int64_t n) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  const hn::ScalableTag<float> d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const auto half = hn::Set(d, 0.5f), one = hn::Set(d, 1.0f);
  const auto c0 = hn::Set(d, kSqrt2OverPi), c1 = hn::Set(d, 0.044715f * kSqrt2OverPi);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto g = hn::LoadU(d, gate + i);
    const auto inner = hn::Mul(g, hn::MulAdd(c1, hn::Mul(g, g), c0));
    const auto gelu = hn::Mul(hn::Mul(half, g), hn::Add(one, hn::Tanh(d, inner)));
    hn::StoreU(hn::Mul(gelu, hn::LoadU(d, up + i)), d, gate + i);
  }
  geglu_reference(gate + i, up + i, n - i);  // the tail
}

}  // namespace HWY_NAMESPACE
}  // namespace kvc
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kvc {

HWY_EXPORT(SwiGlu);
HWY_EXPORT(GeGlu);

void swiglu(float* gate, const float* up, int64_t n) { HWY_DYNAMIC_DISPATCH(SwiGlu)(gate, up, n); }
void geglu(float* gate, const float* up, int64_t n) { HWY_DYNAMIC_DISPATCH(GeGlu)(gate, up, n); }

void swiglu_reference(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void geglu_reference(float* gate, const float* up, int64_t n) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    gate[i] = 0.5f * g * (1.0f + std::tanh(kSqrt2OverPi * (g + 0.044715f * g * g * g))) * up[i];
  }
}

void rmsnorm(const float* x, const float* weight, float* out, int64_t n, float eps) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float inv = 1.0f / std::sqrt(static_cast<float>(sum / n) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = x[i] * inv * weight[i];
}

void add_inplace(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void scale_inplace(float* x, float s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] *= s;
}

}  // namespace kvc
#endif  // HWY_ONCE
