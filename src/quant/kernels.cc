// Fast paths of quant.h: Highway code compiled once per SIMD target, chosen at run time.
//
// Float work (f32/f16/bf16 rows, dequantization, activation quantization) is portable Highway.
// The integer block dots need u8 x s8 multiply-adds (AVX2 vpmaddubsw, AVX-512 VNNI vpdpbusd)
// that Highway 1.0.3 cannot express, so on x86 targets with 256-bit vectors they are written on
// the native vectors; other targets use the scalar reference for those dots.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "quant/kernels.cc"
#define HWY_WANT_AVX3_DL  // Ice Lake and later: VNNI
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "base/error.h"
#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/quant.h"
#include "quant/reference.h"

#if HWY_ARCH_X86
#include <immintrin.h>
#endif

HWY_BEFORE_NAMESPACE();
#if HWY_TARGET == HWY_AVX3_DL
// Highway 1.0.3 enables "avxvnni" for this target but checks the CPU for AVX512-VNNI; ask for
// avx512vnni too (the 512-bit intrinsics need it). That alone does not stop GCC from choosing
// the VEX (AVX-VNNI) encoding for 256-bit vpdpbusd: DotU8S8 writes that one out.
#pragma GCC target("avx512vnni")
#endif
namespace kvc::quant {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// The 512-bit VNNI matmul needs avx512vnni on its functions, which the GCC pragma above grants;
// clang (the fuzz build) ignores that pragma, so there the 256-bit kernels serve instead.
#undef KVC_QUANT_VNNI512
#if HWY_TARGET == HWY_AVX3_DL && !HWY_COMPILER_CLANG
#define KVC_QUANT_VNNI512 1
#else
#define KVC_QUANT_VNNI512 0
#endif

#undef KVC_QUANT_X86_256
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
#define KVC_QUANT_X86_256 1
#else
#define KVC_QUANT_X86_256 0
#endif

// ---- float rows ----------------------------------------------------------------------------

// Loads Lanes(df) weights of a float-type row as f32.
template <GgmlType T, class DF>
HWY_INLINE hn::Vec<DF> LoadWeights(DF df, const uint8_t* p, int64_t i) {
  if constexpr (T == GgmlType::F32) {
    return hn::LoadU(df, reinterpret_cast<const float*>(p) + i);
  } else if constexpr (T == GgmlType::F16) {
    const hn::Rebind<hwy::float16_t, DF> dh;
    return hn::PromoteTo(df, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p) + i));
  } else {
    const hn::Rebind<hwy::bfloat16_t, DF> db;
    return hn::PromoteTo(df, hn::LoadU(db, reinterpret_cast<const hwy::bfloat16_t*>(p) + i));
  }
}

template <GgmlType T>
HWY_INLINE float ScalarWeight(const uint8_t* p, int64_t i) {
  if constexpr (T == GgmlType::F32) {
    float f;
    std::memcpy(&f, p + 4 * i, 4);
    return f;
  } else {
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    return T == GgmlType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
  }
}

// One float-type row against C f32 columns; each loaded weight vector is used C times.
template <GgmlType T, int C>
HWY_NOINLINE void RowFloat(const uint8_t* w, const float* const* xs, int64_t n, float* res) {
  const hn::ScalableTag<float> df;
  const int64_t N = static_cast<int64_t>(hn::Lanes(df));
  hn::Vec<decltype(df)> acc0[C], acc1[C];
  for (int c = 0; c < C; ++c) acc0[c] = acc1[c] = hn::Zero(df);
  int64_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    const auto w0 = LoadWeights<T>(df, w, i);
    const auto w1 = LoadWeights<T>(df, w, i + N);
    for (int c = 0; c < C; ++c) {
      acc0[c] = hn::MulAdd(w0, hn::LoadU(df, xs[c] + i), acc0[c]);
      acc1[c] = hn::MulAdd(w1, hn::LoadU(df, xs[c] + i + N), acc1[c]);
    }
  }
  for (; i + N <= n; i += N) {
    const auto w0 = LoadWeights<T>(df, w, i);
    for (int c = 0; c < C; ++c) acc0[c] = hn::MulAdd(w0, hn::LoadU(df, xs[c] + i), acc0[c]);
  }
  for (int c = 0; c < C; ++c) {
    float s = hn::GetLane(hn::SumOfLanes(df, hn::Add(acc0[c], acc1[c])));
    for (int64_t j = i; j < n; ++j) s += ScalarWeight<T>(w, j) * xs[c][j];
    res[c] = s;
  }
}

// ---- dequantize ----------------------------------------------------------------------------

// dst[i] = q[i] * d + m for `count` int8 values (count a multiple of 32).
HWY_INLINE void ScaleInt8(const int8_t* q, int count, float d, float m, float* dst) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<int32_t, decltype(df)> di;
  const hn::Rebind<int8_t, decltype(df)> d8;
  const int N = static_cast<int>(hn::Lanes(df));
  const auto vd = hn::Set(df, d), vm = hn::Set(df, m);
  for (int i = 0; i < count; i += N) {
    const auto v = hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(d8, q + i)));
    hn::StoreU(hn::Add(hn::Mul(v, vd), vm), df, dst + i);
  }
}

// The same for values already known to be small non-negative or signed: q * d - m.
HWY_INLINE void ScaleInt8Sub(const int8_t* q, int count, float d, float m, float* dst) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<int32_t, decltype(df)> di;
  const hn::Rebind<int8_t, decltype(df)> d8;
  const int N = static_cast<int>(hn::Lanes(df));
  const auto vd = hn::Set(df, d), vm = hn::Set(df, m);
  for (int i = 0; i < count; i += N) {
    const auto v = hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(d8, q + i)));
    hn::StoreU(hn::Sub(hn::Mul(vd, v), vm), df, dst + i);
  }
}

// Unpacks the 4-bit low halves of a 32-element block: q[j] = low nibble, q[j + 16] = high.
HWY_INLINE void Nibbles32(const uint8_t* qs, int8_t* q, int offset) {
  for (int j = 0; j < 16; ++j) {
    q[j] = static_cast<int8_t>((qs[j] & 0xF) - offset);
    q[j + 16] = static_cast<int8_t>((qs[j] >> 4) - offset);
  }
}

