// The span cascade against a slow reference written from the rules in span_cascade_cache.cc
// (lists of whole spans per level), against the token cascade when every span is one token,
// and its invariants: spans stay whole, digit runs stay together, memory is fixed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
#include <random>
#include <string>

#include "base/error.h"
#include "cache/kv_cache.h"
#include "support/kv_f32_rows.h"

namespace kvc {
namespace {

struct NoRotation : KeyRotator {
  void rotate(float*, int64_t) const override {}
};

// Keeps the sum of its rotations in key[1]: a key that starts at its position there shows, in
// every slot, the virtual position it is rotated at.
struct CountingRotation : KeyRotator {
  void rotate(float* key, int64_t delta) const override { key[1] += static_cast<float>(delta); }
};

// Vocabulary of the tests: ids 0..4 plain words, 5 and 6 separators, 7..9 digits.
std::shared_ptr<const std::vector<uint8_t>> test_kinds() {
  return std::make_shared<std::vector<uint8_t>>(std::vector<uint8_t>{
      kPlainToken, kPlainToken, kPlainToken, kPlainToken, kPlainToken, kSeparatorToken,
      kSeparatorToken, kDigitToken, kDigitToken, kDigitToken});
}

// The rules, literally: per head, sinks and per level a list of spans, oldest first.
struct RefSpanCascade {
  struct Tok {
    int64_t index;
    float score;
  };
  struct Span {
    std::vector<Tok> toks;
    bool sep_end = false;
  };
  int ns, g, heads;
  std::vector<int> w;
  float beta;
  bool peak, mean = false;
  int lowest_from = 1 << 30;  // levels from here on compete with their lowest-scored spans
  bool pool = false;          // the last level never opens once the cache is full
  int64_t t = 0, u = -1;
  bool filling = true, closed = true;
  int open_len = 0, open_digits = 0;
  std::vector<std::vector<Tok>> sinks;
  std::vector<std::vector<std::deque<Span>>> lv;  // [head][level]

  RefSpanCascade(int ns_, std::vector<int> w_, int g_, float beta_, bool peak_, int heads_)
      : ns(ns_), g(g_), heads(heads_), w(std::move(w_)), beta(beta_), peak(peak_), sinks(heads_),
        lv(heads_, std::vector<std::deque<Span>>(w.size())) {}

  static int size(const std::deque<Span>& d) {
    int n = 0;
    for (const Span& s : d) n += static_cast<int>(s.toks.size());
    return n;
  }
  float score(const Span& s) const {
    const size_t counted = s.sep_end && s.toks.size() > 1 ? s.toks.size() - 1 : s.toks.size();
    float total = 0.0f;
    for (size_t r = 0; r < counted; ++r) total = peak ? std::max(total, s.toks[r].score) : total + s.toks[r].score;
    return mean ? total / static_cast<float>(counted) : total;
  }

  template <class Mass, class Chunk, class Kind>
  void step(int n, Mass mass, Chunk chunk, Kind kind) {
    const float decay = beta >= 1.0f ? 1.0f : static_cast<float>(std::pow(static_cast<double>(beta), n));
    for (int h = 0; h < heads; ++h)
      for (auto& d : lv[h])
        for (Span& s : d)
          for (Tok& tok : s.toks) tok.score = decay * tok.score + mass(h, tok.index);
    for (int j = 0; j < n; ++j, ++t) arrive(j, chunk, kind(j));
  }

  template <class Chunk>
  void arrive(int j, Chunk chunk, uint8_t k) {
    if (static_cast<int>(sinks[0].size()) < ns) {
      for (int h = 0; h < heads; ++h) sinks[h].push_back({t, 0.0f});
      return;
    }
    const bool digit = k == kDigitToken;
    if (closed || (open_len >= g && !(digit && open_digits > 0 && open_digits + 1 <= g))) {
      ++u, open_len = 0, open_digits = 0, closed = false;
      for (int h = 0; h < heads; ++h) lv[h][0].push_back({});  // the new span, empty so far
    }
    int total = 0;
    for (auto& d : lv[0]) total += size(d);
    if (filling && total + 1 > total_slots()) filling = false;
    bool dropped = false;
    for (int h = 0; h < heads; ++h) {
      auto& l0 = lv[h][0];
      std::vector<Span> carry;
      if (size(l0) == w[0]) carry.push_back(pop_front(l0));
      l0.back().toks.push_back({t, chunk(h, j)});
      l0.back().sep_end = k == kSeparatorToken;
      for (size_t i = 1; i < w.size() && !carry.empty(); ++i) carry = take(h, static_cast<int>(i), carry);
      dropped |= !carry.empty();
    }
    if (dropped) filling = false;
    ++open_len;
    open_digits = digit ? open_digits + 1 : 0;
    closed = k == kSeparatorToken;
  }

