// The quant module against itself: reference round trips and pinned block layouts, and every
// SIMD path (on every target this CPU supports) held to the scalar reference.
// Same target list as the kernels, so the AVX3_DL (VNNI) path is tested too.
#define HWY_WANT_AVX3_DL
#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "base/error.h"
#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/quant.h"
#include "quant/reference.h"

namespace kvc::quant {
namespace {

const GgmlType kWeightTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16,
                                 GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0,
                                 GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_K,
                                 GgmlType::Q6_K};
const GgmlType kAllTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q4_0,
                              GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q8_0, GgmlType::Q8_1,
                              GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::Q8_K};

std::string name(GgmlType t) { return type_name(static_cast<uint32_t>(t)); }

// Gaussian values with a per-block offset and a few outliers, like real weights.
std::vector<float> random_row(int64_t n, uint32_t seed, float offset = 0.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    x[i] = nd(rng) + offset * static_cast<float>((i / 32) % 3);
    if (rng() % 97 == 0) x[i] *= 6.0f;
  }
  return x;
}

std::vector<uint8_t> quantized(GgmlType t, const std::vector<float>& x) {
  std::vector<uint8_t> q(row_bytes(t, static_cast<int64_t>(x.size())));
  ref::quantize_row(t, x.data(), q.data(), static_cast<int64_t>(x.size()));
  return q;
}

int64_t test_len(GgmlType t) { return info(t).block_size == 256 ? 768 : 576; }

// ---- type table -----------------------------------------------------------------------------

TEST(QuantTypes, RowBytesAndNames) {
  EXPECT_EQ(row_bytes(GgmlType::Q4_K, 512), 288u);
  EXPECT_EQ(row_bytes(GgmlType::Q8_0, 64), 68u);
  EXPECT_EQ(row_bytes(GgmlType::F16, 3), 6u);
  EXPECT_EQ(row_bytes(GgmlType::Q6_K, 256), 210u);
  EXPECT_THROW(row_bytes(GgmlType::Q4_0, 33), Error);
  EXPECT_THROW(row_bytes(GgmlType::Q4_K, 32), Error);
  EXPECT_STREQ(type_name(12), "q4_K");
  EXPECT_STREQ(type_name(30), "bf16");
  EXPECT_STREQ(type_name(10), "q2_K");
  EXPECT_STREQ(type_name(1000), "unknown");
  EXPECT_FALSE(is_supported(GgmlType::Q2_K));
  EXPECT_TRUE(is_supported(GgmlType::Q6_K));
}

TEST(QuantTypes, UnsupportedTypesThrow) {
  std::vector<uint8_t> buf(1024);
  std::vector<float> f(256);
  EXPECT_THROW(info(GgmlType::Q2_K), Error);
  EXPECT_THROW(row_bytes(GgmlType::Q3_K, 256), Error);
  EXPECT_THROW(ref::dequantize_row(GgmlType::Q2_K, buf.data(), f.data(), 256), Error);
  EXPECT_THROW(dequantize_row(GgmlType::Q2_K, buf.data(), f.data(), 256), Error);
  EXPECT_THROW(dot(GgmlType::Q3_K, buf.data(), buf.data(), 256), Error);
  EXPECT_THROW(activation_type(GgmlType::Q8_K), Error);
  EXPECT_THROW(quantize_activation(GgmlType::Q2_K, f.data(), buf.data(), 256), Error);
}

TEST(QuantTypes, ActivationTypes) {
  EXPECT_EQ(activation_type(GgmlType::Q4_0), GgmlType::Q8_0);
  EXPECT_EQ(activation_type(GgmlType::Q5_0), GgmlType::Q8_0);
  EXPECT_EQ(activation_type(GgmlType::Q8_0), GgmlType::Q8_0);
  EXPECT_EQ(activation_type(GgmlType::Q4_1), GgmlType::Q8_1);
  EXPECT_EQ(activation_type(GgmlType::Q4_K), GgmlType::Q8_K);
  EXPECT_EQ(activation_type(GgmlType::Q5_K), GgmlType::Q8_K);
  EXPECT_EQ(activation_type(GgmlType::Q6_K), GgmlType::Q8_K);
  EXPECT_EQ(activation_type(GgmlType::F16), GgmlType::F32);
  EXPECT_EQ(activation_type(GgmlType::BF16), GgmlType::F32);
  EXPECT_EQ(activation_type(GgmlType::F32), GgmlType::F32);
}