void DequantizeRowT(GgmlType t, const void* src, float* dst, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(src);
  const int64_t nb32 = n / kQK, nb256 = n / kQKK;
  alignas(64) int8_t q[kQKK];
  switch (t) {
    case GgmlType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * 4);
      return;
    case GgmlType::F16:
    case GgmlType::BF16: {
      const hn::ScalableTag<float> df;
      const int64_t N = static_cast<int64_t>(hn::Lanes(df));
      int64_t i = 0;
      for (; i + N <= n; i += N)
        hn::StoreU(t == GgmlType::F16 ? LoadWeights<GgmlType::F16>(df, p, i)
                                      : LoadWeights<GgmlType::BF16>(df, p, i),
                   df, dst + i);
      for (; i < n; ++i)
        dst[i] = t == GgmlType::F16 ? ScalarWeight<GgmlType::F16>(p, i)
                                    : ScalarWeight<GgmlType::BF16>(p, i);
      return;
    }
    case GgmlType::Q4_0:
      for (int64_t i = 0; i < nb32; ++i) {
        const auto& b = reinterpret_cast<const BlockQ4_0*>(p)[i];
        Nibbles32(b.qs, q, 8);
        ScaleInt8(q, 32, f16_to_f32(b.d), 0.0f, dst + i * kQK);
      }
      return;
    case GgmlType::Q4_1:
      for (int64_t i = 0; i < nb32; ++i) {
        const auto& b = reinterpret_cast<const BlockQ4_1*>(p)[i];
        Nibbles32(b.qs, q, 0);
        ScaleInt8(q, 32, f16_to_f32(b.d), f16_to_f32(b.m), dst + i * kQK);
      }
      return;
    case GgmlType::Q5_0:
      for (int64_t i = 0; i < nb32; ++i) {
        const auto& b = reinterpret_cast<const BlockQ5_0*>(p)[i];
        uint32_t qh;
        std::memcpy(&qh, b.qh, 4);
        Nibbles32(b.qs, q, 0);
        for (int j = 0; j < 32; ++j) q[j] = static_cast<int8_t>((q[j] | (((qh >> j) & 1) << 4)) - 16);
        ScaleInt8(q, 32, f16_to_f32(b.d), 0.0f, dst + i * kQK);
      }
      return;
    case GgmlType::Q8_0:
      for (int64_t i = 0; i < nb32; ++i) {
        const auto& b = reinterpret_cast<const BlockQ8_0*>(p)[i];
        ScaleInt8(b.qs, 32, f16_to_f32(b.d), 0.0f, dst + i * kQK);
      }
      return;
    case GgmlType::Q8_1:
      for (int64_t i = 0; i < nb32; ++i) {
        const auto& b = reinterpret_cast<const BlockQ8_1*>(p)[i];
        ScaleInt8(b.qs, 32, f16_to_f32(b.d), 0.0f, dst + i * kQK);
      }
      return;
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
      for (int64_t i = 0; i < nb256; ++i) {
        const bool q5 = t == GgmlType::Q5_K;
        const auto& b4 = reinterpret_cast<const BlockQ4_K*>(p)[i];
        const auto& b5 = reinterpret_cast<const BlockQ5_K*>(p)[i];
        const uint16_t dh = q5 ? b5.d : b4.d, dminh = q5 ? b5.dmin : b4.dmin;
        const uint8_t* qs = q5 ? b5.qs : b4.qs;
        uint8_t sc[8], m[8];
        unpack_scales_k4(q5 ? b5.scales : b4.scales, sc, m);
        for (int c = 0; c < 4; ++c)
          for (int l = 0; l < 32; ++l) {
            int lo = qs[32 * c + l] & 0xF, hi = qs[32 * c + l] >> 4;
            if (q5) {
              lo |= ((b5.qh[l] >> (2 * c)) & 1) << 4;
              hi |= ((b5.qh[l] >> (2 * c + 1)) & 1) << 4;
            }
            q[64 * c + l] = static_cast<int8_t>(lo);
            q[64 * c + 32 + l] = static_cast<int8_t>(hi);
          }
        const float d = f16_to_f32(dh), dmin = f16_to_f32(dminh);
        for (int j = 0; j < 8; ++j)
          ScaleInt8Sub(q + 32 * j, 32, d * sc[j], dmin * m[j], dst + i * kQKK + 32 * j);
      }
      return;
    case GgmlType::Q6_K:
      for (int64_t i = 0; i < nb256; ++i) {
        const auto& b = reinterpret_cast<const BlockQ6_K*>(p)[i];
        for (int h = 0; h < 2; ++h)
          for (int l = 0; l < 32; ++l) {
            const uint8_t ql0 = b.ql[64 * h + l], ql1 = b.ql[64 * h + 32 + l], qh = b.qh[32 * h + l];
            int8_t* o = q + 128 * h + l;
            o[0] = static_cast<int8_t>(((ql0 & 0xF) | ((qh & 3) << 4)) - 32);
            o[32] = static_cast<int8_t>(((ql1 & 0xF) | (((qh >> 2) & 3) << 4)) - 32);
            o[64] = static_cast<int8_t>(((ql0 >> 4) | (((qh >> 4) & 3) << 4)) - 32);
            o[96] = static_cast<int8_t>(((ql1 >> 4) | (((qh >> 6) & 3) << 4)) - 32);
          }
        const float d = f16_to_f32(b.d);
        for (int j = 0; j < 16; ++j)
          ScaleInt8(q + 16 * j, 16, d * static_cast<float>(b.scales[j]), 0.0f,
                    dst + i * kQKK + 16 * j);
      }
      return;
    case GgmlType::Q8_K:
      for (int64_t i = 0; i < nb256; ++i) {
        const auto& b = reinterpret_cast<const BlockQ8_K*>(p)[i];
        ScaleInt8Sub(b.qs, kQKK, b.d, 0.0f, dst + i * kQKK);
      }
      return;
    default:
      break;
  }
  fail("dequantize: type {} is not supported", type_name(static_cast<uint32_t>(t)));
}

// ---- activation quantization ---------------------------------------------------------------