  static Span pop_front(std::deque<Span>& d) {
    Span s = d.front();
    d.pop_front();
    return s;
  }

  int total_slots() const {
    int s = 0;
    for (int x : w) s += x;
    return s;
  }

  std::vector<Span> take(int h, int i, const std::vector<Span>& in) {
    auto& d = lv[h][i];
    const bool last = i == static_cast<int>(w.size()) - 1;
    const bool open = filling || (!(pool && last) && u % (int64_t{1} << i) == 0);
    std::vector<Span> out;
    for (const Span& s : in) {
      const int len = static_cast<int>(s.toks.size());
      if (open || d.empty()) {
        while (w[i] - size(d) < len) out.push_back(pop_front(d));
        d.push_back(s);
        continue;
      }
      if (i >= lowest_from) {
        take_lowest(d, i, s);
        continue;
      }
      int k = 0, freed = w[i] - size(d);
      float theirs = 0.0f;
      while (freed < len || k == 0) {
        const Span& victim = d[d.size() - 1 - k];
        freed += static_cast<int>(victim.toks.size());
        theirs = peak || mean ? std::max(theirs, score(victim)) : theirs + score(victim);
        ++k;
      }
      if (score(s) >= theirs) {
        for (; k > 0; --k) d.pop_back();
        d.push_back(s);
      }
    }
    return out;
  }

  // The fewest lowest-scored spans (the older first among equals) that make room; if the
  // arrival scores at least theirs they go, the rest keep their order.
  void take_lowest(std::deque<Span>& d, int i, const Span& s) {
    std::vector<size_t> order(d.size());
    for (size_t x = 0; x < order.size(); ++x) order[x] = x;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return score(d[a]) < score(d[b]); });
    int k = 0, freed = w[i] - size(d);
    float theirs = 0.0f;
    while (freed < static_cast<int>(s.toks.size()) || k == 0) {
      const Span& victim = d[order[static_cast<size_t>(k)]];
      freed += static_cast<int>(victim.toks.size());
      theirs = peak || mean ? std::max(theirs, score(victim)) : theirs + score(victim);
      ++k;
    }
    if (score(s) < theirs) return;
    std::vector<bool> cut(d.size(), false);
    for (int x = 0; x < k; ++x) cut[order[static_cast<size_t>(x)]] = true;
    std::deque<Span> kept;
    for (size_t x = 0; x < d.size(); ++x)
      if (!cut[x]) kept.push_back(d[x]);
    kept.push_back(s);
    d = std::move(kept);
  }

  std::vector<int64_t> indices(int h) const {
    std::vector<int64_t> out;
    for (const Tok& tok : sinks[h]) out.push_back(tok.index);
    for (int i = static_cast<int>(w.size()) - 1; i >= 0; --i)
      for (const Span& s : lv[h][i])
        for (const Tok& tok : s.toks) out.push_back(tok.index);
    return out;
  }
  bool heads_differ() const {
    for (int h = 1; h < heads; ++h)
      if (indices(h) != indices(0)) return true;
    return false;
  }
  std::vector<float> scores(int h) const {
    std::vector<float> out(sinks[h].size(), 0.0f);
    for (int i = static_cast<int>(w.size()) - 1; i >= 0; --i)
      for (const Span& s : lv[h][i])
        for (const Tok& tok : s.toks) out.push_back(tok.score);
    return out;
  }
};

