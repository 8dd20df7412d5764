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

namespace {

// The angle in double: virtual positions reach millions, where float loses the phase.
void angles(const std::vector<double>& inv_freq, int i0, int n, int64_t pos, float* cs, float* sn) {
  for (int i = 0; i < n; ++i) {
    const double angle = static_cast<double>(pos) * inv_freq[i0 + i];
    cs[i] = static_cast<float>(std::cos(angle));
    sn[i] = static_cast<float>(std::sin(angle));
  }
}

// Rotates pairs [i0, i0 + n) of one head vector by the given cos/sin, `step` floats apart.
void rotate_pairs(float* xh, RopeStyle style, int half, int i0, int n, const float* cs,
                  const float* sn, int step) {
  for (int i = 0; i < n; ++i) {
    const int p = i0 + i;
    const int a = style == RopeStyle::Norm ? 2 * p : p;
    const int b = style == RopeStyle::Norm ? 2 * p + 1 : p + half;
    const float x0 = xh[a];
    const float x1 = xh[b];
    const float c = cs[i * step], s = sn[i * step];
    xh[a] = x0 * c - x1 * s;
    xh[b] = x0 * s + x1 * c;
  }
}

}  // namespace

void Rope::apply_heads(float* x, int n_heads, int64_t pos) const {
  const int half = n_dims_ / 2;
  float cs[256], sn[256];  // sin/cos of up to 256 pairs at a time
  for (int i0 = 0; i0 < half; i0 += 256) {
    const int n = std::min(256, half - i0);
    angles(inv_freq_, i0, n, pos, cs, sn);
    for (int h = 0; h < n_heads; ++h)
      rotate_pairs(x + static_cast<size_t>(h) * head_dim_, style_, half, i0, n, cs, sn, 1);
  }
}

std::vector<float> Rope::position_table(int64_t n) const {
  const int half = n_dims_ / 2;
  std::vector<float> table(static_cast<size_t>(std::max<int64_t>(n, 0)) * half * 2);
  std::vector<float> cs(half), sn(half);
  for (int64_t pos = 0; pos < n; ++pos) {
    angles(inv_freq_, 0, half, pos, cs.data(), sn.data());
    float* row = &table[static_cast<size_t>(pos) * half * 2];
    for (int i = 0; i < half; ++i) row[2 * i] = cs[i], row[2 * i + 1] = sn[i];
  }
  return table;
}

void Rope::rotate_to(float* key, int64_t pos, const std::vector<float>& table) const {
  const int half = n_dims_ / 2;
  const float* row = &table[static_cast<size_t>(pos) * half * 2];
  rotate_pairs(key, style_, half, 0, half, row, row + 1, 2);
}

}  // namespace kvc