#if HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128
// Rounds x * scale to int8 with cvtps2dq semantics (nearest even), as the reference does.
HWY_INLINE void RoundToInt8(const float* x, int count, float scale, int8_t* q) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<int32_t, decltype(df)> di;
  const hn::Rebind<int8_t, decltype(df)> d8;
  const int N = static_cast<int>(hn::Lanes(df));
  const auto vs = hn::Set(df, scale);
  const auto lo = hn::Set(di, -127), hi = hn::Set(di, 127);
  for (int i = 0; i < count; i += N) {
    const auto r = hn::NearestInt(hn::Mul(hn::LoadU(df, x + i), vs));
    hn::StoreU(hn::DemoteTo(d8, hn::Min(hn::Max(r, lo), hi)), d8, q + i);
  }
}

// The largest |x[i]|, or NaN if any x[i] is NaN: Max drops NaN on some targets, and a NaN lost
// here would turn into finite garbage downstream instead of reaching the logits check.
HWY_INLINE float AbsMax(const float* x, int count) {
  const hn::ScalableTag<float> df;
  const int N = static_cast<int>(hn::Lanes(df));
  auto m = hn::Zero(df);
  auto nan = hn::FirstN(df, 0);
  for (int i = 0; i < count; i += N) {
    const auto v = hn::LoadU(df, x + i);
    m = hn::Max(m, hn::Abs(v));
    nan = hn::Or(nan, hn::IsNaN(v));
  }
  if (!hn::AllFalse(df, nan)) return std::numeric_limits<float>::quiet_NaN();
  return hn::GetLane(hn::MaxOfLanes(df, m));
}

void QuantizeActivationT(GgmlType weight, const float* x, void* dst, int64_t n) {
  const GgmlType at = activation_type(weight);
  if (at == GgmlType::F32) {
    std::memcpy(dst, x, static_cast<size_t>(n) * 4);
  } else if (at == GgmlType::Q8_0 || at == GgmlType::Q8_1) {
    auto* p = static_cast<uint8_t*>(dst);
    const size_t bytes = at == GgmlType::Q8_0 ? sizeof(BlockQ8_0) : sizeof(BlockQ8_1);
    const size_t qoff = at == GgmlType::Q8_0 ? 2 : 4;
    for (int64_t i = 0; i < n / kQK; ++i, x += kQK, p += bytes) {
      const float amax = AbsMax(x, kQK);
      const float d = amax / 127.0f, id = amax != 0 ? 127.0f / amax : 0.0f;
      auto* q = reinterpret_cast<int8_t*>(p + qoff);
      RoundToInt8(x, kQK, id, q);
      const uint16_t dh = f32_to_f16(d);
      std::memcpy(p, &dh, 2);
      if (at == GgmlType::Q8_1) {
        int sum = 0;
        for (int j = 0; j < kQK; ++j) sum += q[j];
        const uint16_t sh = f32_to_f16(d * static_cast<float>(sum));
        std::memcpy(p + 2, &sh, 2);
      }
    }
  } else {  // Q8_K
    auto* b = static_cast<BlockQ8_K*>(dst);
    for (int64_t i = 0; i < n / kQKK; ++i, x += kQKK) {
      const float amax = AbsMax(x, kQKK);
      if (amax == 0) {
        std::memset(&b[i], 0, sizeof b[i]);
        continue;
      }
      // The element of largest magnitude, with its sign. A NaN amax matches no element: keep
      // it, so the scale is NaN too (never read past the block).
      const float* at = std::find_if(x, x + kQKK, [&](float v) { return std::fabs(v) == amax; });
      const float max = at != x + kQKK ? *at : amax;
      const float iscale = -127.0f / max;
      RoundToInt8(x, kQKK, iscale, b[i].qs);
      for (int j = 0; j < 16; ++j) {
        int sum = 0;
        for (int l = 0; l < 16; ++l) sum += b[i].qs[16 * j + l];
        b[i].bsums[j] = static_cast<int16_t>(sum);
      }
      b[i].d = 1.0f / iscale;
    }
  }
}
#else
// Highway's emulated NearestInt rounds by adding 0.5, which differs from the reference near
// ties; these targets only exist for CPUs without SSSE3.
void QuantizeActivationT(GgmlType weight, const float* x, void* dst, int64_t n) {
  ref::quantize_activation(weight, x, dst, n);
}
#endif

// ---- integer block dots (x86, 256-bit) -----------------------------------------------------

#if KVC_QUANT_X86_256

using I = __m256i;
using F = __m256;

HWY_INLINE float Half(uint16_t h) { return _cvtsh_ss(h); }

// acc + (sums of 4 adjacent u8 * s8 products) in 8 int32 lanes. No pair may exceed int16 on
// the maddubs path: callers keep |u| * 127 * 2 <= 32767... or u <= 128 with |s| <= 127.
HWY_INLINE I DotU8S8(I acc, I u, I s) {
#if HWY_TARGET == HWY_AVX3_DL
  // Written out, in the EVEX form: with avxvnni on (see the pragma above) the compiler picks
  // the VEX form of the intrinsic, an AVX-VNNI instruction that AVX-512 CPUs without AVX-VNNI
  // (AMD Zen 4) fault on. AT&T order: vpdpbusd s8, u8, acc.
  __asm__("%{evex%} vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "v"(s));
  return acc;
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}

// Signed x signed through the unsigned instruction: |w| * (x with w's sign).
HWY_INLINE I DotS8S8(I w, I x) {
  return DotU8S8(_mm256_setzero_si256(), _mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
}

HWY_INLINE float HSum(F v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

HWY_INLINE I Load(const void* p) { return _mm256_loadu_si256(static_cast<const I*>(p)); }

// 32 nibbles -> 32 bytes: elements 0-15 from the low nibbles, 16-31 from the high ones.
HWY_INLINE I Nibbles(const uint8_t* qs) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(0x0F));
}

// Per-block weight kernels for the 32-element formats: Unpack once, Accumulate per column.
struct KQ8_0 {
  using Block = BlockQ8_0;
  using Act = BlockQ8_0;
  struct W {
    I q;
    float d;
  };
  static W Unpack(const Block& b) { return {Load(b.qs), Half(b.d)}; }
  static void Accumulate(const W& w, const Act& a, const float* as, F& acc, float&) {
    const I p = DotS8S8(w.q, Load(a.qs));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(w.d * as[0]), acc);
  }
};