float hash_mass(uint64_t seed, int64_t step, int h, int64_t index) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull ^ (step * 0xBF58476D1CE4E5B9ull) ^ (h * 0x94D049BB133111EBull) ^
               (index * 0x2545F4914F6CDD1Dull);
  x ^= x >> 31, x *= 0xD6E8FEB86659FD93ull, x ^= x >> 32;
  return static_cast<float>(x % 1000003) / 1000003.0f;
}

// Plays attention over a view whose keys carry their stream index in key[0]: every slot that
// takes a mass gets mass(head, index), so caches holding a token in different slots agree.
template <class Mass>
void give_masses(const KvView& view, int hd, Mass mass) {
  for (int h = 0; h < view.n_heads; ++h)
    for (int s = 0; s < view.n_segments; ++s) {
      const KvSegment& sg = view.at(h, s);
      if (!sg.mass) continue;
      for (int i = 0; i < sg.n; ++i) sg.mass[i] = mass(h, static_cast<int64_t>(as_f32(sg.k)[i * hd]));
    }
}

// Stream ids: words, sometimes a separator, sometimes a run of 1..8 digits.
std::vector<int32_t> make_ids(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> ids;
  while (static_cast<int64_t>(ids.size()) < n) {
    const int r = static_cast<int>(rng() % 10);
    if (r < 6) ids.push_back(static_cast<int32_t>(rng() % 5));
    else if (r < 8) ids.push_back(5 + static_cast<int32_t>(rng() % 2));
    else
      for (int d = 1 + static_cast<int>(rng() % 8); d > 0; --d) ids.push_back(7 + static_cast<int32_t>(rng() % 3));
  }
  ids.resize(static_cast<size_t>(n));
  return ids;
}

struct Setting {
  int ns;
  std::vector<int> sizes;
  int g, stride;
  float beta;
  bool peak;
  bool mean = false;
  std::string compete = "newest";
};

