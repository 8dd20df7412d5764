#include <gtest/gtest.h>

#include "base/error.h"
#include "cache/kv_cache.h"
#include "ops/rope.h"

namespace kvc {
namespace {

TEST(FullCache, StoresEveryTokenAtItsStreamPosition) {
  Rope rope(RopeStyle::Norm, 4, 4, 10000.0);
  CacheConfig c;
  c.policy = "full";
  c.context = 5;
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
        EXPECT_EQ(s.k[j * 4 + d], k[(j * 2 + h) * 4 + d]);
        EXPECT_EQ(s.v[j * 4 + d], v[(j * 2 + h) * 4 + d]);
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
    EXPECT_EQ(s.k[i * 4], static_cast<float>(s.pos[i]));  // token p carries key value p
    EXPECT_GE(s.pos[i], 2);
  }
  auto slots = cache->slots(0);
  ASSERT_EQ(slots.size(), 3u);
  EXPECT_EQ(slots.front().position, 2);
  EXPECT_THROW(make_native_window_cache(0, {1, 4}, rope), Error);
}

}  // namespace
}  // namespace kvc