struct KQ4_0 {
  using Block = BlockQ4_0;
  using Act = BlockQ8_0;
  using W = KQ8_0::W;
  static W Unpack(const Block& b) {
    return {_mm256_sub_epi8(Nibbles(b.qs), _mm256_set1_epi8(8)), Half(b.d)};
  }
  static void Accumulate(const W& w, const Act& a, const float* as, F& acc, float& s) {
    KQ8_0::Accumulate(w, a, as, acc, s);
  }
};

struct KQ5_0 {
  using Block = BlockQ5_0;
  using Act = BlockQ8_0;
  using W = KQ8_0::W;
  static W Unpack(const Block& b) {
    uint32_t qh;
    std::memcpy(&qh, b.qh, 4);
    // Byte j of the vector gets byte j/8 of qh, then tests its bit j%8.
    const I spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32(static_cast<int>(qh)),
        _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
    const I bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
    const I clear = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), _mm256_setzero_si256());
    // q - 16 as int8: the nibble itself when bit 4 is set, nibble | 0xF0 (= nibble - 16) if not.
    const I w = _mm256_or_si256(Nibbles(b.qs), _mm256_and_si256(clear, _mm256_set1_epi8(-16)));
    return {w, Half(b.d)};
  }
  static void Accumulate(const W& w, const Act& a, const float* as, F& acc, float& s) {
    KQ8_0::Accumulate(w, a, as, acc, s);
  }
};

struct KQ4_1 {
  using Block = BlockQ4_1;
  using Act = BlockQ8_1;
  struct W {
    I q;
    float d, m;
  };
  static W Unpack(const Block& b) { return {Nibbles(b.qs), Half(b.d), Half(b.m)}; }
  static void Accumulate(const W& w, const Act& a, const float* as, F& acc, float& s) {
    const I p = DotU8S8(_mm256_setzero_si256(), w.q, Load(a.qs));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(w.d * as[0]), acc);
    s += w.m * as[1];  // the min term: m * d_x * sum(q_x), precomputed in the activation
  }
};

// One row of 32-element blocks against C activation columns. With one column, two accumulators
// alternate so consecutive blocks do not wait on each other's FMA.
// xsc[c] holds column c's block scales as floats, (d, s) per block, converted once per matmul.
template <class K, int C>
HWY_NOINLINE void RowSmall(const uint8_t* wrow, const uint8_t* const* xs, const float* const* xsc,
                           int64_t nb, float* res) {
  const auto* w = reinterpret_cast<const typename K::Block*>(wrow);
  const typename K::Act* x[C];
  for (int c = 0; c < C; ++c) x[c] = reinterpret_cast<const typename K::Act*>(xs[c]);
  F acc0[C], acc1[C];
  float s[C];
  for (int c = 0; c < C; ++c) {
    acc0[c] = acc1[c] = _mm256_setzero_ps();
    s[c] = 0;
  }
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    // Weight rows stream from L3 or memory; ask for them ahead of the hardware prefetcher.
    _mm_prefetch(reinterpret_cast<const char*>(w + i) + 1024, _MM_HINT_T0);
    const auto w0 = K::Unpack(w[i]);
    for (int c = 0; c < C; ++c) K::Accumulate(w0, x[c][i], xsc[c] + 2 * i, acc0[c], s[c]);
    const auto w1 = K::Unpack(w[i + 1]);
    for (int c = 0; c < C; ++c) K::Accumulate(w1, x[c][i + 1], xsc[c] + 2 * i + 2, acc1[c], s[c]);
  }
  if (i < nb) {
    const auto w0 = K::Unpack(w[i]);
    for (int c = 0; c < C; ++c) K::Accumulate(w0, x[c][i], xsc[c] + 2 * i, acc0[c], s[c]);
  }
  for (int c = 0; c < C; ++c) res[c] = HSum(_mm256_add_ps(acc0[c], acc1[c])) + s[c];
}

// Prefetching past the row's end is harmless: a prefetch never faults.
HWY_INLINE void PrefetchAhead(const void* p, size_t bytes) {
  for (size_t off = 0; off < bytes; off += 64)
    _mm_prefetch(static_cast<const char*>(p) + off, _MM_HINT_T0);
}

// Per super-block: the 16-bit pair sums of 32 products times a scale, into int32 lanes.
HWY_INLINE I ScaledPairs(I u, I s, I scale16) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), scale16);
}

// Q4_K / Q5_K: d * sum_j sc[j] * (q . x)_j - dmin * sum_j m[j] * (sum of x over j).
template <bool kFive, int C>
HWY_NOINLINE void RowK4(const uint8_t* wrow, const uint8_t* const* xs, int64_t nb, float* res) {
  using Block = std::conditional_t<kFive, BlockQ5_K, BlockQ4_K>;
  const auto* w = reinterpret_cast<const Block*>(wrow);
  F acc[C];
  for (int c = 0; c < C; ++c) acc[c] = _mm256_setzero_ps();
  const I low4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
  for (int64_t i = 0; i < nb; ++i) {
    const Block& b = w[i];
    PrefetchAhead(w + i + 4, sizeof(Block));
    // unpack_scales_k4 on whole words: u[0..1] = the 8 scales, u[2..3] = the 8 mins.
    uint32_t u[4];
    std::memcpy(u, b.scales, 12);
    u[3] = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4);
    const uint32_t mins_lo = u[1] & 0x3f3f3f3fu;
    u[1] = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);
    u[2] = mins_lo;
    u[0] &= 0x3f3f3f3fu;
    const uint8_t* sc = reinterpret_cast<const uint8_t*>(u);
    const __m128i mins = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(u + 2)));
    I isum[C];
    for (int c = 0; c < C; ++c) isum[c] = _mm256_setzero_si256();
    I qh = _mm256_setzero_si256();
    if constexpr (kFive) qh = Load(b.qh);
    for (int k = 0; k < 4; ++k) {
      const I qv = Load(b.qs + 32 * k);
      I lo = _mm256_and_si256(qv, low4);
      I hi = _mm256_and_si256(_mm256_srli_epi16(qv, 4), low4);
      if constexpr (kFive) {
        lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), one), 4));
        hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * k + 1), one), 4));
      }
      const I s_lo = _mm256_set1_epi16(sc[2 * k]), s_hi = _mm256_set1_epi16(sc[2 * k + 1]);
      for (int c = 0; c < C; ++c) {
        const auto& a = reinterpret_cast<const BlockQ8_K*>(xs[c])[i];
        isum[c] = _mm256_add_epi32(isum[c], ScaledPairs(lo, Load(a.qs + 64 * k), s_lo));
        isum[c] = _mm256_add_epi32(isum[c], ScaledPairs(hi, Load(a.qs + 64 * k + 32), s_hi));
      }
    }
    const float d = Half(b.d), dmin = Half(b.dmin);
    for (int c = 0; c < C; ++c) {
      const auto& a = reinterpret_cast<const BlockQ8_K*>(xs[c])[i];
      // Pairs of 16-element sums are the 32-element sums the mins apply to.
      const __m128i* bs = reinterpret_cast<const __m128i*>(a.bsums);
      const __m128i pairs = _mm_hadd_epi16(_mm_loadu_si128(bs), _mm_loadu_si128(bs + 1));
      const I msum = _mm256_zextsi128_si256(_mm_madd_epi16(pairs, mins));
      acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[c]), _mm256_set1_ps(d * a.d), acc[c]);
      acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_set1_ps(-dmin * a.d), acc[c]);
    }
  }
  for (int c = 0; c < C; ++c) res[c] = HSum(acc[c]);
}