// Feeds identity keys (key[0] = stream index) with hashed masses to the cache and the reference.
void run_against_reference(const Setting& st, int steps, uint64_t seed) {
  SCOPED_TRACE(testing::Message() << "ns=" << st.ns << " levels=" << st.sizes.size() << " g=" << st.g
                                  << " stride=" << st.stride << " peak=" << st.peak << " " << st.compete);
  const int H = 2, hd = 4;
  CountingRotation counting;
  CacheConfig cfg;
  cfg.policy = "cascade", cfg.unit = "span", cfg.unit_max = st.g, cfg.sinks = st.ns;
  cfg.level_sizes = st.sizes, cfg.cascades = static_cast<int>(st.sizes.size());
  cfg.size = 0;
  for (int x : st.sizes) cfg.size += x;
  cfg.beta = st.beta, cfg.unit_score = st.peak ? "peak" : st.mean ? "mean" : "sum";
  cfg.token_kinds = test_kinds();
  cfg.unit_compete = st.compete;
  auto cache = make_layer_cache(f32_storage(cfg), {H, hd}, counting);
  RefSpanCascade ref(st.ns, st.sizes, st.g, st.beta, st.peak, H);
  ref.mean = st.mean;
  const int levels = static_cast<int>(st.sizes.size());
  if (st.compete != "newest") ref.lowest_from = st.compete == "lowest-last" ? levels - 1 : 1;
  ref.pool = st.compete == "pool";
  const std::vector<int32_t> ids = make_ids(static_cast<int64_t>(steps) * st.stride, static_cast<uint32_t>(seed));
  std::mt19937 rng(static_cast<uint32_t>(seed));
  int64_t t = 0;
  KvView view;
  bool competed = false;
  for (int step = 0; step < steps; ++step) {
    const int n = std::uniform_int_distribution<int>(1, st.stride)(rng);
    if (t + n > static_cast<int64_t>(ids.size())) break;
    cache->view(view);
    give_masses(view, hd, [&](int h, int64_t index) { return hash_mass(seed, step, h, index); });
    std::vector<float> k(static_cast<size_t>(n) * H * hd), v(k.size()), cm(static_cast<size_t>(H) * n);
    const int64_t p0 = cache->next_position();
    for (int j = 0; j < n; ++j)
      for (int h = 0; h < H; ++h) {
        k[(j * H + h) * hd] = static_cast<float>(t + j);
        k[(j * H + h) * hd + 1] = static_cast<float>(p0 + j);  // rotated at its position
        cm[h * n + j] = hash_mass(seed + 1, step, h, t + j);
      }
    cache->commit(k.data(), v.data(), n, cm.data(), ids.data() + t);
    ref.step(n, [&](int h, int64_t index) { return hash_mass(seed, step, h, index); },
             [&](int h, int j) { return cm[h * n + j]; },
             [&](int j) { return (*cfg.token_kinds)[static_cast<size_t>(ids[static_cast<size_t>(t + j)])]; });
    t += n;
    for (int h = 0; h < H; ++h) {
      const auto got = cache->slots(h);
      const auto want = ref.indices(h);
      const auto want_score = ref.scores(h);
      ASSERT_EQ(got.size(), want.size()) << "step " << step << " head " << h;
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_EQ(got[i].index, want[i]) << "step " << step << " head " << h << " slot " << i;
        ASSERT_EQ(got[i].score, want_score[i]) << "step " << step << " slot " << i;
        if (i > 0) {
          ASSERT_LT(got[i - 1].position, got[i].position) << "positions rise with age";
        }
      }
      if (!got.empty()) {
        ASSERT_EQ(got.back().position, cache->next_position() - 1) << "no gap before the query";
      }
      // Every key was turned as far as it moved: virtual position + offset = its position.
      std::map<int64_t, int64_t> position_of;
      for (const auto& slot : got) position_of[slot.index] = slot.position;
      cache->view(view);
      for (int sgi = 0; sgi < view.n_segments; ++sgi) {
        const KvSegment& sg = view.at(h, sgi);
        for (int i = 0; i < sg.n; ++i)
          ASSERT_EQ(static_cast<int64_t>(as_f32(sg.k)[i * hd + 1]) + sg.pos_offset,
                    position_of.at(static_cast<int64_t>(as_f32(sg.k)[i * hd])))
              << "step " << step << " head " << h << " segment " << sgi << " slot " << i;
      }
    }
    competed |= ref.heads_differ();
  }
  EXPECT_TRUE(competed) << "the heads never disagreed: the setting tests no competition";
}

TEST(SpanCascade, MatchesTheReferenceSlotForSlot) {
  const Setting settings[] = {
      {4, {8, 8}, 3, 1, 0.9f, false},          {0, {16, 8, 8}, 4, 5, 0.99f, false},
      {2, {12, 12, 12, 12}, 4, 7, 1.0f, false}, {8, {32, 16, 16, 16, 16}, 8, 17, 0.999f, false},
      {3, {9, 9, 9}, 5, 3, 0.95f, true},        {1, {40, 10, 10, 10, 10, 10}, 4, 40, 0.9f, false},
      {6, {16, 16}, 2, 2, 0.9f, true},          {64, {64, 32, 32, 32}, 16, 64, 0.9999f, false},
      {2, {20, 10, 10, 10}, 5, 6, 0.9f, false, true},
  };
  uint64_t seed = 21;
  for (const Setting& s : settings) run_against_reference(s, 500, seed++);
}

TEST(SpanCascade, LowestCompetitionMatchesTheReference) {
  // --unit-compete lowest / lowest-last / pool: an arrival displaces the level's lowest-scored
  // spans wherever they sit, and the younger keys close up, turned back by the gap; a pool's
  // last level never drops a span by age.
  for (const char* compete : {"lowest", "lowest-last", "pool"}) {
    const Setting settings[] = {
        {4, {8, 8}, 3, 1, 0.9f, false, false, compete},
        {2, {12, 12, 12, 12}, 4, 7, 1.0f, false, false, compete},
        {8, {32, 16, 16, 16, 16}, 8, 17, 0.999f, false, false, compete},
        {3, {9, 9, 9}, 5, 3, 0.95f, true, false, compete},
        {2, {20, 10, 10, 10}, 5, 6, 0.9f, false, true, compete},
    };
    uint64_t seed = 41;
    for (const Setting& s : settings) {
      // Two levels: the pool's long-lived spans outscore every arrival from an 8-slot level
      // (EMA scores grow with age), so it never changes and the heads never part.
      if (std::string(compete) == "pool" && s.sizes.size() == 2) continue;
      run_against_reference(s, 500, seed++);
    }
  }
}

