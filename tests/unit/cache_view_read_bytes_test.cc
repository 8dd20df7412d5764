// The roofline's KV term: bytes attention reads of a view, by hand and from real policies.
#include <gtest/gtest.h>

#include <vector>

#include "cache/kv_cache.h"
#include "cache/view_read_bytes.h"

namespace kvc {
namespace {

struct NoRotation : KeyRotator {
  void rotate(float*, int64_t) const override {}
};

TEST(ViewReadBytes, CountsKeysValuesMassesAndPositions) {
  float mass[5];
  int64_t pos[3];
  KvView v;
  v.n_heads = 1, v.n_segments = 3;
  v.segments.resize(3);
  v.segments[0].n = 2;                              // keys and values only
  v.segments[1].n = 5, v.segments[1].mass = mass;   // + a float of mass per slot
  v.segments[2].n = 3, v.segments[2].pos = pos;     // + a position per slot
  const int hd = 8;
  const uint64_t kv = (2 + 5 + 3) * hd * 2 * 4;
  EXPECT_EQ(view_read_bytes(v, hd), kv + 5 * 4 + 3 * 8);
  EXPECT_EQ(view_read_bytes(KvView{}, hd), 0u);
  // Rows in their storage types: f16 is 2 bytes an element, q8_0 34 bytes per 32.
  v.segments[0].k_type = KvType::kF16, v.segments[0].v_type = KvType::kQ8_0;
  EXPECT_EQ(view_read_bytes(v, 32), (2 + 5 + 3) * 32 * 2 * 4 - 2 * 32 * 4 * 2 + 2 * (64 + 34) +
                                        5 * 4 + 3 * 8);
}

// n tokens of zeros into `cache`, one commit each (decode).
void stream(LayerKvCache& cache, const KvShape& shape, int n) {
  const std::vector<float> kv(static_cast<size_t>(shape.n_heads) * shape.head_dim, 0.0f);
  const std::vector<float> mass(shape.n_heads, 0.0f);
  KvView v;
  for (int t = 0; t < n; ++t) {
    cache.view(v);
    cache.commit(kv.data(), kv.data(), 1, cache.wants_mass() ? mass.data() : nullptr, nullptr);
  }
}

TEST(ViewReadBytes, FollowsEachPolicysLiveSlots) {
  const KvShape shape{3, 16};
  const uint64_t vec = shape.head_dim * 2 * 2;  // a key and a value, f16 (the default)
  NoRotation none;
  CacheConfig c;
  c.sinks = 4, c.size = 32, c.cascades = 4, c.context = 1000;
  KvView v;
  for (const char* policy : {"full", "window", "cascade", "h2o"}) {
    SCOPED_TRACE(policy);
    c.policy = policy;
    auto cache = make_layer_cache(c, shape, none);
    const bool full = c.policy == "full";
    // Filling: every token so far is read; the sinks carry no mass.
    stream(*cache, shape, 20);
    cache->view(v);
    const uint64_t mass = cache->wants_mass() ? 4 : 0;
    EXPECT_EQ(view_read_bytes(v, shape.head_dim), shape.n_heads * (20 * vec + 16 * mass));
    // Deep in the stream: a bounded policy reads sinks + size slots, the full cache all of them.
    stream(*cache, shape, 180);
    cache->view(v);
    const uint64_t live = full ? 200 : 4 + 32;
    EXPECT_EQ(view_read_bytes(v, shape.head_dim), shape.n_heads * (live * vec + (live - 4) * mass));
  }
}

TEST(ViewReadBytes, NativeWindowReadsPositions) {
  const KvShape shape{1, 8};
  NoRotation none;
  auto cache = make_native_window_cache(16, shape, none);
  stream(*cache, shape, 40);
  KvView v;
  cache->view(v);
  // The window's last 16 tokens, each with its position for the mask.
  EXPECT_EQ(view_read_bytes(v, shape.head_dim), 16u * (8 * 2 * 4 + 8));
}

}  // namespace
}  // namespace kvc
