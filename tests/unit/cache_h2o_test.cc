// H2O against a slow reference: S/2 recent + S/2 heavy hitters by accumulated attention.
#include <gtest/gtest.h>

#include <random>

#include "cache/kv_cache.h"
#include "support/kv_f32_rows.h"

namespace kvc {
namespace {

struct NoRotation : KeyRotator {
  void rotate(float*, int64_t) const override {}
};

struct Tok {
  int64_t index;
  float score;
};

void run(int ns, int s, int stride, bool integer, uint32_t seed) {
  SCOPED_TRACE(testing::Message() << "ns=" << ns << " s=" << s << " stride=" << stride);
  const int H = 2, hd = 4;
  NoRotation none;
  CacheConfig cfg;
  cfg.policy = "h2o", cfg.sinks = ns, cfg.size = s;
  cfg = f32_storage(cfg);  // keys carry stream indices, read back exactly
  auto cache = make_layer_cache(cfg, {H, hd}, none);
  EXPECT_EQ(cache->beta(), 1.0f);
  std::vector<std::vector<Tok>> ref(H);  // non-sink tokens by age
  std::mt19937 rng(seed);
  auto mass = [&]() {
    return integer ? static_cast<float>(rng() % 3) : std::uniform_real_distribution<float>(0, 1)(rng);
  };
  int64_t t = 0;
  KvView view;
  for (int step = 0; step < 500; ++step) {
    const int n = 1 + static_cast<int>(rng() % stride);
    cache->view(view);
    for (int h = 0; h < H; ++h) {
      const KvSegment& sg = view.at(h, 1);
      ASSERT_EQ(sg.n, static_cast<int>(ref[h].size()));
      for (int i = 0; i < sg.n; ++i) {
        const float m = mass();
        sg.mass[i] = m;
        for (Tok& tok : ref[h])
          if (tok.index == static_cast<int64_t>(as_f32(sg.k)[i * hd])) tok.score += m;
      }
    }
    std::vector<float> k(static_cast<size_t>(n) * H * hd), v(k.size()), cm(static_cast<size_t>(H) * n);
    for (int j = 0; j < n; ++j)
      for (int h = 0; h < H; ++h) k[(j * H + h) * hd] = static_cast<float>(t + j), cm[h * n + j] = mass();
    cache->commit(k.data(), v.data(), n, cm.data(), nullptr);
    for (int j = 0; j < n; ++j, ++t) {
      if (t < ns) continue;
      for (int h = 0; h < H; ++h) {
        auto& r = ref[h];
        r.push_back({t, cm[h * n + j]});
        if (static_cast<int>(r.size()) <= s) continue;
        const int candidates = static_cast<int>(r.size()) - s / 2;  // all but the S/2 newest
        int victim = 0;
        for (int i = 1; i < candidates; ++i)
          if (r[i].score < r[victim].score) victim = i;
        r.erase(r.begin() + victim);
      }
    }
    for (int h = 0; h < H; ++h) {
      const auto sl = cache->slots(h);
      const int sinks = static_cast<int>(std::min<int64_t>(t, ns));
      ASSERT_EQ(sl.size(), sinks + ref[h].size());
      for (int i = 0; i < sinks; ++i) ASSERT_EQ(sl[i].index, i);
      for (size_t i = 0; i < ref[h].size(); ++i) {
        ASSERT_EQ(sl[sinks + i].index, ref[h][i].index) << "step " << step << " head " << h;
        ASSERT_EQ(sl[sinks + i].score, ref[h][i].score);
        ASSERT_EQ(sl[sinks + i].position, static_cast<int64_t>(sinks + i));
      }
    }
  }
}

TEST(H2o, MatchesReference) {
  run(0, 16, 1, false, 1);
  run(4, 24, 5, false, 2);
  run(2, 10, 3, true, 3);  // ties: the older token goes
  run(1, 7, 20, false, 4);  // odd size: 3 recent, 4 heavy
}

}  // namespace
}  // namespace kvc