std::unique_ptr<LayerKvCache> make_cascade(int ns, int s, int c, const std::string& unit, int g,
                                           const KeyRotator& rot) {
  CacheConfig cfg;
  cfg.policy = "cascade", cfg.sinks = ns, cfg.size = s, cfg.cascades = c, cfg.beta = 0.9f;
  cfg.unit = unit, cfg.unit_max = g, cfg.token_kinds = test_kinds();
  return make_layer_cache(f32_storage(cfg), {2, 4}, rot);
}

// Feeds the same ids, keys and masses to every cache in `caches`.
void feed_all(std::vector<LayerKvCache*> caches, int64_t& t, int n, const std::vector<int32_t>& ids,
              std::mt19937& rng) {
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<KvView> views(caches.size());
  for (size_t c = 0; c < caches.size(); ++c) caches[c]->view(views[c]);
  const uint64_t salt = rng();
  for (auto& view : views)
    give_masses(view, 4, [&](int h, int64_t index) { return hash_mass(salt, 0, h, index); });
  std::vector<float> k(static_cast<size_t>(n) * 2 * 4), v(k.size()), cm(2 * static_cast<size_t>(n));
  for (int j = 0; j < n; ++j)
    for (int h = 0; h < 2; ++h) k[(j * 2 + h) * 4] = static_cast<float>(t + j), cm[h * n + j] = u(rng);
  for (LayerKvCache* c : caches) c->commit(k.data(), v.data(), n, cm.data(), ids.data() + t);
  t += n;
}

TEST(SpanCascade, OneTokenSpansAreTheTokenCascade) {
  // unit_max = 1 through the span code must equal the paper's token cascade, slot for slot,
  // position for position, score for score, whatever the separators and digits.
  NoRotation none;
  const int settings[][4] = {{4, 24, 3, 1}, {0, 16, 4, 3}, {64, 128, 4, 9}, {2, 12, 6, 5}, {3, 10, 1, 2}};
  for (const auto& st : settings) {
    SCOPED_TRACE(testing::Message() << "ns=" << st[0] << " s=" << st[1] << " c=" << st[2]);
    auto token = make_cascade(st[0], st[1], st[2], "token", 16, none);
    auto span = make_cascade(st[0], st[1], st[2], "span", 1, none);
    const std::vector<int32_t> ids = make_ids(4000, 7);
    std::mt19937 rng(st[3]);
    int64_t t = 0;
    while (t + st[3] <= 3000) {
      feed_all({token.get(), span.get()}, t, 1 + static_cast<int>(rng() % st[3]), ids, rng);
      ASSERT_EQ(token->next_position(), span->next_position());
      for (int h = 0; h < 2; ++h) {
        const auto a = token->slots(h), b = span->slots(h);
        ASSERT_EQ(a.size(), b.size()) << "t " << t;
        for (size_t i = 0; i < a.size(); ++i) {
          ASSERT_EQ(a[i].index, b[i].index) << "t " << t << " slot " << i;
          ASSERT_EQ(a[i].position, b[i].position) << "t " << t << " slot " << i;
          ASSERT_EQ(a[i].score, b[i].score) << "t " << t << " slot " << i;
        }
      }
    }
  }
}