// Q6_K: d * sum_j sc[j] * ((q . x)_j - 32 * (sum of x over j)), q unsigned 0..63.
template <int C>
HWY_NOINLINE void RowQ6K(const uint8_t* wrow, const uint8_t* const* xs, int64_t nb, float* res) {
  const auto* w = reinterpret_cast<const BlockQ6_K*>(wrow);
  F acc[C];
  for (int c = 0; c < C; ++c) acc[c] = _mm256_setzero_ps();
  const I low4 = _mm256_set1_epi8(0x0F), three = _mm256_set1_epi8(3);
  for (int64_t i = 0; i < nb; ++i) {
    const BlockQ6_K& b = w[i];
    PrefetchAhead(w + i + 4, sizeof(BlockQ6_K));
    const I sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)));
    I isum[C];
    for (int c = 0; c < C; ++c) isum[c] = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const I ql0 = Load(b.ql + 64 * h), ql1 = Load(b.ql + 64 * h + 32);
      const I qh = Load(b.qh + 32 * h);
      for (int k = 0; k < 4; ++k) {
        const I ql = k & 1 ? ql1 : ql0;
        const I lo = k < 2 ? _mm256_and_si256(ql, low4)
                           : _mm256_and_si256(_mm256_srli_epi16(ql, 4), low4);
        const I top = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), three);
        const I q = _mm256_or_si256(lo, _mm256_slli_epi16(top, 4));
        // Sub-blocks j and j+1 (16 elements each) fill the low and high 128-bit halves.
        const int j = 8 * h + 2 * k;
        const I scale = _mm256_set_m128i(_mm_set1_epi16(b.scales[j + 1]), _mm_set1_epi16(b.scales[j]));
        for (int c = 0; c < C; ++c) {
          const auto& a = reinterpret_cast<const BlockQ8_K*>(xs[c])[i];
          isum[c] = _mm256_add_epi32(isum[c], ScaledPairs(q, Load(a.qs + 128 * h + 32 * k), scale));
        }
      }
    }
    const float d = Half(b.d);
    for (int c = 0; c < C; ++c) {
      const auto& a = reinterpret_cast<const BlockQ8_K*>(xs[c])[i];
      const I corr = _mm256_slli_epi32(_mm256_madd_epi16(Load(a.bsums), sc16), 5);
      acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(isum[c], corr)),
                               _mm256_set1_ps(d * a.d), acc[c]);
    }
  }
  for (int c = 0; c < C; ++c) res[c] = HSum(acc[c]);
}

template <class K>
struct SmallRows {
  static constexpr bool kScales = true;
  static constexpr size_t kActBlock = sizeof(typename K::Act);
  template <int C>
  static void Row(const uint8_t* w, const uint8_t* const* xs, const float* const* xsc, int64_t n,
                  float* res) {
    RowSmall<K, C>(w, xs, xsc, n / kQK, res);
  }
};
template <bool kFive>
struct K4Rows {
  static constexpr bool kScales = false;
  template <int C>
  static void Row(const uint8_t* w, const uint8_t* const* xs, const float* const*, int64_t n,
                  float* res) {
    RowK4<kFive, C>(w, xs, n / kQKK, res);
  }
};
struct Q6KRows {
  static constexpr bool kScales = false;
  template <int C>
  static void Row(const uint8_t* w, const uint8_t* const* xs, const float* const*, int64_t n,
                  float* res) {
    RowQ6K<C>(w, xs, n / kQKK, res);
  }
};

#if KVC_QUANT_VNNI512
// ---- many columns on 512-bit VNNI ----------------------------------------------------------
// Prefill multiplies each weight row by hundreds of columns, so the activations are repacked
// once per call into what one 512-bit vpdpbusd wants: two blocks' 64 quants back to back, then
// their scales each repeated over the 8 lanes that hold that block's partial sums. Per column
// and block pair that leaves dpbusd, cvt, mul, fmadd (plus one fmadd for the Q4_1 min term).
// Signed weights (Q4_0/Q5_0/Q8_0) meet x + 128 as the unsigned operand; the 128 * sum(w) that
// adds is taken off once per weight pair, lane by lane, so it costs nothing per column.

// GCC 12's unmasked insert/convert/extract/cast intrinsics warn about their undefined
// pass-through operand; the maskz forms with zero or all-ones masks do not.
using Z = __m512i;
using ZF = __m512;

template <class K>
struct Pairs {
  static constexpr bool kMin = std::is_same_v<typename K::Act, BlockQ8_1>;  // Q4_1: m * s term
  static constexpr size_t kBytes = kMin ? 192 : 128;  // quants, d per lane, s / 8 per lane
};