// ---- half precision -------------------------------------------------------------------------

TEST(QuantFp16, ConversionsRoundToNearestEven) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);             // halfway past the max: inf
  EXPECT_EQ(f32_to_f16(1.0f + 1.0f / 2048), 0x3c00);  // tie goes to even
  EXPECT_EQ(f32_to_f16(1.0f + 3.0f / 2048), 0x3c02);
  EXPECT_EQ(f32_to_f16(5.9604645e-8f), 0x0001);  // smallest subnormal
  EXPECT_FLOAT_EQ(f16_to_f32(0x0001), 5.9604645e-8f);
  EXPECT_FLOAT_EQ(f16_to_f32(0x3555), 0.33325195f);
  for (uint32_t h = 0; h < 0x7c00; ++h)  // every finite positive half survives the round trip
    ASSERT_EQ(f32_to_f16(f16_to_f32(static_cast<uint16_t>(h))), h) << h;
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(f32_to_bf16(bits_to_f32(0x3f808000u)), 0x3f80);  // tie to even
  EXPECT_EQ(f32_to_bf16(bits_to_f32(0x3f818000u)), 0x3f82);
  EXPECT_FLOAT_EQ(bf16_to_f32(0xc040), -3.0f);
}

// ---- reference: layouts and round trips -----------------------------------------------------

// Hand-built blocks pin the bit positions that are easy to get wrong.
TEST(QuantReference, Q5_0HighBits) {
  BlockQ5_0 b{};
  b.d = f32_to_f16(0.5f);
  const uint32_t qh = (1u << 3) | (1u << 16) | (1u << 31);
  std::memcpy(b.qh, &qh, 4);
  b.qs[3] = 0x21;   // element 3 low nibble 1, element 19 high nibble 2
  b.qs[15] = 0xF0;  // element 31 high nibble 15
  float y[32];
  ref::dequantize_row(GgmlType::Q5_0, &b, y, 32);
  EXPECT_FLOAT_EQ(y[0], -8.0f);                // (0 - 16) * 0.5
  EXPECT_FLOAT_EQ(y[3], (17 - 16) * 0.5f);     // bit 3 of qh
  EXPECT_FLOAT_EQ(y[16], (16 - 16) * 0.5f);    // bit 16 belongs to element 16
  EXPECT_FLOAT_EQ(y[19], (2 - 16) * 0.5f);
  EXPECT_FLOAT_EQ(y[31], (31 - 16) * 0.5f);
}

TEST(QuantReference, Q4_KScalePacking) {
  BlockQ4_K b{};
  b.d = f32_to_f16(0.25f);
  b.dmin = f32_to_f16(0.5f);
  b.scales[1] = 7 | (2 << 6);   // sub-block 1 scale 7; top bits of sub-block 5's scale = 2
  b.scales[5] = 3 | (1 << 6);   // sub-block 1 min 3; top bits of sub-block 5's min = 1
  b.scales[9] = 0x4 | (0x6 << 4);  // sub-block 5: scale low 4 bits 4, min low 4 bits 6
  b.qs[32 * 0 + 2] = 0x90;      // element 32 + 2 (sub-block 1, high nibble) = 9
  b.qs[32 * 2 + 7] = 0xB0;      // element 160 + 7 (sub-block 5, high nibble) = 11
  std::vector<float> y(256);
  ref::dequantize_row(GgmlType::Q4_K, &b, y.data(), 256);
  EXPECT_FLOAT_EQ(y[34], 0.25f * 7 * 9 - 0.5f * 3);
  EXPECT_FLOAT_EQ(y[167], 0.25f * (4 + 32) * 11 - 0.5f * (6 + 16));
  EXPECT_FLOAT_EQ(y[0], 0.0f);  // sub-block 0: scale 0, min 0
}