// unit_share layer / model over L layers of H heads: every layer and head holds the tokens (and
// scores, and positions) that one head fed the sum of its group's masses would hold: the group
// is a layer's heads (`layer`) or every head of every layer (`model`). A `model` chunk goes in
// only when the last layer has committed it.
void check_shared_decisions(const std::string& share, const std::string& reduce) {
  SCOPED_TRACE(share + " " + reduce);
  const auto combine = [&](float acc, float m) { return reduce == "max" ? std::max(acc, m) : acc + m; };
  const int L = 3, H = 2, hd = 4;
  NoRotation none;
  CacheConfig cfg;
  cfg.policy = "cascade", cfg.unit = "span", cfg.unit_max = 4, cfg.sinks = 2;
  cfg.level_sizes = {12, 8, 8, 8}, cfg.cascades = 4, cfg.size = 36, cfg.beta = 0.9f;
  cfg.token_kinds = test_kinds();
  cfg.unit_share = share;
  cfg.share_reduce = reduce;
  const KeyRotator* rotators[] = {&none, &none, &none};
  auto layers = make_layer_caches(f32_storage(cfg), {H, hd}, rotators);
  ASSERT_EQ(layers.size(), static_cast<size_t>(L));
  const bool model = share == "model";
  const int groups = model ? 1 : L;
  const auto group_of = [&](int l) { return model ? 0 : l; };
  CacheConfig one = cfg;
  one.unit_share = "head";
  one.share_reduce = "sum";
  std::vector<std::unique_ptr<LayerKvCache>> ref;
  for (int g = 0; g < groups; ++g) ref.push_back(make_layer_cache(f32_storage(one), {1, hd}, none));

  const std::vector<int32_t> ids = make_ids(3000, 11);
  std::mt19937 rng(5);
  int64_t t = 0;
  std::vector<KvView> views(L);
  KvView ref_view;
  for (int step = 0; t + 8 <= 2500; ++step) {
    const int n = 1 + static_cast<int>(rng() % 7);
    const uint64_t salt = rng();
    // Attention: lane (l, h) gives a token mass by its identity; the reference its group's sum.
    std::vector<std::vector<float>> sums(groups);
    for (int l = 0; l < L; ++l) {
      layers[l]->view(views[l]);
      for (int h = 0; h < H; ++h)
        for (int sgi = 0; sgi < views[l].n_segments; ++sgi) {
          const KvSegment& sg = views[l].at(h, sgi);
          for (int i = 0; i < sg.n; ++i)
            ASSERT_EQ(as_f32(sg.k)[i * hd + 1], static_cast<float>(l * H + h)) << "a lane holds its own keys";
        }
      give_masses(views[l], hd, [&](int h, int64_t index) { return hash_mass(salt, l, h, index); });
    }
    for (int g = 0; g < groups; ++g) {
      ref[g]->view(ref_view);
      give_masses(ref_view, hd, [&](int, int64_t index) {
        float m = 0.0f;  // in lane order, as the cascade adds them
        for (int l = 0; l < L; ++l)
          if (group_of(l) == g)
            for (int h = 0; h < H; ++h) m = combine(m, hash_mass(salt, l, h, index));
        return m;
      });
    }
    std::vector<std::vector<float>> ref_cm(groups, std::vector<float>(static_cast<size_t>(n), 0.0f));
    const int64_t before = layers[0]->next_position();
    for (int l = 0; l < L; ++l) {
      std::vector<float> k(static_cast<size_t>(n) * H * hd), v(k.size()), cm(static_cast<size_t>(H) * n);
      for (int j = 0; j < n; ++j)
        for (int h = 0; h < H; ++h) {
          k[(j * H + h) * hd] = static_cast<float>(t + j);
          k[(j * H + h) * hd + 1] = static_cast<float>(l * H + h);
          cm[h * n + j] = hash_mass(salt + 1, l, h, t + j);
          ref_cm[group_of(l)][j] = combine(ref_cm[group_of(l)][j], cm[h * n + j]);
        }
      if (model && l > 0) {
        ASSERT_EQ(layers[0]->next_position(), before) << "a model chunk waits for the last layer";
      }
      layers[l]->commit(k.data(), v.data(), n, cm.data(), ids.data() + t);
    }
    for (int g = 0; g < groups; ++g) {
      std::vector<float> k(static_cast<size_t>(n) * hd), v(k.size());
      for (int j = 0; j < n; ++j) k[j * hd] = static_cast<float>(t + j);
      ref[g]->commit(k.data(), v.data(), n, ref_cm[g].data(), ids.data() + t);
    }
    t += n;
    for (int l = 0; l < L; ++l) {
      const auto want = ref[group_of(l)]->slots(0);
      ASSERT_EQ(layers[l]->next_position(), ref[group_of(l)]->next_position());
      for (int h = 0; h < H; ++h) {
        const auto got = layers[l]->slots(h);
        ASSERT_EQ(got.size(), want.size()) << "t " << t << " layer " << l << " head " << h;
        for (size_t i = 0; i < got.size(); ++i) {
          ASSERT_EQ(got[i].index, want[i].index) << "t " << t << " layer " << l << " slot " << i;
          ASSERT_EQ(got[i].position, want[i].position) << "t " << t << " slot " << i;
          ASSERT_EQ(got[i].score, want[i].score) << "t " << t << " slot " << i;
        }
      }
    }
  }
  EXPECT_GT(t, 2000);
}

