#include "ops/rope.h"

#include <algorithm>
#include <cmath>

namespace kvc {

Rope::Rope(RopeStyle style, int head_dim, int n_dims, double base, const RopeScaling& scaling)
    : style_(style), head_dim_(head_dim), n_dims_(n_dims), inv_freq_(n_dims / 2) {
  for (int i = 0; i < n_dims / 2; ++i) {
    double f = std::pow(base, -2.0 * i / n_dims) / scaling.linear_factor;
    if (!scaling.freq_factors.empty()) f /= scaling.freq_factors[i];
    inv_freq_[i] = f;
  }
}

void Rope::apply_heads(float* x, int n_heads, int64_t pos) const {
  const int half = n_dims_ / 2;
  float cs[256], sn[256];  // sin/cos of up to 256 pairs at a time
  for (int i0 = 0; i0 < half; i0 += 256) {
    const int n = std::min(256, half - i0);
    for (int i = 0; i < n; ++i) {
      // The angle in double: virtual positions reach millions, where float loses the phase.
      const double angle = static_cast<double>(pos) * inv_freq_[i0 + i];
      cs[i] = static_cast<float>(std::cos(angle));
      sn[i] = static_cast<float>(std::sin(angle));
    }
    for (int h = 0; h < n_heads; ++h) {
      float* xh = x + static_cast<size_t>(h) * head_dim_;
      for (int i = 0; i < n; ++i) {
        const int p = i0 + i;
        const int a = style_ == RopeStyle::Norm ? 2 * p : p;
        const int b = style_ == RopeStyle::Norm ? 2 * p + 1 : p + half;
        const float x0 = xh[a];
        const float x1 = xh[b];
        xh[a] = x0 * cs[i] - x1 * sn[i];
        xh[b] = x0 * sn[i] + x1 * cs[i];
      }
    }
  }
}

}  // namespace kvc