TEST(QuantReference, Q6_KLayout) {
  BlockQ6_K b{};
  b.d = f32_to_f16(0.125f);
  b.scales[12] = -3;
  // Element 200 = half 1, quarter 2, l = 8: high nibble of ql[64 + 8], bits 4-5 of qh[32 + 8].
  b.ql[72] = 0xA0;
  b.qh[40] = 3 << 4;
  std::vector<float> y(256);
  ref::dequantize_row(GgmlType::Q6_K, &b, y.data(), 256);
  EXPECT_FLOAT_EQ(y[200], 0.125f * -3 * ((0xA | 0x30) - 32));
  EXPECT_FLOAT_EQ(y[201], 0.125f * -3 * -32);
  EXPECT_FLOAT_EQ(y[0], 0.0f);  // scale 0
}

// RMS error of quantize -> dequantize relative to the RMS of the data.
double round_trip_error(GgmlType t, const std::vector<float>& x, bool fast) {
  const auto q = quantized(t, x);
  std::vector<float> y(x.size());
  if (fast)
    dequantize_row(t, q.data(), y.data(), static_cast<int64_t>(x.size()));
  else
    ref::dequantize_row(t, q.data(), y.data(), static_cast<int64_t>(x.size()));
  double err = 0, norm = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    err += (x[i] - y[i]) * (x[i] - y[i]);
    norm += x[i] * x[i];
  }
  return std::sqrt(err / norm);
}

double max_rms_error(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return 0;
    case GgmlType::F16: return 5e-4;
    case GgmlType::BF16: return 4e-3;
    case GgmlType::Q8_0:
    case GgmlType::Q8_1: return 0.01;
    case GgmlType::Q8_K: return 0.02;  // one scale per 256 values: outliers cost more
    case GgmlType::Q6_K: return 0.03;
    case GgmlType::Q5_0:
    case GgmlType::Q5_K: return 0.08;
    default: return 0.15;  // 4-bit
  }
}

TEST(QuantReference, RoundTripErrorIsBounded) {
  for (GgmlType t : kAllTypes) {
    const auto x = random_row(test_len(t), 7, 1.5f);
    const double err = round_trip_error(t, x, false);
    EXPECT_LE(err, max_rms_error(t)) << name(t);
    RecordProperty(name(t), std::to_string(err));
  }
}

TEST(QuantReference, ZeroRowsStayZero) {
  for (GgmlType t : kAllTypes) {
    const std::vector<float> x(static_cast<size_t>(test_len(t)), 0.0f);
    const auto q = quantized(t, x);
    std::vector<float> y(x.size(), 1.0f);
    ref::dequantize_row(t, q.data(), y.data(), test_len(t));
    for (float v : y) ASSERT_EQ(v, 0.0f) << name(t);
  }
}

TEST(QuantReference, Q8_1CarriesScaledSum) {
  const auto x = random_row(64, 3);
  const auto q = quantized(GgmlType::Q8_1, x);
  const auto* b = reinterpret_cast<const BlockQ8_1*>(q.data());
  for (int i = 0; i < 2; ++i) {
    int sum = 0;
    for (int j = 0; j < 32; ++j) sum += b[i].qs[j];
    EXPECT_NEAR(f16_to_f32(b[i].s), f16_to_f32(b[i].d) * sum,
                1e-3 * std::fabs(f16_to_f32(b[i].d) * sum) + 1e-6);
  }
}

TEST(QuantReference, Q8_KBlockSums) {
  const auto x = random_row(512, 4);
  const auto q = quantized(GgmlType::Q8_K, x);
  const auto* b = reinterpret_cast<const BlockQ8_K*>(q.data());
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 16; ++j) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += b[i].qs[16 * j + l];
      EXPECT_EQ(b[i].bsums[j], sum);
    }
}

// The quantized dot approximates the float dot of the dequantized weights with the activations.
TEST(QuantReference, DotApproximatesFloatDot) {
  for (GgmlType t : kWeightTypes) {
    const int64_t n = test_len(t);
    const auto w = quantized(t, random_row(n, 11, 0.5f));
    const auto x = random_row(n, 12);
    std::vector<float> wf(static_cast<size_t>(n));
    ref::dequantize_row(t, w.data(), wf.data(), n);
    double exact = 0, mag = 0;
    for (int64_t i = 0; i < n; ++i) {
      exact += static_cast<double>(wf[i]) * x[i];
      mag += std::fabs(static_cast<double>(wf[i]) * x[i]);
    }
    std::vector<uint8_t> a(row_bytes(activation_type(t), n));
    ref::quantize_activation(t, x.data(), a.data(), n);
    const double tol = (activation_type(t) == GgmlType::F32 ? 1e-6 : 0.02) * mag;
    EXPECT_NEAR(ref::dot(t, w.data(), a.data(), n), exact, tol) << name(t);
  }
}