TEST(SpanCascade, SharedDecisionsFollowTheSummedMasses) {
  for (const char* reduce : {"sum", "max"}) {
    check_shared_decisions("layer", reduce);
    check_shared_decisions("model", reduce);
  }
}

TEST(SpanCascade, TheSharesDiffer) {
  // The same stream and masses kept three ways: per head the heads disagree, shared they
  // cannot (and `model` keeps every layer alike).
  const int L = 2, H = 2, hd = 4;
  NoRotation none;
  const KeyRotator* rotators[] = {&none, &none};
  std::map<std::string, std::vector<std::unique_ptr<LayerKvCache>>> by_share;
  for (const std::string share : {"head", "layer", "model"}) {
    CacheConfig cfg;
    cfg.policy = "cascade", cfg.unit = "span", cfg.unit_max = 4, cfg.sinks = 2;
    cfg.size = 32, cfg.cascades = 4, cfg.beta = 0.9f, cfg.token_kinds = test_kinds();
    cfg.unit_share = share;
    by_share[share] = make_layer_caches(f32_storage(cfg), {H, hd}, rotators);
  }
  const std::vector<int32_t> ids = make_ids(2000, 3);
  std::mt19937 rng(9);
  bool heads_differ = false;
  for (int64_t t = 0; t + 4 <= 1500;) {
    const int n = 1 + static_cast<int>(rng() % 4);
    const uint64_t salt = rng();
    for (auto& [share, layers] : by_share)
      for (int l = 0; l < L; ++l) {
        KvView view;
        layers[l]->view(view);
        give_masses(view, hd, [&](int h, int64_t index) { return hash_mass(salt, l, h, index); });
        std::vector<float> k(static_cast<size_t>(n) * H * hd), v(k.size()), cm(static_cast<size_t>(H) * n);
        for (int j = 0; j < n; ++j)
          for (int h = 0; h < H; ++h) k[(j * H + h) * hd] = static_cast<float>(t + j), cm[h * n + j] = hash_mass(salt, l, h, t + j);
        layers[l]->commit(k.data(), v.data(), n, cm.data(), ids.data() + t);
      }
    t += n;
    const auto indices = [](const LayerKvCache& c, int h) {
      std::vector<int64_t> out;
      for (const auto& s : c.slots(h)) out.push_back(s.index);
      return out;
    };
    const auto& head = by_share["head"];
    heads_differ |= indices(*head[0], 0) != indices(*head[0], 1);
    for (int l = 0; l < L; ++l)
      ASSERT_EQ(indices(*by_share["layer"][l], 0), indices(*by_share["layer"][l], 1));
    ASSERT_EQ(indices(*by_share["model"][0], 0), indices(*by_share["model"][1], 1));
  }
  EXPECT_TRUE(heads_differ) << "per-head decisions never differed: the stream tests nothing";
}

