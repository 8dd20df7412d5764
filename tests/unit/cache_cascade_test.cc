// The cascade against a slow reference written from docs/cascade-spec.md, plus its invariants.
#include <gtest/gtest.h>

#include <cmath>
#include <deque>
#include <random>

#include "base/error.h"
#include "cache/kv_cache.h"
#include "support/kv_f32_rows.h"
#include "ops/rope.h"

namespace kvc {
namespace {

// Leaves keys alone, so that a key can carry its token's identity through the cache.
struct NoRotation : KeyRotator {
  void rotate(float*, int64_t) const override {}
};

// The spec, literally: per head, sinks then C lists ordered oldest to newest.
struct RefCascade {
  struct Tok {
    int64_t index;
    float score;
  };
  int ns, s, c, w, heads;
  float beta;
  int64_t t = 0;
  std::vector<std::vector<Tok>> sinks;
  std::vector<std::vector<std::deque<Tok>>> sub;  // [head][i]

  RefCascade(int ns_, int s_, int c_, float beta_, int heads_)
      : ns(ns_), s(s_), c(c_), w(s_ / c_), heads(heads_), beta(beta_), sinks(heads_),
        sub(heads_, std::vector<std::deque<Tok>>(c_)) {}

  // mass(head, index) for cached tokens; chunk(head, j) for the new ones.
  template <class Mass, class Chunk>
  void step(int n, Mass mass, Chunk chunk) {
    const float decay = beta >= 1.0f ? 1.0f : static_cast<float>(std::pow(static_cast<double>(beta), n));
    for (int h = 0; h < heads; ++h)
      for (auto& d : sub[h])
        for (Tok& tok : d) tok.score = decay * tok.score + mass(h, tok.index);
    for (int j = 0; j < n; ++j, ++t) {
      for (int h = 0; h < heads; ++h) insert(h, {t, chunk(h, j)});
    }
  }

  void insert(int h, Tok carry) {
    if (static_cast<int>(sinks[h].size()) < ns) {
      sinks[h].push_back(carry);
      return;
    }
    for (int i = 0; i < c; ++i) {
      auto& d = sub[h][i];
      const bool open = t < ns + s || (t - ns) % (int64_t{1} << i) == 0;
      if (open && static_cast<int>(d.size()) < w) {
        d.push_back(carry);
        return;
      }
      if (open) {
        Tok evicted = d.front();
        d.pop_front();
        d.push_back(carry);
        carry = evicted;
        continue;
      }
      if (d.empty()) {
        d.push_back(carry);
        return;
      }
      if (carry.score >= d.back().score) d.back() = carry;
      return;
    }
  }

