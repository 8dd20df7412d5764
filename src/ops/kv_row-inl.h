// How attention kernels read cached rows as stored (quant/kv_storage.h: f32, f16, q8_0): the row
// formats, and the two reads sparse attention makes (a key row dotted with a few query rows,
// value rows added into a few accumulators), chosen per segment by its storage type.
// Highway's per-target include idiom: included after foreach_target by each kernel file.
#if defined(KVC_OPS_KV_ROW_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef KVC_OPS_KV_ROW_INL_H_
#undef KVC_OPS_KV_ROW_INL_H_
#else
#define KVC_OPS_KV_ROW_INL_H_
#endif

#include <hwy/highway.h>

#include <cstring>

#include "quant/fp16.h"
#include "quant/kv_storage.h"

HWY_BEFORE_NAMESPACE();
namespace kvc {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Row formats: Load gives elements [x, x + N) of a row as f32 lanes, At one element. q8_0's x
// never crosses a block (N divides 32: every x86 target's f32 lanes do).
struct F32Row {
  template <class D>
  static HWY_INLINE hn::Vec<D> Load(D d, const uint8_t* row, int x) {
    return hn::LoadU(d, reinterpret_cast<const float*>(row) + x);
  }
  static HWY_INLINE float At(const uint8_t* row, int x) {
    float f;
    std::memcpy(&f, row + 4 * x, 4);
    return f;
  }
};

struct F16Row {
  template <class D>
  static HWY_INLINE hn::Vec<D> Load(D d, const uint8_t* row, int x) {
    const hn::Rebind<hwy::float16_t, D> dh;
    return hn::PromoteTo(d, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(row) + x));
  }
  static HWY_INLINE float At(const uint8_t* row, int x) {
    uint16_t h;
    std::memcpy(&h, row + 2 * x, 2);
    return quant::f16_to_f32(h);
  }
};

struct Q8_0Row {
  static HWY_INLINE float Scale(const uint8_t* block) {
    uint16_t h;
    std::memcpy(&h, block, 2);
    return quant::f16_to_f32(h);
  }
  template <class D>
  static HWY_INLINE hn::Vec<D> Load(D d, const uint8_t* row, int x) {
    const uint8_t* block = row + (x / 32) * 34;
    const hn::Rebind<int32_t, D> di;
    const hn::Rebind<int8_t, D> d8;
    const auto q = hn::PromoteTo(di, hn::LoadU(d8, reinterpret_cast<const int8_t*>(block + 2) + x % 32));
    return hn::Mul(hn::ConvertTo(d, q), hn::Set(d, Scale(block)));
  }
  static HWY_INLINE float At(const uint8_t* row, int x) {
    const uint8_t* block = row + (x / 32) * 34;
    return static_cast<float>(static_cast<int8_t>(block[2 + x % 32])) * Scale(block);
  }
};

// out[r] = dot(q[r], key) for r in [0, m): the key row is loaded once for all m query rows.
template <class Row>
HWY_INLINE void KeyRowDotsT(const float* const* q, int m, const uint8_t* HWY_RESTRICT key, int hd,
                            float* HWY_RESTRICT out) {
  const hn::ScalableTag<float> d;
  const int N = static_cast<int>(hn::Lanes(d));
  if (hd % N != 0) {
    for (int r = 0; r < m; ++r) {
      float s = 0.0f;
      for (int x = 0; x < hd; ++x) s += q[r][x] * Row::At(key, x);
      out[r] = s;
    }
    return;
  }
  int r = 0;
  for (; r + 2 <= m; r += 2) {  // two rows per pass: the key vector is loaded once for both
    auto a0 = hn::Zero(d), a1 = hn::Zero(d);
    for (int x = 0; x < hd; x += N) {
      const auto kv = Row::Load(d, key, x);
      a0 = hn::MulAdd(hn::LoadU(d, q[r] + x), kv, a0);
      a1 = hn::MulAdd(hn::LoadU(d, q[r + 1] + x), kv, a1);
    }
    out[r] = hn::GetLane(hn::SumOfLanes(d, a0));
    out[r + 1] = hn::GetLane(hn::SumOfLanes(d, a1));
  }
  for (; r < m; ++r) {
    auto a = hn::Zero(d);
    for (int x = 0; x < hd; x += N) a = hn::MulAdd(hn::LoadU(d, q[r] + x), Row::Load(d, key, x), a);
    out[r] = hn::GetLane(hn::SumOfLanes(d, a));
  }
}

// acc[r] += sum_i p[r][i] * value row i, for r in [0, m) and the n value rows at `value` +
// i * stride bytes: each value row is loaded once for all m rows, the accumulators stay in
// registers.
template <class Row>
HWY_INLINE void AddValueRowsT(const float* const* p, int m, const uint8_t* HWY_RESTRICT value,
                              size_t stride, int n, int hd, float* const* acc) {
  const hn::ScalableTag<float> d;
  const int N = static_cast<int>(hn::Lanes(d));
  if (hd % N != 0 || m > 4) {
    for (int i = 0; i < n; ++i)
      for (int r = 0; r < m; ++r)
        for (int x = 0; x < hd; ++x) acc[r][x] += p[r][i] * Row::At(value + i * stride, x);
    return;
  }
  for (int x = 0; x < hd; x += N) {
    auto a0 = hn::LoadU(d, acc[0] + x);
    auto a1 = m > 1 ? hn::LoadU(d, acc[1] + x) : hn::Zero(d);
    auto a2 = m > 2 ? hn::LoadU(d, acc[2] + x) : hn::Zero(d);
    auto a3 = m > 3 ? hn::LoadU(d, acc[3] + x) : hn::Zero(d);
    for (int i = 0; i < n; ++i) {
      const auto v = Row::Load(d, value + i * stride, x);
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

// The same with the row format chosen by a segment's storage type.
static inline void KeyRowDots(KvType type, const float* const* q, int m, const uint8_t* key, int hd,
                              float* out) {
  switch (type) {
    case KvType::kF16: return KeyRowDotsT<F16Row>(q, m, key, hd, out);
    case KvType::kQ8_0: return KeyRowDotsT<Q8_0Row>(q, m, key, hd, out);
    case KvType::kF32: break;
  }
  KeyRowDotsT<F32Row>(q, m, key, hd, out);
}

static inline void AddValueRows(KvType type, const float* const* p, int m, const uint8_t* value,
                                size_t stride, int n, int hd, float* const* acc) {
  switch (type) {
    case KvType::kF16: return AddValueRowsT<F16Row>(p, m, value, stride, n, hd, acc);
    case KvType::kQ8_0: return AddValueRowsT<Q8_0Row>(p, m, value, stride, n, hd, acc);
    case KvType::kF32: break;
  }
  AddValueRowsT<F32Row>(p, m, value, stride, n, hd, acc);
}

}  // namespace HWY_NAMESPACE
}  // namespace kvc
HWY_AFTER_NAMESPACE();

#endif  // include guard