// Column c of x (n_blocks Q8_0/Q8_1 blocks) into its pair layout at dst; an odd last block is
// paired with zeros (its weight half is zero too).
// Pair p of the column lands at dst + p * step (columns of a tile are interleaved pair by pair).
template <class K>
void PackColumn(const uint8_t* x, int64_t nb, uint8_t* dst, size_t step) {
  using P = Pairs<K>;
  const auto* a = reinterpret_cast<const typename K::Act*>(x);
  const I flip = _mm256_set1_epi8(P::kMin ? 0 : static_cast<char>(0x80));
  for (int64_t i = 0; i < nb; ++i) {
    uint8_t* p = dst + static_cast<size_t>(i / 2) * step + 32 * (i & 1);
    _mm256_store_si256(reinterpret_cast<I*>(p), _mm256_xor_si256(Load(a[i].qs), flip));
    _mm256_store_ps(reinterpret_cast<float*>(p + 64), _mm256_set1_ps(Half(a[i].d)));
    if constexpr (P::kMin)
      _mm256_store_ps(reinterpret_cast<float*>(p + 128), _mm256_set1_ps(Half(a[i].s) * 0.125f));
  }
  if (nb & 1) {
    uint8_t* p = dst + static_cast<size_t>(nb / 2) * step + 32;
    for (size_t off = 0; off < P::kBytes; off += 64) std::memset(p + off, 0, 32);
  }
}

// Weight block pair (or a last block with a zero upper half) as one 512-bit vector.
template <class K>
struct WPair {
  Z q, base;  // base: -128 * sum(w) per lane (zero for Q4_1)
  ZF d, m;
};
template <class K>
HWY_INLINE WPair<K> UnpackPair(const typename K::Block* w, int64_t i, bool two) {
  const auto w0 = K::Unpack(w[i]);
  WPair<K> r;
  r.q = _mm512_maskz_inserti64x4(0xFF, _mm512_setzero_si512(), w0.q, 0);
  r.d = _mm512_maskz_insertf32x8(0xFFFF, _mm512_setzero_ps(), _mm256_set1_ps(w0.d), 0);
  if constexpr (Pairs<K>::kMin) r.m = _mm512_maskz_insertf32x8(0xFFFF, _mm512_setzero_ps(), _mm256_set1_ps(w0.m), 0);
  if (two) {
    const auto w1 = K::Unpack(w[i + 1]);
    r.q = _mm512_maskz_inserti64x4(0xFF, r.q, w1.q, 1);
    r.d = _mm512_maskz_insertf32x8(0xFFFF, r.d, _mm256_set1_ps(w1.d), 1);
    if constexpr (Pairs<K>::kMin) r.m = _mm512_maskz_insertf32x8(0xFFFF, r.m, _mm256_set1_ps(w1.m), 1);
  }
  r.base = _mm512_setzero_si512();
  if constexpr (!Pairs<K>::kMin)
    r.base = _mm512_sub_epi32(r.base, _mm512_dpbusd_epi32(r.base, _mm512_set1_epi8(static_cast<char>(0x80)), r.q));
  return r;
}

template <class K, int C>
HWY_INLINE void PairStep(const WPair<K>& w, const uint8_t* xt, ZF* acc) {
  using P = Pairs<K>;
  const Z base = w.base;
  for (int c = 0; c < C; ++c) {
    const uint8_t* a = xt + c * P::kBytes;  // one pointer for all columns: no spilled addresses
    const Z x = _mm512_load_si512(a);
    const Z dot = P::kMin ? _mm512_dpbusd_epi32(base, w.q, x) : _mm512_dpbusd_epi32(base, x, w.q);
    const ZF s = _mm512_mul_ps(w.d, _mm512_load_ps(reinterpret_cast<const float*>(a + 64)));
    acc[c] = _mm512_fmadd_ps(_mm512_maskz_cvtepi32_ps(0xFFFF, dot), s, acc[c]);
    if constexpr (P::kMin)
      acc[c] = _mm512_fmadd_ps(w.m, _mm512_load_ps(reinterpret_cast<const float*>(a + 128)), acc[c]);
  }
}

// A weight row chunk unpacked once per call (not once per column tile): per pair q, base, d
// (and m for Q4_1), 64 bytes each.
template <class K>
constexpr size_t kWPairBytes = Pairs<K>::kMin ? 256 : 192;

template <class K>
void UnpackRow(const uint8_t* wrow, int64_t nb, uint8_t* dst) {
  const auto* w = reinterpret_cast<const typename K::Block*>(wrow);
  for (int64_t i = 0; i < nb; i += 2, dst += kWPairBytes<K>) {
    const WPair<K> p = UnpackPair<K>(w, i, i + 1 < nb);
    _mm512_store_si512(dst, p.q);
    _mm512_store_si512(dst + 64, p.base);
    _mm512_store_ps(dst + 128, p.d);
    if constexpr (Pairs<K>::kMin) _mm512_store_ps(dst + 192, p.m);
  }
}

template <class K, int C>
HWY_NOINLINE void RowPairs(const uint8_t* wp, const uint8_t* xt, int64_t np, float* res) {
  ZF acc[C];
  for (int c = 0; c < C; ++c) acc[c] = _mm512_setzero_ps();
  for (int64_t p = 0; p < np; ++p, wp += kWPairBytes<K>) {
    WPair<K> w;
    w.q = _mm512_load_si512(wp);
    w.base = _mm512_load_si512(wp + 64);
    w.d = _mm512_load_ps(wp + 128);
    if constexpr (Pairs<K>::kMin) w.m = _mm512_load_ps(wp + 192);
    PairStep<K, C>(w, xt + static_cast<size_t>(p) * C * Pairs<K>::kBytes, acc);
  }
  for (int c = 0; c < C; ++c) res[c] = HSum(_mm256_add_ps(_mm512_maskz_extractf32x8_ps(0xFF, acc[c], 0),
                                            _mm512_maskz_extractf32x8_ps(0xFF, acc[c], 1)));
}

template <class K, int C>
void RowsPairs(const uint8_t* wu, size_t wub, int64_t rc, int64_t re, const uint8_t* xt,
               int64_t np, int64_t c0, float* out, int64_t ldo) {
  float res[C];
  for (int64_t r = rc; r < re; ++r) {
    RowPairs<K, C>(wu + (r - rc) * wub, xt, np, res);
    for (int c = 0; c < C; ++c) out[(c0 + c) * ldo + r] = res[c];
  }
}