  // Slots as the cache reports them: sinks, then sub-caches from the oldest, by age.
  std::vector<LayerKvCache::SlotInfo> slots(int h) const {
    std::vector<LayerKvCache::SlotInfo> out;
    for (const Tok& tok : sinks[h]) out.push_back({tok.index, static_cast<int64_t>(out.size()), 0.0f});
    for (int i = c - 1; i >= 0; --i)
      for (const Tok& tok : sub[h][i]) out.push_back({tok.index, static_cast<int64_t>(out.size()), tok.score});
    return out;
  }
};

// Deterministic pseudo-random mass from (seed, step, head, token): the same for both sides.
float hash_mass(uint64_t seed, int64_t step, int h, int64_t index, bool integer) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull ^ (step * 0xBF58476D1CE4E5B9ull) ^ (h * 0x94D049BB133111EBull) ^
               (index * 0x2545F4914F6CDD1Dull);
  x ^= x >> 31, x *= 0xD6E8FEB86659FD93ull, x ^= x >> 32;
  return integer ? static_cast<float>(x % 3) : static_cast<float>(x % 1000003) / 1000003.0f;
}

struct Setting {
  int ns, s, c, stride;
  float beta;
  bool integer_mass;  // small integers: many ties
};

// Drives the fast cache with masses keyed by token identity (key[0] = stream index).
void run_against_reference(const Setting& st, int steps, uint64_t seed) {
  SCOPED_TRACE(testing::Message() << "ns=" << st.ns << " s=" << st.s << " c=" << st.c
                                  << " stride=" << st.stride << " beta=" << st.beta);
  const int H = 2, hd = 4;
  NoRotation none;
  CacheConfig cfg;
  cfg.policy = "cascade", cfg.sinks = st.ns, cfg.size = st.s, cfg.cascades = st.c, cfg.beta = st.beta;
  cfg = f32_storage(cfg);  // keys carry stream indices, read back exactly
  auto cache = make_layer_cache(cfg, {H, hd}, none);
  RefCascade ref(st.ns, st.s, st.c, st.beta, H);
  std::mt19937 rng(static_cast<uint32_t>(seed));
  int64_t t = 0;
  KvView view;
  for (int step = 0; step < steps; ++step) {
    const int n = std::uniform_int_distribution<int>(1, st.stride)(rng);
    cache->view(view);
    for (int h = 0; h < H; ++h)
      for (int sgi = 0; sgi < view.n_segments; ++sgi) {
        const KvSegment& sg = view.at(h, sgi);
        if (!sg.mass) continue;
        for (int i = 0; i < sg.n; ++i)
          sg.mass[i] = hash_mass(seed, step, h, static_cast<int64_t>(as_f32(sg.k)[i * hd]), st.integer_mass);
      }
    std::vector<float> k(static_cast<size_t>(n) * H * hd), v(k.size()), cm(static_cast<size_t>(H) * n);
    for (int j = 0; j < n; ++j)
      for (int h = 0; h < H; ++h) {
        k[(j * H + h) * hd] = static_cast<float>(t + j);
        cm[h * n + j] = hash_mass(seed + 1, step, h, t + j, st.integer_mass);
      }
    cache->commit(k.data(), v.data(), n, cm.data(), nullptr);
    ref.step(n, [&](int h, int64_t index) { return hash_mass(seed, step, h, index, st.integer_mass); },
             [&](int h, int j) { return cm[h * n + j]; });
    t += n;
    for (int h = 0; h < H; ++h) {
      const auto got = cache->slots(h);
      const auto want = ref.slots(h);
      ASSERT_EQ(got.size(), want.size()) << "step " << step;
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_EQ(got[i].index, want[i].index) << "step " << step << " head " << h << " slot " << i;
        ASSERT_EQ(got[i].position, want[i].position) << "step " << step << " slot " << i;
        ASSERT_EQ(got[i].score, want[i].score) << "step " << step << " slot " << i;
      }
      ASSERT_EQ(cache->next_position(), static_cast<int64_t>(want.size()));
    }
  }
}

TEST(Cascade, MatchesTheSpecReferenceSlotForSlot) {
  const Setting settings[] = {
      {0, 8, 1, 1, 0.9f, false},  {4, 8, 2, 1, 0.9f, false},   {4, 16, 4, 3, 0.99f, false},
      {2, 12, 3, 5, 1.0f, true},  {0, 32, 8, 1, 0.5f, false},  {8, 64, 4, 17, 0.999f, false},
      {3, 6, 6, 2, 1.0f, true},   {1, 30, 5, 40, 0.9f, false}, {64, 128, 4, 9, 0.9999f, false},
      {5, 20, 2, 1, 1.0f, true},
  };
  uint64_t seed = 11;
  for (const Setting& s : settings) run_against_reference(s, 600, seed++);
}

std::unique_ptr<LayerKvCache> make(const std::string& policy, int ns, int s, int c, int heads,
                                   const KeyRotator& rot, int hd = 4) {
  CacheConfig cfg;
  cfg.policy = policy, cfg.sinks = ns, cfg.size = s, cfg.cascades = c, cfg.beta = 0.9f;
  return make_layer_cache(f32_storage(cfg), {heads, hd}, rot);
}

// Feeds n tokens with identity keys and random masses (different per head).
void feed(LayerKvCache& cache, int heads, int64_t& t, int n, std::mt19937& rng, int hd = 4) {
  KvView view;
  cache.view(view);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (auto& sg : view.segments)
    if (sg.mass)
      for (int i = 0; i < sg.n; ++i) sg.mass[i] = u(rng);
  std::vector<float> k(static_cast<size_t>(n) * heads * hd), v(k.size()), cm(static_cast<size_t>(heads) * n);
  for (int j = 0; j < n; ++j)
    for (int h = 0; h < heads; ++h) k[(j * heads + h) * hd] = static_cast<float>(t + j), cm[h * n + j] = u(rng);
  cache.commit(k.data(), v.data(), n, cm.data(), nullptr);
  t += n;
}

