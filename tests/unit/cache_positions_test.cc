// The position trick against the slow way: a reference that keeps every key BEFORE RoPE and
// rotates the cache's tokens at their cache positions (sinks 0.., then by age, queries next) on
// every step. The fast policies store keys rotated at virtual positions and rotate only moved
// tokens; attention outputs must agree.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "cache/kv_cache.h"
#include "ops/attention.h"

namespace kvc {
namespace {

void check_policy(const std::string& policy, int ns, int s, int c, RopeStyle style, uint32_t seed) {
  SCOPED_TRACE(policy + " c=" + std::to_string(c));
  const int H = 2, NQ = 4, hd = 16, steps = 260;
  Rope rope(style, hd, hd, 10000.0);
  CacheConfig cfg;
  cfg.policy = policy, cfg.sinks = ns, cfg.size = s, cfg.cascades = c, cfg.beta = 0.95f;
  cfg.context = 4000;
  auto cache = make_layer_cache(cfg, {H, hd}, rope);

  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> raw_k, all_v;  // [t][H][hd], keys un-rotated
  ThreadPool pool(2);
  KvView view;
  int64_t t = 0;
  double worst = 0;
  for (int step = 0; step < steps; ++step) {
    const int n = std::uniform_int_distribution<int>(1, 6)(rng);
    const int64_t p0 = cache->next_position();
    std::vector<float> q(static_cast<size_t>(n) * NQ * hd), k(static_cast<size_t>(n) * H * hd), v(k.size());
    for (float& x : q) x = nd(rng);
    for (float& x : k) x = nd(rng);
    for (float& x : v) x = nd(rng);
    raw_k.insert(raw_k.end(), k.begin(), k.end());
    all_v.insert(all_v.end(), v.begin(), v.end());
    for (int j = 0; j < n; ++j) rope.apply_heads(&k[static_cast<size_t>(j) * H * hd], H, p0 + j);

    // Reference first (before the cache changes): keys rotated at their cache positions.
    std::vector<std::vector<float>> rk(H), rv(H);
    KvView ref_view;
    ref_view.n_heads = H, ref_view.n_segments = 1;
    for (int h = 0; h < H; ++h) {
      const auto sl = cache->slots(h);
      ASSERT_EQ(static_cast<int64_t>(sl.size()), p0) << "queries sit right after the cache";
      for (size_t r = 0; r < sl.size(); ++r) {
        ASSERT_EQ(sl[r].position, static_cast<int64_t>(r)) << "cache positions are contiguous";
        const size_t at = (static_cast<size_t>(sl[r].index) * H + h) * hd;
        std::vector<float> key(raw_k.begin() + at, raw_k.begin() + at + hd);
        rope.apply(key.data(), sl[r].position);
        rk[h].insert(rk[h].end(), key.begin(), key.end());
        rv[h].insert(rv[h].end(), all_v.begin() + at, all_v.begin() + at + hd);
      }
    }
    for (int h = 0; h < H; ++h)
      ref_view.segments.push_back({rk[h].data(), rv[h].data(), static_cast<int>(rv[h].size() / hd), 0, nullptr, nullptr});
    std::vector<float> want(q.size()), got(q.size()), cm(static_cast<size_t>(H) * n);
    AttentionArgs a;
    a.n_tokens = n, a.n_q_heads = NQ, a.n_kv_heads = H, a.head_dim = hd, a.q = q.data();
    a.q_pos0 = p0, a.rope = &rope, a.k_chunk = k.data(), a.v_chunk = v.data();
    a.scale = 1.0f / std::sqrt(static_cast<float>(hd));
    a.view = &ref_view, a.out = want.data();
    attention_reference(a);

    // Fast path.
    cache->view(view);
    a.view = &view, a.out = got.data(), a.pool = &pool;
    a.want_mass = cache->wants_mass(), a.beta = cache->beta(), a.chunk_mass = cm.data();
    attention(a);
    for (size_t i = 0; i < got.size(); ++i) {
      const double err = std::fabs(got[i] - want[i]) / (1e-3 + std::fabs(want[i]));
      worst = std::max(worst, err);
      ASSERT_LT(std::fabs(got[i] - want[i]), 1e-5 * (1.0 + std::fabs(want[i])))
          << "step " << step << " element " << i;
    }
    cache->commit(k.data(), v.data(), n, a.want_mass ? cm.data() : nullptr);
    t += n;
  }
  EXPECT_GT(t, static_cast<int64_t>(ns + s) * 3);  // long enough to evict and cascade
}

TEST(Positions, WindowMatchesReRotatingEverything) {
  check_policy("window", 4, 24, 1, RopeStyle::Norm, 1);
  check_policy("window", 0, 17, 1, RopeStyle::Neox, 2);
}

TEST(Positions, CascadeMatchesReRotatingEverything) {
  check_policy("cascade", 4, 24, 3, RopeStyle::Norm, 3);
  check_policy("cascade", 2, 32, 4, RopeStyle::Neox, 4);
  check_policy("cascade", 0, 16, 2, RopeStyle::Neox, 5);
  check_policy("cascade", 3, 18, 1, RopeStyle::Norm, 6);
}

TEST(Positions, H2oMatchesReRotatingEverything) {
  check_policy("h2o", 4, 24, 1, RopeStyle::Norm, 7);
  check_policy("h2o", 0, 20, 1, RopeStyle::Neox, 8);
}

TEST(Positions, FullKeepsStreamPositions) { check_policy("full", 0, 1, 1, RopeStyle::Neox, 9); }

}  // namespace
}  // namespace kvc