// ---- fast paths against the reference, on every target --------------------------------------

// Sum over elements of |w_i * x_i| with both sides dequantized: the scale of rounding error.
double dot_magnitude(GgmlType t, const uint8_t* w, const uint8_t* a, int64_t n) {
  std::vector<float> wf(static_cast<size_t>(n)), xf(static_cast<size_t>(n));
  ref::dequantize_row(t, w, wf.data(), n);
  ref::dequantize_row(activation_type(t), a, xf.data(), n);
  double mag = 0;
  for (int64_t i = 0; i < n; ++i) mag += std::fabs(static_cast<double>(wf[i]) * xf[i]);
  return mag;
}

// One matmul output against the reference dot product of its weight row and activation column.
::testing::AssertionResult matches_reference_dot(GgmlType t, const uint8_t* wr, const uint8_t* xc,
                                                 int64_t n, float got) {
  const double want = ref::dot(t, wr, xc, n), tol = 1e-5 * dot_magnitude(t, wr, xc, n);
  if (std::fabs(got - want) <= tol) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << got << " vs reference " << want << " (tolerance " << tol << ")";
}

// Runs matmul over all `rows` weight rows and the first n_cols activation columns (output
// leading dimension = rows) and holds every output to the reference dot product.
void expect_matmul_matches_reference(GgmlType t, const std::vector<uint8_t>& w, size_t wrb,
                                     int64_t rows, const std::vector<uint8_t>& x, size_t xcb,
                                     int64_t n_cols, int64_t n) {
  std::vector<float> out(static_cast<size_t>(rows * n_cols));
  matmul(t, w.data(), wrb, 0, rows, x.data(), xcb, n_cols, n, out.data(), rows);
  for (int64_t c = 0; c < n_cols; ++c)
    for (int64_t r = 0; r < rows; ++r)
      ASSERT_TRUE(matches_reference_dot(t, w.data() + r * wrb, x.data() + c * xcb, n, out[c * rows + r]))
          << name(t) << " n=" << n << " n_cols=" << n_cols << " r=" << r << " c=" << c;
}

class QuantSimd : public ::testing::TestWithParam<int64_t> {
 protected:
  void SetUp() override { hwy::SetSupportedTargetsForTest(GetParam()); }
  void TearDown() override { hwy::SetSupportedTargetsForTest(0); }
};

TEST_P(QuantSimd, ReportsItsTarget) {
  // The first dispatch picks the target; simd_target() names it.
  std::vector<float> f(32);
  std::vector<uint8_t> q(34);
  quantize_activation(GgmlType::Q8_0, f.data(), q.data(), 32);
  EXPECT_STREQ(simd_target(), hwy::TargetName(GetParam()));
}

TEST_P(QuantSimd, DequantizeMatchesReference) {
  for (GgmlType t : kAllTypes) {
    for (int64_t n : {info(t).block_size, test_len(t)}) {
      const auto q = quantized(t, random_row(n, 21, 1.0f));
      std::vector<float> want(static_cast<size_t>(n)), got(static_cast<size_t>(n));
      ref::dequantize_row(t, q.data(), want.data(), n);
      dequantize_row(t, q.data(), got.data(), n);
      for (int64_t i = 0; i < n; ++i)
        ASSERT_NEAR(got[i], want[i], 1e-6f * (1.0f + std::fabs(want[i])))
            << name(t) << " n=" << n << " i=" << i;
    }
  }
}

TEST_P(QuantSimd, QuantizeActivationMatchesReferenceBitForBit) {
  for (GgmlType t : kWeightTypes) {
    for (int64_t n : {info(t).block_size == 256 ? int64_t{256} : int64_t{32}, test_len(t)}) {
      auto x = random_row(n, 31, 0.3f);
      if (n > 64) std::fill(x.begin() + 32, x.begin() + 64, 0.0f);  // an all-zero block
      const size_t bytes = row_bytes(activation_type(t), n);
      std::vector<uint8_t> want(bytes, 0xAB), got(bytes, 0xCD);
      ref::quantize_activation(t, x.data(), want.data(), n);
      quantize_activation(t, x.data(), got.data(), n);
      EXPECT_EQ(std::memcmp(want.data(), got.data(), bytes), 0) << name(t) << " n=" << n;
    }
  }
}

