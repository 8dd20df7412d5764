// The position trick against the slow way: a reference that keeps every key BEFORE RoPE and
// rotates the cache's tokens at their cache positions (sinks 0.., then by age, queries next) on
// every step. The fast policies store keys rotated at virtual positions and rotate only moved
// tokens; attention outputs must agree.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "cache/kv_cache.h"
#include "ops/attention.h"
#include "support/kv_f32_rows.h"

namespace kvc {
namespace {

// Token ids of the stream: 0..5 words, 6 a separator, 7 a digit (for the span cascade).
std::shared_ptr<const std::vector<uint8_t>> kinds() {
  return std::make_shared<std::vector<uint8_t>>(std::vector<uint8_t>{0, 0, 0, 0, 0, 0, 1, 2});
}

// How close the fast path stays to the f32 reference when keys and values are stored rounded:
// f32 only differs by the order of float sums; f16 rounds each stored element to 11 bits (a
// moved key once per move); q8_0 to 1/254 of its block's largest element.
double storage_tolerance(const std::string& type) {
  if (type == "f16") return 4e-3;
  if (type == "q8_0") return 6e-2;
  return 1e-5;
}

// Policies whose every head holds the same number of tokens number them 0.. contiguously; the
// span cascade numbers each head's back from the query, so a head may leave a gap after the
// sinks. The reference keeps f32 keys and values; the cache stores them as cfg says.
void check_config(const CacheConfig& cfg, RopeStyle style, uint32_t seed, bool contiguous) {
  SCOPED_TRACE(cfg.policy + " c=" + std::to_string(cfg.cascades) + " unit=" + cfg.unit +
               " k=" + cfg.type_k + " v=" + cfg.type_v);
  const double tol = std::max(storage_tolerance(cfg.type_k), storage_tolerance(cfg.type_v));
  // q8_0 stores blocks of 32.
  const int H = 2, NQ = 4, steps = 260;
  const int hd = cfg.type_k == "q8_0" || cfg.type_v == "q8_0" ? 32 : 16;
  const int ns = cfg.sinks, s = cfg.size;
  Rope rope(style, hd, hd, 10000.0);
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
      if (contiguous) {
        ASSERT_EQ(static_cast<int64_t>(sl.size()), p0) << "queries sit right after the cache";
      } else if (!sl.empty()) {
        ASSERT_EQ(sl.back().position, p0 - 1) << "queries sit right after the newest key";
      }
      for (size_t r = 0; r < sl.size(); ++r) {
        if (contiguous) {
          ASSERT_EQ(sl[r].position, static_cast<int64_t>(r)) << "cache positions are contiguous";
        } else if (r > 0) {
          ASSERT_LT(sl[r - 1].position, sl[r].position) << "cache positions rise with age";
        }
        const size_t at = (static_cast<size_t>(sl[r].index) * H + h) * hd;
        std::vector<float> key(raw_k.begin() + at, raw_k.begin() + at + hd);
        rope.apply(key.data(), sl[r].position);
        rk[h].insert(rk[h].end(), key.begin(), key.end());
        rv[h].insert(rv[h].end(), all_v.begin() + at, all_v.begin() + at + hd);
      }
    }
    for (int h = 0; h < H; ++h)
      ref_view.segments.push_back({as_rows(rk[h].data()), as_rows(rv[h].data()),
                                   static_cast<int>(rv[h].size() / hd), 0, nullptr, nullptr});
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
      ASSERT_LT(std::fabs(got[i] - want[i]), tol * (1.0 + std::fabs(want[i])))
          << "step " << step << " element " << i;
    }
    std::vector<int32_t> ids(static_cast<size_t>(n));
    for (int32_t& id : ids) id = static_cast<int32_t>(rng() % 8);
    cache->commit(k.data(), v.data(), n, a.want_mass ? cm.data() : nullptr, ids.data());
    t += n;
  }
  EXPECT_GT(t, static_cast<int64_t>(ns + s) * 3);  // long enough to evict and cascade
}

// Every policy under every storage type: f32 exactly as before, f16 and q8_0 within rounding.
const char* const kTypes[] = {"f32", "f16", "q8_0"};

void check_types(CacheConfig cfg, RopeStyle style, uint32_t seed, bool contiguous) {
  for (const char* type : kTypes) {
    cfg.type_k = cfg.type_v = type;
    check_config(cfg, style, seed, contiguous);
  }
  cfg.type_k = "q8_0", cfg.type_v = "f16";  // the two may differ
  check_config(cfg, style, seed, contiguous);
}

void check_policy(const std::string& policy, int ns, int s, int c, RopeStyle style, uint32_t seed) {
  CacheConfig cfg;
  cfg.policy = policy, cfg.sinks = ns, cfg.size = s, cfg.cascades = c, cfg.beta = 0.95f;
  cfg.context = 4000;
  check_types(cfg, style, seed, true);
}

CacheConfig span_config(int ns, std::vector<int> sizes, int unit_max) {
  CacheConfig cfg;
  cfg.policy = "cascade", cfg.unit = "span", cfg.unit_max = unit_max, cfg.sinks = ns;
  cfg.cascades = static_cast<int>(sizes.size()), cfg.size = 0;
  for (int w : sizes) cfg.size += w;
  cfg.level_sizes = std::move(sizes), cfg.beta = 0.95f, cfg.token_kinds = kinds();
  return cfg;
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

TEST(Positions, SpanCascadeMatchesReRotatingEverything) {
  check_types(span_config(4, {12, 6, 6}, 3), RopeStyle::Norm, 10, false);
  check_types(span_config(0, {16, 8, 8, 8}, 4), RopeStyle::Neox, 11, false);
  check_types(span_config(2, {10, 10}, 1), RopeStyle::Norm, 12, false);
}

TEST(Positions, OracleMatchesReRotatingEverything) {
  CacheConfig cfg;
  cfg.policy = "oracle", cfg.sinks = 3, cfg.size = 20;
  cfg.pinned = {5, 9, 10, 11, 40, 41, 300};
  check_types(cfg, RopeStyle::Norm, 13, true);
  cfg.sinks = 0;
  check_types(cfg, RopeStyle::Neox, 14, true);
}

TEST(Positions, H2oMatchesReRotatingEverything) {
  check_policy("h2o", 4, 24, 1, RopeStyle::Norm, 7);
  check_policy("h2o", 0, 20, 1, RopeStyle::Neox, 8);
}

TEST(Positions, FullKeepsStreamPositions) { check_policy("full", 0, 1, 1, RopeStyle::Neox, 9); }

}  // namespace
}  // namespace kvc