// 64-byte aligned scratch.
HWY_INLINE uint8_t* Aligned(std::vector<uint8_t>& buf, size_t bytes) {
  buf.resize(bytes + 64);
  return buf.data() + (-reinterpret_cast<uintptr_t>(buf.data()) & 63);
}

template <class K>
void MatmulPairs(const uint8_t* w, size_t wrb, int64_t r0, int64_t r1, const uint8_t* x,
                 size_t xcb, int64_t n_cols, int64_t n, float* out, int64_t ldo) {
  const int64_t nb = n / kQK, np = (nb + 1) / 2;
  const size_t colb = static_cast<size_t>(np) * Pairs<K>::kBytes;
  const size_t wub = static_cast<size_t>(np) * kWPairBytes<K>;
  std::vector<uint8_t> xbuf, wbuf;
  uint8_t* packed = Aligned(xbuf, colb * static_cast<size_t>(n_cols));
  // Tiles of 16 columns (8 where 16 would not fit in L1), the rest in tiles of 8, 4, 2, 1.
  const int64_t most = 16 * colb <= 32768 ? 16 : 8;
  const auto tile = [&](int64_t c0) {
    const int64_t left = std::min(n_cols - c0, most);
    return left >= 16 ? 16 : left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
  };
  for (int64_t c0 = 0; c0 < n_cols; c0 += tile(c0))
    for (int64_t j = 0; j < tile(c0); ++j)
      PackColumn<K>(x + (c0 + j) * xcb, nb, packed + c0 * colb + j * Pairs<K>::kBytes,
                    tile(c0) * Pairs<K>::kBytes);
  // Unpacked rows in chunks of about 128 KiB, well inside L2.
  const int64_t chunk = std::max<int64_t>(1, static_cast<int64_t>((size_t{128} << 10) / wub));
  uint8_t* wu = Aligned(wbuf, static_cast<size_t>(std::min(chunk, r1 - r0)) * wub);
  for (int64_t rc = r0; rc < r1; rc += chunk) {
    const int64_t re = std::min(r1, rc + chunk);
    for (int64_t r = rc; r < re; ++r) UnpackRow<K>(w + r * wrb, nb, wu + (r - rc) * wub);
    for (int64_t c0 = 0; c0 < n_cols;) {
      const int nc = tile(c0);
      const uint8_t* xp = packed + c0 * colb;
      switch (nc) {
        case 16: RowsPairs<K, 16>(wu, wub, rc, re, xp, np, c0, out, ldo); break;
        case 8: RowsPairs<K, 8>(wu, wub, rc, re, xp, np, c0, out, ldo); break;
        case 4: RowsPairs<K, 4>(wu, wub, rc, re, xp, np, c0, out, ldo); break;
        case 2: RowsPairs<K, 2>(wu, wub, rc, re, xp, np, c0, out, ldo); break;
        default: RowsPairs<K, 1>(wu, wub, rc, re, xp, np, c0, out, ldo); break;
      }
      c0 += nc;
    }
  }
}

// Below this many columns unpacking the weights once per call costs more than it saves: decode
// and short batches keep RowSmall (measured: 4 columns even, 8 columns 1.35x faster here).
constexpr int64_t kPairMinCols = 8;
#endif  // KVC_QUANT_VNNI512

#endif  // KVC_QUANT_X86_256

template <GgmlType T>
struct FloatRows {
  static constexpr bool kScales = false;
  template <int C>
  static void Row(const uint8_t* w, const uint8_t* const* xs, const float* const*, int64_t n,
                  float* res) {
    const float* x[C];
    for (int c = 0; c < C; ++c) x[c] = reinterpret_cast<const float*>(xs[c]);
    RowFloat<T, C>(w, x, n, res);
  }
};

// ---- matmul driver -------------------------------------------------------------------------

// Activation columns per inner kernel call: 8 where 32 vector registers hold their accumulators.
#if HWY_TARGET <= HWY_AVX3
constexpr int kCols = 8;
#else
constexpr int kCols = 4;
#endif

// Rows in chunks that stay in L1/L2 while every column tile passes over them, so each weight
// byte is fetched from memory once even for hundreds of columns.
template <class Rows>
void MatmulRows(const uint8_t* w, size_t wrb, int64_t r0, int64_t r1, const uint8_t* x,
                size_t xcb, int64_t n_cols, int64_t n, float* out, int64_t ldo) {
  const int64_t chunk = std::max<int64_t>(1, static_cast<int64_t>(32768 / std::max<size_t>(wrb, 1)));
  // The activations' f16 block scales as floats, converted once instead of once per row.
  const int64_t nb = n / kQK;
  float small[512];
  std::vector<float> large;
  float* scales = small;
  if constexpr (Rows::kScales) {
    if (2 * nb * n_cols > 512) {
      large.resize(static_cast<size_t>(2 * nb * n_cols));
      scales = large.data();
    }
    constexpr size_t bb = Rows::kActBlock;  // Q8_0 (d) or Q8_1 (d, s)
    for (int64_t c = 0; c < n_cols; ++c)
      for (int64_t i = 0; i < nb; ++i) {
        uint16_t h[2];
        std::memcpy(h, x + c * xcb + i * bb, 4);
        scales[2 * (c * nb + i)] = f16_to_f32(h[0]);
        scales[2 * (c * nb + i) + 1] = bb == sizeof(BlockQ8_1) ? f16_to_f32(h[1]) : 0.0f;
      }
  }
  for (int64_t rc = r0; rc < r1; rc += chunk) {
    const int64_t re = std::min(r1, rc + chunk);
    for (int64_t c0 = 0; c0 < n_cols; c0 += kCols) {
      const int nc = static_cast<int>(std::min<int64_t>(kCols, n_cols - c0));
      const uint8_t* xs[kCols];
      const float* xsc[kCols];
      for (int c = 0; c < nc; ++c) {
        xs[c] = x + (c0 + c) * xcb;
        xsc[c] = scales + 2 * (c0 + c) * nb;
      }
      float res[kCols];
      for (int64_t r = rc; r < re; ++r) {
        const uint8_t* wr = w + r * wrb;
        switch (nc) {
#if HWY_TARGET <= HWY_AVX3
          case 8: Rows::template Row<8>(wr, xs, xsc, n, res); break;
          case 7: Rows::template Row<7>(wr, xs, xsc, n, res); break;
          case 6: Rows::template Row<6>(wr, xs, xsc, n, res); break;
          case 5: Rows::template Row<5>(wr, xs, xsc, n, res); break;
#endif
          case 4: Rows::template Row<4>(wr, xs, xsc, n, res); break;
          case 3: Rows::template Row<3>(wr, xs, xsc, n, res); break;
          case 2: Rows::template Row<2>(wr, xs, xsc, n, res); break;
          default: Rows::template Row<1>(wr, xs, xsc, n, res); break;
        }
        for (int c = 0; c < nc; ++c) out[(c0 + c) * ldo + r] = res[c];
      }
    }
  }
}