// A NaN or Inf activation (a broken model) must neither read outside its block nor vanish: the
// block's scale turns non-finite, so the NaN reaches the logits, where the session reports it.
TEST_P(QuantSimd, NonFiniteActivationsStayInBoundsAndPoisonTheBlock) {
  const float kBad[] = {NAN, -NAN, INFINITY, -INFINITY};
  for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q4_K}) {
    const GgmlType at = activation_type(t);
    const int64_t n = info(t).block_size == 256 ? 256 : 32;
    for (float bad : kBad) {
      for (int64_t pos : {int64_t{0}, n / 2 + 1, n - 1}) {
        // Exactly one block on the heap: a read past it is a sanitizer report.
        auto x = std::make_unique<float[]>(static_cast<size_t>(n));
        const auto row = random_row(n, 41);
        std::copy(row.begin(), row.end(), x.get());
        x[pos] = bad;
        const size_t bytes = row_bytes(at, n);
        for (bool fast : {true, false}) {
          std::vector<uint8_t> q(bytes);
          if (fast)
            quantize_activation(t, x.get(), q.data(), n);
          else
            ref::quantize_activation(t, x.get(), q.data(), n);
          std::vector<float> y(static_cast<size_t>(n));
          ref::dequantize_row(at, q.data(), y.data(), n);
          EXPECT_TRUE(std::any_of(y.begin(), y.end(), [](float v) { return !std::isfinite(v); }))
              << name(at) << (fast ? " fast" : " reference") << " lost " << bad << " at " << pos;
        }
      }
    }
  }
}

TEST_P(QuantSimd, DotMatchesReference) {
  for (GgmlType t : kWeightTypes) {
    for (int64_t n : {info(t).block_size == 256 ? int64_t{256} : int64_t{32}, test_len(t),
                      4 * test_len(t)}) {
      for (uint32_t seed = 0; seed < 3; ++seed) {
        const auto w = quantized(t, random_row(n, 100 + seed, 0.7f));
        const auto x = random_row(n, 200 + seed);
        std::vector<uint8_t> a(row_bytes(activation_type(t), n));
        ref::quantize_activation(t, x.data(), a.data(), n);
        const double want = ref::dot(t, w.data(), a.data(), n);
        const double got = dot(t, w.data(), a.data(), n);
        EXPECT_NEAR(got, want, 1e-5 * dot_magnitude(t, w.data(), a.data(), n))
            << name(t) << " n=" << n << " seed=" << seed;
      }
    }
  }
}

TEST_P(QuantSimd, MatmulMatchesReferenceDots) {
  for (GgmlType t : kWeightTypes) {
    const int64_t n = test_len(t);
    // Padded strides: rows and columns need not be packed back to back. The padding keeps the
    // blocks' natural alignment (2 bytes for weights, 4 for float and Q8_K activations), as
    // GGUF data and the engine's activation buffers always do.
    const size_t wrb = row_bytes(t, n) + 6, xcb = row_bytes(activation_type(t), n) + 12;
    const int64_t rows = 13;
    std::vector<uint8_t> w(wrb * rows);
    for (int64_t r = 0; r < rows; ++r) {
      const auto row = random_row(n, 300 + static_cast<uint32_t>(r), 0.5f);
      ref::quantize_row(t, row.data(), w.data() + r * wrb, n);
    }
    for (int64_t n_cols : {1, 2, 3, 5, 8, 17}) {
      std::vector<uint8_t> x(xcb * n_cols);
      for (int64_t c = 0; c < n_cols; ++c) {
        const auto col = random_row(n, 400 + static_cast<uint32_t>(c));
        ref::quantize_activation(t, col.data(), x.data() + c * xcb, n);
      }
      for (auto [r0, r1] : {std::pair<int64_t, int64_t>{0, 13}, {3, 10}, {5, 6}}) {
        const int64_t ldo = rows + 2;
        std::vector<float> out(static_cast<size_t>(ldo * n_cols), -12345.0f);
        matmul(t, w.data(), wrb, r0, r1, x.data(), xcb, n_cols, n, out.data(), ldo);
        for (int64_t c = 0; c < n_cols; ++c) {
          for (int64_t r = 0; r < ldo; ++r) {
            const float got = out[c * ldo + r];
            if (r < r0 || r >= r1) {
              ASSERT_EQ(got, -12345.0f) << name(t) << ": wrote outside rows [r0, r1)";
              continue;
            }
            ASSERT_TRUE(matches_reference_dot(t, w.data() + r * wrb, x.data() + c * xcb, n, got))
                << name(t) << " n_cols=" << n_cols << " r=" << r << " c=" << c;
          }
        }
      }
    }
  }
}