TEST(Cascade, SinksStayAndOccupancyIsBounded) {
  NoRotation none;
  const int ns = 4, s = 24;
  auto cache = make("cascade", ns, s, 3, 2, none);
  std::mt19937 rng(5);
  int64_t t = 0;
  for (int step = 0; step < 400; ++step) {
    feed(*cache, 2, t, 1 + step % 4, rng);
    for (int h = 0; h < 2; ++h) {
      const auto sl = cache->slots(h);
      ASSERT_LE(sl.size(), static_cast<size_t>(ns + s));
      for (int i = 0; i < std::min<int>(ns, static_cast<int>(sl.size())); ++i) {
        ASSERT_EQ(sl[i].index, i);
        ASSERT_EQ(sl[i].position, i);
      }
      for (size_t i = 1; i < sl.size(); ++i) ASSERT_LT(sl[i - 1].index, sl[i].index);  // by age
    }
  }
  EXPECT_EQ(cache->slots(0).size(), static_cast<size_t>(ns + s));
  const size_t bytes = cache->bytes();
  feed(*cache, 2, t, 50, rng);
  EXPECT_EQ(cache->bytes(), bytes);  // allocated once
}

TEST(Cascade, OneCascadeIsTheWindow) {
  Rope rope(RopeStyle::Norm, 8, 8, 10000.0);
  auto cascade = make("cascade", 3, 10, 1, 2, rope, 8);
  auto window = make("window", 3, 10, 1, 2, rope, 8);
  std::mt19937 r1(9), r2(9);
  int64_t t1 = 0, t2 = 0;
  for (int step = 0; step < 60; ++step) {
    feed(*cascade, 2, t1, 1 + step % 3, r1, 8);
    feed(*window, 2, t2, 1 + step % 3, r2, 8);
    KvView a, b;
    cascade->view(a);
    window->view(b);
    for (int h = 0; h < 2; ++h) {
      const auto x = cascade->slots(h), y = window->slots(h);
      ASSERT_EQ(x.size(), y.size());
      for (size_t i = 0; i < x.size(); ++i) {
        ASSERT_EQ(x[i].index, y[i].index);
        ASSERT_EQ(x[i].position, y[i].position);
      }
      // Same keys at the same real positions: rotate both sets to real positions and compare.
      for (int s = 0; s < 2; ++s) {
        const KvSegment &p = a.at(h, s), &q = b.at(h, s);
        ASSERT_EQ(p.n, q.n);
        for (int i = 0; i < p.n; ++i) {
          const float *pk = as_f32(p.k), *qk = as_f32(q.k);
          std::vector<float> kp(pk + i * 8, pk + i * 8 + 8), kq(qk + i * 8, qk + i * 8 + 8);
          rope.rotate(kp.data(), p.pos_offset);
          rope.rotate(kq.data(), q.pos_offset);
          bool found = false;  // the window's ring order may differ from the cascade's
          for (int m = 0; m < q.n && !found; ++m) {
            std::vector<float> km(qk + m * 8, qk + m * 8 + 8);
            rope.rotate(km.data(), q.pos_offset);
            found = std::fabs(km[0] - kp[0]) < 1e-4f && std::fabs(km[1] - kp[1]) < 1e-4f;
          }
          ASSERT_TRUE(found) << "step " << step << " segment " << s << " slot " << i;
        }
      }
    }
  }
}

TEST(Cascade, WithoutScoreSelectionTheNewerTokenAlwaysWins) {
  // The ablation: every competition goes to the carry, as if all scores tied. So it must equal
  // the scored cascade fed zero masses, whatever masses it is fed itself, and ask for none.
  NoRotation none;
  CacheConfig cfg;
  cfg.policy = "cascade", cfg.sinks = 2, cfg.size = 12, cfg.cascades = 3;
  auto scored = make_layer_cache(cfg, {2, 4}, none);
  cfg.select_by_score = false;
  auto newest = make_layer_cache(cfg, {2, 4}, none);
  EXPECT_TRUE(scored->wants_mass());
  EXPECT_FALSE(newest->wants_mass());
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  int64_t t = 0;
  for (int step = 0; step < 200; ++step) {
    const int n = 1 + step % 3;
    std::vector<float> k(static_cast<size_t>(n) * 2 * 4), v(k.size()), zero(2 * n, 0.0f), noise(2 * n);
    for (int j = 0; j < n; ++j)
      for (int h = 0; h < 2; ++h) k[(j * 2 + h) * 4] = static_cast<float>(t + j), noise[h * n + j] = u(rng);
    KvView a, b;
    scored->view(a);
    newest->view(b);
    for (auto& sg : b.segments)
      if (sg.mass)
        for (int i = 0; i < sg.n; ++i) sg.mass[i] = u(rng);
    scored->commit(k.data(), v.data(), n, zero.data(), nullptr);
    newest->commit(k.data(), v.data(), n, noise.data(), nullptr);
    t += n;
    for (int h = 0; h < 2; ++h) {
      const auto x = scored->slots(h), y = newest->slots(h);
      ASSERT_EQ(x.size(), y.size());
      for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(x[i].index, y[i].index) << "step " << step;
    }
  }
}

