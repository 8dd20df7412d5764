#include <gtest/gtest.h>

#include <cmath>

#include "base/error.h"
#include "cache/kv_cache.h"
#include "ops/rope.h"
#include "support/kv_f32_rows.h"

namespace kvc {
namespace {

TEST(FullCache, StoresEveryTokenAtItsStreamPosition) {
  Rope rope(RopeStyle::Norm, 4, 4, 10000.0);
  CacheConfig c;
  c.policy = "full";
  c.context = 5;
  c = f32_storage(c);
  auto cache = make_layer_cache(c, {2, 4}, rope);
  EXPECT_FALSE(cache->wants_mass());
  EXPECT_EQ(cache->room(), 5);
  std::vector<float> k(3 * 2 * 4), v(k.size());
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<float>(i), v[i] = -static_cast<float>(i);
  cache->commit(k.data(), v.data(), 3, nullptr, nullptr);
  EXPECT_EQ(cache->next_position(), 3);
  EXPECT_EQ(cache->room(), 2);
  KvView view;
  cache->view(view);
  ASSERT_EQ(view.n_segments, 1);
  for (int h = 0; h < 2; ++h) {
    const KvSegment& s = view.at(h, 0);
    EXPECT_EQ(s.n, 3);
    EXPECT_EQ(s.pos_offset, 0);
    for (int j = 0; j < 3; ++j)
      for (int d = 0; d < 4; ++d) {
        EXPECT_EQ(as_f32(s.k)[j * 4 + d], k[(j * 2 + h) * 4 + d]);
        EXPECT_EQ(as_f32(s.v)[j * 4 + d], v[(j * 2 + h) * 4 + d]);
      }
  }
  auto slots = cache->slots(1);
  ASSERT_EQ(slots.size(), 3u);
  EXPECT_EQ(slots[2].index, 2);
  EXPECT_EQ(slots[2].position, 2);
  EXPECT_EQ(cache->bytes(), 2u * 5 * 2 * 4 * sizeof(float));
  EXPECT_THROW(cache->commit(k.data(), v.data(), 3, nullptr, nullptr), Error);
  cache->clear();
  EXPECT_EQ(cache->next_position(), 0);
  EXPECT_EQ(cache->room(), 5);
}

// The default stores f16: half the bytes, the same small integers back.
TEST(FullCache, StoresF16ByDefault) {
  Rope rope(RopeStyle::Norm, 4, 4, 10000.0);
  CacheConfig c;
  c.policy = "full";
  c.context = 5;
  auto cache = make_layer_cache(c, {2, 4}, rope);
  EXPECT_EQ(cache->bytes(), 2u * 5 * 2 * 4 * 2);
  std::vector<float> k(2 * 4), v(k.size());
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<float>(i), v[i] = 0.5f;
  cache->commit(k.data(), v.data(), 1, nullptr, nullptr);
  KvView view;
  cache->view(view);
  EXPECT_EQ(view.at(1, 0).k_type, KvType::kF16);
  EXPECT_EQ(decoded_row(view.at(1, 0).k, KvType::kF16, 4, 0), std::vector<float>({4, 5, 6, 7}));
}

// q8_0 stores blocks of 32: a head_dim that is not a multiple of 32 is refused when the cache is
// made, with the reason.
TEST(FullCache, RefusesQ8_0RowsThatAreNotWholeBlocks) {
  Rope rope(RopeStyle::Norm, 48, 48, 10000.0);
  CacheConfig c;
  c.policy = "full";
  c.type_v = "q8_0";
  EXPECT_NO_THROW(make_layer_cache(c, {1, 64}, rope));
  try {
    make_layer_cache(c, {1, 48}, rope);
    FAIL() << "q8_0 took head_dim 48";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("q8_0"), std::string::npos) << e.what();
  }
  c.type_v = "q4_0";
  EXPECT_THROW(make_layer_cache(c, {1, 64}, rope), Error);
}

TEST(FullCache, RejectsBadConfig) {
  Rope rope(RopeStyle::Norm, 4, 4, 10000.0);
  CacheConfig c;
  c.policy = "nope";
  EXPECT_THROW(make_layer_cache(c, {1, 4}, rope), Error);
  c.policy = "full";
  EXPECT_THROW(make_layer_cache(c, {0, 4}, rope), Error);
}

}  // namespace
}  // namespace kvc

namespace kvc {
namespace {

TEST(NativeWindowCache, KeepsTheLastWindowTokensAtStreamPositions) {
  Rope rope(RopeStyle::Neox, 4, 4, 10000.0);
  auto cache = make_native_window_cache(3, {1, 4}, rope);
  std::vector<float> k(5 * 4), v(k.size());
  for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<float>(i / 4), v[i] = k[i];
  cache->commit(k.data(), v.data(), 5, nullptr, nullptr);
  EXPECT_EQ(cache->next_position(), 5);
  KvView view;
  cache->view(view);
  const KvSegment& s = view.at(0, 0);
  ASSERT_EQ(s.n, 3);
  ASSERT_NE(s.pos, nullptr);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(as_f32(s.k)[i * 4], static_cast<float>(s.pos[i]));  // token p carries key value p
    EXPECT_GE(s.pos[i], 2);
  }
  auto slots = cache->slots(0);
  ASSERT_EQ(slots.size(), 3u);
  EXPECT_EQ(slots.front().position, 2);
  EXPECT_THROW(make_native_window_cache(0, {1, 4}, rope), Error);
}

// Gemma's local layers store their rows in the shape's types: what comes back is each row
// encoded once (no rotation ever moves them).
TEST(NativeWindowCache, StoresRowsInTheShapesTypes) {
  Rope rope(RopeStyle::Neox, 32, 32, 10000.0);
  for (KvType t : {KvType::kF16, KvType::kQ8_0}) {
    SCOPED_TRACE(kv_type_name(t));
    const KvShape shape{2, 32, t, KvType::kF16};
    auto cache = make_native_window_cache(4, shape, rope);
    std::vector<float> k(6 * 2 * 32), v(k.size());
    for (size_t i = 0; i < k.size(); ++i)
      k[i] = std::sin(0.37f * static_cast<float>(i)), v[i] = std::cos(0.11f * static_cast<float>(i));
    cache->commit(k.data(), v.data(), 6, nullptr, nullptr);
    EXPECT_EQ(cache->bytes(), 2u * 4 * (kv_row_bytes(t, 32) + 64) + 4 * sizeof(int64_t));
    KvView view;
    cache->view(view);
    for (int h = 0; h < 2; ++h) {
      const KvSegment& s = view.at(h, 0);
      ASSERT_EQ(s.k_type, t);
      ASSERT_EQ(s.v_type, KvType::kF16);
      for (int i = 0; i < s.n; ++i) {
        const size_t src = (static_cast<size_t>(s.pos[i]) * 2 + h) * 32;
        std::vector<uint8_t> want_k(kv_row_bytes(t, 32)), want_v(64);
        kv_encode_row(t, &k[src], 32, want_k.data());
        kv_encode_row(KvType::kF16, &v[src], 32, want_v.data());
        EXPECT_EQ(decoded_row(s.k, t, 32, i), decoded_row(want_k.data(), t, 32, 0));
        EXPECT_EQ(decoded_row(s.v, KvType::kF16, 32, i), decoded_row(want_v.data(), KvType::kF16, 32, 0));
      }
    }
  }
}

}  // namespace
}  // namespace kvc
