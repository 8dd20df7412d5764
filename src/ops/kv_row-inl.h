// The only place sparse attention reads cached keys and values: a key row dotted with a few
// query rows, and a value row added into a few accumulators. Today's segments hold f32 rows;
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

// acc[r] += p[r] * value for r in [0, m).
static inline void AddValueRow(const float* HWY_RESTRICT p, int m, const float* HWY_RESTRICT value,
                               int hd, float* const* acc) {
  const hn::ScalableTag<float> d;
  const int N = static_cast<int>(hn::Lanes(d));
  if (hd % N != 0) {
    for (int r = 0; r < m; ++r)
      for (int x = 0; x < hd; ++x) acc[r][x] += p[r] * value[x];
    return;
  }
  for (int x = 0; x < hd; x += N) {
    const auto v = hn::LoadU(d, value + x);
    for (int r = 0; r < m; ++r)
      hn::StoreU(hn::MulAdd(hn::Set(d, p[r]), v, hn::LoadU(d, acc[r] + x)), d, acc[r] + x);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace kvc
HWY_AFTER_NAMESPACE();

#endif  // include guard