// Prefill shapes: many columns (the 512-bit path packs them once per call and takes 8 at a
// time) with an odd number of 32-element blocks (its last block pair is half empty), and
// extreme values (every weight and activation at full scale, signs mixed) that would overflow
// a 16-bit pair sum or misplace the x + 128 correction.
TEST_P(QuantSimd, MatmulManyColumnsOddBlocksMatchesReference) {
  for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q8_0}) {
    for (int64_t n : {int64_t{32}, int64_t{96}, int64_t{608}}) {
      const size_t wrb = row_bytes(t, n), xcb = row_bytes(activation_type(t), n);
      const int64_t rows = 7, n_cols = 21;
      std::vector<uint8_t> w(wrb * rows), x(xcb * n_cols);
      for (int64_t r = 0; r < rows; ++r) {
        auto row = random_row(n, 500 + static_cast<uint32_t>(r), 0.3f);
        if (r == 0)  // +-1 alternating in pairs: every quant at its largest magnitude
          for (int64_t i = 0; i < n; ++i) row[i] = (i / 2) % 2 ? -1.0f : 1.0f;
        ref::quantize_row(t, row.data(), w.data() + r * wrb, n);
      }
      for (int64_t c = 0; c < n_cols; ++c) {
        auto col = random_row(n, 600 + static_cast<uint32_t>(c));
        if (c == 0)
          for (int64_t i = 0; i < n; ++i) col[i] = (i / 2) % 2 ? -1.0f : 1.0f;
        if (c == 1)
          for (int64_t i = 0; i < n; ++i) col[i] = (i / 2) % 2 ? 1.0f : -1.0f;
        ref::quantize_activation(t, col.data(), x.data() + c * xcb, n);
      }
      ASSERT_NO_FATAL_FAILURE(expect_matmul_matches_reference(t, w, wrb, rows, x, xcb, n_cols, n));
    }
  }
}

// Every column count up to two tiles of the widest kernel, so each tile width (and tail) runs.
TEST_P(QuantSimd, MatmulEveryColumnCountMatchesReference) {
  for (GgmlType t : kWeightTypes) {
    const int64_t n = test_len(t), rows = 3;
    const size_t wrb = row_bytes(t, n), xcb = row_bytes(activation_type(t), n);
    std::vector<uint8_t> w(wrb * rows), x(xcb * 33);
    for (int64_t r = 0; r < rows; ++r)
      ref::quantize_row(t, random_row(n, 700 + static_cast<uint32_t>(r), 0.4f).data(),
                        w.data() + r * wrb, n);
    for (int64_t c = 0; c < 33; ++c)
      ref::quantize_activation(t, random_row(n, 800 + static_cast<uint32_t>(c)).data(),
                               x.data() + c * xcb, n);
    for (int64_t n_cols = 1; n_cols <= 33; ++n_cols)
      ASSERT_NO_FATAL_FAILURE(expect_matmul_matches_reference(t, w, wrb, rows, x, xcb, n_cols, n));
  }
}

std::vector<int64_t> targets() { return hwy::SupportedAndGeneratedTargets(); }

INSTANTIATE_TEST_SUITE_P(AllTargets, QuantSimd, ::testing::ValuesIn(targets()),
                         [](const ::testing::TestParamInfo<int64_t>& p) {
                           return std::string(hwy::TargetName(p.param));
                         });

}  // namespace
}  // namespace kvc::quant