void MatmulReference(GgmlType t, const uint8_t* w, size_t wrb, int64_t r0, int64_t r1,
                     const uint8_t* x, size_t xcb, int64_t n_cols, int64_t n, float* out,
                     int64_t ldo) {
  for (int64_t c = 0; c < n_cols; ++c)
    for (int64_t r = r0; r < r1; ++r) out[c * ldo + r] = ref::dot(t, w + r * wrb, x + c * xcb, n);
}

void MatmulT(GgmlType t, const void* wv, size_t wrb, int64_t r0, int64_t r1, const void* xv,
             size_t xcb, int64_t n_cols, int64_t n, float* out, int64_t ldo) {
  const auto* w = static_cast<const uint8_t*>(wv);
  const auto* x = static_cast<const uint8_t*>(xv);
  switch (t) {
    case GgmlType::F32: return MatmulRows<FloatRows<GgmlType::F32>>(w, wrb, r0, r1, x, xcb, n_cols, n, out, ldo);
    case GgmlType::F16: return MatmulRows<FloatRows<GgmlType::F16>>(w, wrb, r0, r1, x, xcb, n_cols, n, out, ldo);
    case GgmlType::BF16: return MatmulRows<FloatRows<GgmlType::BF16>>(w, wrb, r0, r1, x, xcb, n_cols, n, out, ldo);
#if KVC_QUANT_VNNI512
    case GgmlType::Q4_0:
      if (n_cols >= kPairMinCols) return MatmulPairs<KQ4_0>(w, wrb, r0, r1, x, xcb, n_cols, n, out, ldo);
      break;
    case GgmlType::Q4_1:
      if (n_cols >= kPairMinCols) return MatmulPairs<KQ4_1>(w, wrb, r0, r1, x, xcb, n_cols, n, out, ldo);
      break;
    case GgmlType::Q5_0:
      if (n_cols >= kPairMinCols) return MatmulPairs<KQ5_0>(w, wrb, r0, r1, x, xcb, n_cols, n, out, ldo);
      break;
    case GgmlType::Q8_0:
      if (n_cols >= kPairMinCols) return MatmulPairs<KQ8_0>(w, wrb, r0, r1, x, xcb, n_cols, n, out, ldo);
      break;
#endif
    default: break;
  }
  switch (t) {
#if KVC_QUANT_X86_256
    case GgmlType::Q4_0: return MatmulRows<SmallRows<KQ4_0>>(w, wrb, r0, r1, x, xcb, n_cols, n, out, ldo);
    case GgmlType::Q4_1: return MatmulRows<SmallRows<KQ4_1>>(w, wrb, r0, r1, x, xcb, n_cols, n, out, ldo);
    case GgmlType::Q5_0: return MatmulRows<SmallRows<KQ5_0>>(w, wrb, r0, r1, x, xcb, n_cols, n, out, ldo);
    case GgmlType::Q8_0: return MatmulRows<SmallRows<KQ8_0>>(w, wrb, r0, r1, x, xcb, n_cols, n, out, ldo);
    case GgmlType::Q4_K: return MatmulRows<K4Rows<false>>(w, wrb, r0, r1, x, xcb, n_cols, n, out, ldo);
    case GgmlType::Q5_K: return MatmulRows<K4Rows<true>>(w, wrb, r0, r1, x, xcb, n_cols, n, out, ldo);
    case GgmlType::Q6_K: return MatmulRows<Q6KRows>(w, wrb, r0, r1, x, xcb, n_cols, n, out, ldo);
#endif
    default: return MatmulReference(t, w, wrb, r0, r1, x, xcb, n_cols, n, out, ldo);
  }
}

const char* TargetNameT() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace kvc::quant
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kvc::quant {

HWY_EXPORT(DequantizeRowT);
HWY_EXPORT(QuantizeActivationT);
HWY_EXPORT(MatmulT);
HWY_EXPORT(TargetNameT);

namespace {
// Checks the boundary (type supported, n a whole number of blocks) before any kernel runs.
void check_row(GgmlType t, int64_t n) { row_bytes(t, n); }
}  // namespace

void dequantize_row(GgmlType t, const void* src, float* dst, int64_t n) {
  check_row(t, n);
  HWY_DYNAMIC_DISPATCH(DequantizeRowT)(t, src, dst, n);
}

void quantize_activation(GgmlType weight, const float* x, void* dst, int64_t n) {
  check_row(weight, n);
  check_row(activation_type(weight), n);
  HWY_DYNAMIC_DISPATCH(QuantizeActivationT)(weight, x, dst, n);
}

float dot(GgmlType weight, const void* w_row, const void* x_act, int64_t n) {
  check_row(weight, n);
  float out = 0;
  HWY_DYNAMIC_DISPATCH(MatmulT)(weight, w_row, 0, 0, 1, x_act, 0, 1, n, &out, 1);
  return out;
}

void matmul(GgmlType weight, const void* w, size_t w_row_bytes, int64_t r0, int64_t r1,
            const void* x_act, size_t x_col_bytes, int64_t n_cols, int64_t n, float* out,
            int64_t ldo) {
  check_row(weight, n);
  if (r1 <= r0 || n_cols <= 0) return;
  HWY_DYNAMIC_DISPATCH(MatmulT)(weight, w, w_row_bytes, r0, r1, x_act, x_col_bytes, n_cols, n,
                                out, ldo);
}

const char* simd_target() { return HWY_DYNAMIC_DISPATCH(TargetNameT)(); }

}  // namespace kvc::quant
#endif  // HWY_ONCE
