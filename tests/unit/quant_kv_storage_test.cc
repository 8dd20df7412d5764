// The KV storage codec (quant/kv_storage.h) against plain scalar definitions of its formats:
// f32 as is, f16 by the portable half conversion, q8_0 as GGML's block of 32 (f16 scale amax/127,
// int8 round to nearest).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "quant/fp16.h"
#include "quant/kv_storage.h"

namespace kvc {
namespace {

std::vector<float> random_row(int n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& f : x) f = nd(rng);
  return x;
}

TEST(KvStorage, NamesParseBack) {
  for (KvType t : {KvType::kF32, KvType::kF16, KvType::kQ8_0})
    EXPECT_EQ(parse_kv_type(kv_type_name(t)), t);
  EXPECT_EQ(parse_kv_type("q4_0"), std::nullopt);
  EXPECT_EQ(parse_kv_type("F16"), std::nullopt);
  EXPECT_EQ(parse_kv_type(""), std::nullopt);
}

TEST(KvStorage, RowBytes) {
  EXPECT_EQ(kv_row_bytes(KvType::kF32, 64), 256u);
  EXPECT_EQ(kv_row_bytes(KvType::kF16, 64), 128u);
  EXPECT_EQ(kv_row_bytes(KvType::kQ8_0, 64), 68u);  // 2 blocks of 2 + 32 bytes
  EXPECT_EQ(kv_row_bytes(KvType::kQ8_0, 256), 272u);
  EXPECT_EQ(kv_type_block(KvType::kQ8_0), 32);
  EXPECT_EQ(kv_type_block(KvType::kF16), 1);
}

TEST(KvStorage, F32RoundTripsExactly) {
  const auto x = random_row(24, 1);
  std::vector<uint8_t> row(kv_row_bytes(KvType::kF32, 24));
  std::vector<float> y(24);
  kv_encode_row(KvType::kF32, x.data(), 24, row.data());
  kv_decode_row(KvType::kF32, row.data(), 24, y.data());
  EXPECT_EQ(x, y);
}

TEST(KvStorage, F16IsTheHalfOfEachElement) {
  auto x = random_row(40, 2, 3.0f);
  x[0] = 0.0f, x[1] = -0.0f, x[2] = 65504.0f, x[3] = 1e-6f;  // zeros, the largest half, a subnormal
  std::vector<uint8_t> row(kv_row_bytes(KvType::kF16, 40));
  std::vector<float> y(40);
  kv_encode_row(KvType::kF16, x.data(), 40, row.data());
  kv_decode_row(KvType::kF16, row.data(), 40, y.data());
  for (int i = 0; i < 40; ++i) {
    uint16_t h;
    std::memcpy(&h, &row[2 * i], 2);
    EXPECT_EQ(h, quant::f32_to_f16(x[i])) << i;
    EXPECT_EQ(y[i], quant::f16_to_f32(h)) << i;
    if (i == 3) continue;  // a subnormal half keeps fewer bits
    EXPECT_LE(std::fabs(y[i] - x[i]), std::fabs(x[i]) * (1.0f / 2048)) << i;
  }
}

TEST(KvStorage, Q8_0IsGgmlsBlockOf32) {
  const int n = 64;
  auto x = random_row(n, 3, 2.0f);
  for (int i = 32; i < 64; ++i) x[i] = 0.0f;  // an all-zero block: scale 0, no division by it
  x[5] = -7.5f;                               // the block's largest |x|: its int8 is -127
  std::vector<uint8_t> row(kv_row_bytes(KvType::kQ8_0, n));
  std::vector<float> y(n);
  kv_encode_row(KvType::kQ8_0, x.data(), n, row.data());
  kv_decode_row(KvType::kQ8_0, row.data(), n, y.data());
  for (int b = 0; b < n / 32; ++b) {
    const uint8_t* block = &row[static_cast<size_t>(b) * 34];
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
    uint16_t h;
    std::memcpy(&h, block, 2);
    EXPECT_EQ(h, quant::f32_to_f16(amax / 127.0f)) << "block " << b;
    const float d = quant::f16_to_f32(h);
    for (int j = 0; j < 32; ++j) {
      const int i = b * 32 + j;
      const int8_t q = static_cast<int8_t>(block[2 + j]);
      const float want = amax == 0.0f ? 0.0f : std::nearbyint(x[i] * (127.0f / amax));
      EXPECT_EQ(q, static_cast<int8_t>(want)) << i;
      EXPECT_EQ(y[i], static_cast<float>(q) * d) << i;
      EXPECT_LE(std::fabs(y[i] - x[i]), amax / 254.0f + amax * (1.0f / 1024)) << i;
    }
  }
  EXPECT_EQ(static_cast<int8_t>(row[2 + 5]), -127);
}

// Encoding what was decoded gives the same bytes: a stored row survives a move that does not
// change it (a rotation by 0) without drifting.
TEST(KvStorage, EncodingADecodedRowIsStable) {
  for (KvType t : {KvType::kF32, KvType::kF16, KvType::kQ8_0}) {
    const auto x = random_row(64, 4);
    std::vector<uint8_t> a(kv_row_bytes(t, 64)), b(a.size());
    std::vector<float> y(64);
    kv_encode_row(t, x.data(), 64, a.data());
    kv_decode_row(t, a.data(), 64, y.data());
    kv_encode_row(t, y.data(), 64, b.data());
    EXPECT_EQ(a, b) << kv_type_name(t);
  }
}

// Rounding rows in place gives what the cache will hand back for them: decode(encode(x)) per row.
TEST(KvStorage, RoundRowsIsWhatTheCacheReturns) {
  for (KvType t : {KvType::kF32, KvType::kF16, KvType::kQ8_0}) {
    const int rows = 3, hd = 64;
    const auto x = random_row(rows * hd, 5, 4.0f);
    std::vector<float> rounded = x, want(x.size());
    kv_round_rows(t, rounded.data(), rows, hd);
    std::vector<uint8_t> b(kv_row_bytes(t, hd));
    for (int r = 0; r < rows; ++r) {
      kv_encode_row(t, x.data() + r * hd, hd, b.data());
      kv_decode_row(t, b.data(), hd, want.data() + r * hd);
    }
    EXPECT_EQ(rounded, want) << kv_type_name(t);
    if (t != KvType::kF32) {
      EXPECT_NE(rounded, x) << kv_type_name(t);
    }
  }
}

}  // namespace
}  // namespace kvc