TEST(SpanCascade, SpansAndDigitRunsStayWhole) {
  // Whatever survives, survives as whole spans: a digit run of at most unit_max tokens is all
  // there or all gone, in every head, at every step.
  NoRotation none;
  const int g = 6;
  auto cache = make_cascade(4, 96, 4, "span", g, none);
  const std::vector<int32_t> ids = make_ids(6000, 3);
  std::vector<std::pair<int64_t, int64_t>> runs;  // digit runs [begin, end) of length <= g
  for (size_t i = 4; i < ids.size();) {
    if (ids[i] < 7) { ++i; continue; }
    size_t j = i;
    while (j < ids.size() && ids[j] >= 7) ++j;
    if (j - i <= static_cast<size_t>(g)) runs.push_back({static_cast<int64_t>(i), static_cast<int64_t>(j)});
    i = j;
  }
  std::mt19937 rng(5);
  int64_t t = 0;
  int partial = 0, whole = 0;
  while (t + 8 <= 5000) {
    feed_all({cache.get()}, t, 1 + static_cast<int>(rng() % 8), ids, rng);
    for (int h = 0; h < 2; ++h) {
      std::vector<bool> held(static_cast<size_t>(t), false);
      for (const auto& s : cache->slots(h)) held[static_cast<size_t>(s.index)] = true;
      for (const auto& [b, e] : runs) {
        if (e > t) break;
        int n = 0;
        for (int64_t x = b; x < e; ++x) n += held[static_cast<size_t>(x)];
        if (n > 0 && n < e - b) ++partial;
        if (n == e - b && t - e > 200) ++whole;
      }
    }
  }
  EXPECT_EQ(partial, 0);
  EXPECT_GT(whole, 0) << "no old digit run survived: the test checks nothing";
}

TEST(SpanCascade, MemoryIsFixedAndOccupancyBounded) {
  NoRotation none;
  CacheConfig cfg;
  cfg.policy = "cascade", cfg.unit = "span", cfg.unit_max = 4, cfg.sinks = 3;
  cfg.level_sizes = {20, 8, 8, 8}, cfg.size = 44, cfg.token_kinds = test_kinds();
  auto cache = make_layer_cache(f32_storage(cfg), {2, 4}, none);
  const std::vector<int32_t> ids = make_ids(3000, 9);
  std::mt19937 rng(1);
  int64_t t = 0;
  feed_all({cache.get()}, t, 10, ids, rng);
  const size_t bytes = cache->bytes();
  while (t + 16 <= 2500) {
    feed_all({cache.get()}, t, 1 + static_cast<int>(rng() % 16), ids, rng);
    for (int h = 0; h < 2; ++h) ASSERT_LE(cache->slots(h).size(), static_cast<size_t>(3 + 44));
    if (t > 100) {
      ASSERT_EQ(cache->next_position(), 3 + 44) << "the query sits after the full cache";
    }
  }
  EXPECT_EQ(cache->bytes(), bytes);
}

TEST(SpanCascade, RejectsBadConfig) {
  NoRotation none;
  CacheConfig cfg;
  cfg.policy = "cascade", cfg.unit = "span", cfg.unit_max = 16, cfg.sinks = 4, cfg.size = 64, cfg.cascades = 4;
  EXPECT_THROW(make_layer_cache(f32_storage(cfg), {1, 4}, none), Error);  // 16-slot levels, spans up to 31
  cfg.unit_max = 8;
  EXPECT_NO_THROW(make_layer_cache(f32_storage(cfg), {1, 4}, none));
  cfg.level_sizes = {32, 16, 8};  // sums to 56, not 64
  EXPECT_THROW(make_layer_cache(f32_storage(cfg), {1, 4}, none), Error);
  cfg.level_sizes = {32, 16, 16};
  EXPECT_NO_THROW(make_layer_cache(f32_storage(cfg), {1, 4}, none));
  cfg.unit_share = "everyone";
  EXPECT_THROW(make_layer_cache(f32_storage(cfg), {1, 4}, none), Error);
  cfg.unit_share = "model";
  EXPECT_NO_THROW(make_layer_cache(f32_storage(cfg), {1, 4}, none));
  cfg.unit_compete = "oldest";
  EXPECT_THROW(make_layer_cache(f32_storage(cfg), {1, 4}, none), Error);
  cfg.unit_compete = "lowest";
  EXPECT_NO_THROW(make_layer_cache(f32_storage(cfg), {1, 4}, none));
  cfg.unit = "word";
  EXPECT_THROW(make_layer_cache(f32_storage(cfg), {1, 4}, none), Error);
}

}  // namespace
}  // namespace kvc
