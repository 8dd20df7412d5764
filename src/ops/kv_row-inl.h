// The only place sparse attention reads cached keys and values: a key row dotted with a few
// query rows, and value rows added into a few accumulators. Today's segments hold f32 rows;
// a segment of another storage type (f16, q8_0) needs only these two functions to learn it.
// Highway's per-target include idiom: included inside HWY_NAMESPACE by each kernel file.
#if defined(KVC_OPS_KV_ROW_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef KVC_OPS_KV_ROW_INL_H_
#undef KVC_OPS_KV_ROW_INL_H_
#else
#define KVC_OPS_KV_ROW_INL_H_
#endif

#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace kvc {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// out[r] = dot(q[r], key) for r in [0, m): the key row is loaded once for all m query rows.
static inline void KeyRowDots(const float* const* q, int m, const float* HWY_RESTRICT key, int hd,
                              float* HWY_RESTRICT out) {
  const hn::ScalableTag<float> d;
  const int N = static_cast<int>(hn::Lanes(d));
  if (hd % N != 0) {
    for (int r = 0; r < m; ++r) {
      float s = 0.0f;
      for (int x = 0; x < hd; ++x) s += q[r][x] * key[x];
      out[r] = s;
    }
    return;
  }
  int r = 0;
  for (; r + 2 <= m; r += 2) {  // two rows per pass: the key vector is loaded once for both
    auto a0 = hn::Zero(d), a1 = hn::Zero(d);
    for (int x = 0; x < hd; x += N) {
      const auto kv = hn::LoadU(d, key + x);
      a0 = hn::MulAdd(hn::LoadU(d, q[r] + x), kv, a0);
      a1 = hn::MulAdd(hn::LoadU(d, q[r + 1] + x), kv, a1);
    }
    out[r] = hn::GetLane(hn::SumOfLanes(d, a0));
    out[r + 1] = hn::GetLane(hn::SumOfLanes(d, a1));
  }
  for (; r < m; ++r) {
    auto a = hn::Zero(d);
    for (int x = 0; x < hd; x += N) a = hn::MulAdd(hn::LoadU(d, q[r] + x), hn::LoadU(d, key + x), a);
    out[r] = hn::GetLane(hn::SumOfLanes(d, a));
  }
}

// acc[r] += sum_i p[r][i] * value row i, for r in [0, m) and the n value rows at `value` +
// i * stride: each value row is loaded once for all m rows, the accumulators stay in registers.
static inline void AddValueRows(const float* const* p, int m, const float* HWY_RESTRICT value,
                                size_t stride, int n, int hd, float* const* acc) {
  const hn::ScalableTag<float> d;
  const int N = static_cast<int>(hn::Lanes(d));
  if (hd % N != 0 || m > 4) {
    for (int i = 0; i < n; ++i)
      for (int r = 0; r < m; ++r)
        for (int x = 0; x < hd; ++x) acc[r][x] += p[r][i] * value[i * stride + x];
    return;
  }
  for (int x = 0; x < hd; x += N) {
    auto a0 = hn::LoadU(d, acc[0] + x);
    auto a1 = m > 1 ? hn::LoadU(d, acc[1] + x) : hn::Zero(d);
    auto a2 = m > 2 ? hn::LoadU(d, acc[2] + x) : hn::Zero(d);
    auto a3 = m > 3 ? hn::LoadU(d, acc[3] + x) : hn::Zero(d);
    for (int i = 0; i < n; ++i) {
      const auto v = hn::LoadU(d, value + i * stride + x);
      a0 = hn::MulAdd(hn::Set(d, p[0][i]), v, a0);
      if (m > 1) a1 = hn::MulAdd(hn::Set(d, p[1][i]), v, a1);
      if (m > 2) a2 = hn::MulAdd(hn::Set(d, p[2][i]), v, a2);
      if (m > 3) a3 = hn::MulAdd(hn::Set(d, p[3][i]), v, a3);
    }
    hn::StoreU(a0, d, acc[0] + x);
    if (m > 1) hn::StoreU(a1, d, acc[1] + x);
    if (m > 2) hn::StoreU(a2, d, acc[2] + x);
    if (m > 3) hn::StoreU(a3, d, acc[3] + x);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace kvc
HWY_AFTER_NAMESPACE();

#endif  // include guard