TEST(Cascade, SpanReachesWTimesTwoToTheCMinusOne) {
  NoRotation none;
  for (int c : {1, 2, 4, 6}) {
    const int s = 384, w = s / c;
    auto cache = make("cascade", 8, s, c, 1, none);
    std::mt19937 rng(c);
    int64_t t = 0;
    while (t < 8 + static_cast<int64_t>(w) * (1 << c) * 3) feed(*cache, 1, t, 1, rng);
    const auto sl = cache->slots(0);
    const double span = static_cast<double>(t - sl[8].index);  // oldest non-sink
    const double expect = w * ((1 << c) - 1.0);
    EXPECT_NEAR(span / expect, 1.0, 0.05) << "c=" << c << " span " << span;
  }
}

TEST(Cascade, HeadsSelectIndependently) {
  // A 3-head cache must hold, per head, what a 1-head cache fed that head's masses holds.
  NoRotation none;
  auto multi = make("cascade", 2, 16, 4, 3, none);
  std::vector<std::unique_ptr<LayerKvCache>> single;
  for (int h = 0; h < 3; ++h) single.push_back(make("cascade", 2, 16, 4, 1, none));
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  int64_t t = 0;
  bool differ = false;
  for (int step = 0; step < 300; ++step) {
    const int n = 1 + step % 3;
    KvView mv;
    multi->view(mv);
    std::vector<KvView> sv(3);
    for (int h = 0; h < 3; ++h) single[h]->view(sv[h]);
    for (int h = 0; h < 3; ++h)
      for (int s = 0; s < mv.n_segments; ++s) {
        const KvSegment &a = mv.at(h, s), &b = sv[h].at(0, s);
        ASSERT_EQ(a.n, b.n);
        if (!a.mass) continue;
        for (int i = 0; i < a.n; ++i) a.mass[i] = b.mass[i] = u(rng);
      }
    std::vector<float> k(static_cast<size_t>(n) * 3 * 4), v(k.size()), cm(3 * n);
    for (int j = 0; j < n; ++j)
      for (int h = 0; h < 3; ++h) k[(j * 3 + h) * 4] = static_cast<float>(t + j), cm[h * n + j] = u(rng);
    multi->commit(k.data(), v.data(), n, cm.data(), nullptr);
    for (int h = 0; h < 3; ++h) {
      std::vector<float> k1(static_cast<size_t>(n) * 4), v1(k1.size());
      for (int j = 0; j < n; ++j) k1[j * 4] = static_cast<float>(t + j);
      single[h]->commit(k1.data(), v1.data(), n, cm.data() + h * n, nullptr);
    }
    t += n;
    for (int h = 0; h < 3; ++h) {
      const auto a = multi->slots(h), b = single[h]->slots(0);
      ASSERT_EQ(a.size(), b.size());
      for (size_t i = 0; i < a.size(); ++i) {
        ASSERT_EQ(a[i].index, b[i].index);
        ASSERT_EQ(a[i].score, b[i].score);
      }
      const auto a0 = multi->slots(0);
      for (size_t i = 0; i < a.size(); ++i) differ |= a[i].index != a0[i].index;
    }
  }
  EXPECT_TRUE(differ);  // otherwise the test proves nothing
}

TEST(Cascade, RejectsBadConfig) {
  NoRotation none;
  EXPECT_THROW(make("cascade", 4, 10, 3, 1, none), Error);
  EXPECT_THROW(make("cascade", 4, 10, 0, 1, none), Error);
  EXPECT_THROW(make("cascade", -1, 10, 1, 1, none), Error);
}

}  // namespace
}  // namespace kvc
