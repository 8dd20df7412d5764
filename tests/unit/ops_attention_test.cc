#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <random>

#include <hwy/targets.h>

#include "ops/attention.h"
#include "support/kv_f32_rows.h"

namespace kvc {
namespace {

struct Case {
  int n_tokens, nq, nkv, hd;
  std::vector<int> seg_n;          // slots per segment (same for every head)
  int window = 0;
  float softcap = 0.0f;
  bool want_mass = true;
  float beta = 0.99f;
  bool mass_max = true;
  KvType k_type = KvType::kF32, v_type = KvType::kF32;  // how the cached rows are stored
};

// Owns random inputs for one attention call and runs it with either kernel.
struct Fixture {
  Case c;
  Rope rope;
  std::vector<float> q, kc, vc;
  std::vector<std::vector<float>> k, v, mass;  // per (head, segment)
  std::vector<std::vector<uint8_t>> kb, vb;    // k and v stored as c.k_type, c.v_type
  std::vector<std::vector<int64_t>> pos;
  KvView view;
  int64_t q_pos0 = 0;

  explicit Fixture(const Case& cs, uint32_t seed) : c(cs), rope(RopeStyle::Neox, cs.hd, cs.hd, 10000.0) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    auto fill = [&](std::vector<float>& x, size_t n) {
      x.resize(n);
      for (float& f : x) f = nd(rng);
    };
    fill(q, static_cast<size_t>(c.n_tokens) * c.nq * c.hd);
    fill(kc, static_cast<size_t>(c.n_tokens) * c.nkv * c.hd);
    fill(vc, kc.size());
    const int S = static_cast<int>(c.seg_n.size());
    view.n_heads = c.nkv;
    view.n_segments = S;
    k.resize(c.nkv * S), v.resize(k.size()), mass.resize(k.size()), pos.resize(k.size());
    kb.resize(k.size()), vb.resize(k.size());
    int64_t total = 0;
    for (int n : c.seg_n) total += n;
    q_pos0 = total + 3;
    for (int h = 0; h < c.nkv; ++h)
      for (int s = 0; s < S; ++s) {
        const int i = h * S + s, n = c.seg_n[s];
        fill(k[i], static_cast<size_t>(n) * c.hd);
        fill(v[i], k[i].size());
        mass[i].assign(n, 0.5f);  // attention must add to what is there
        pos[i].resize(n);
        for (int x = 0; x < n; ++x) pos[i][x] = std::uniform_int_distribution<int64_t>(0, q_pos0 - 1)(rng);
        KvSegment seg;
        kb[i] = encode(k[i], c.k_type), vb[i] = encode(v[i], c.v_type);
        seg.k = kb[i].data(), seg.v = vb[i].data(), seg.n = n;
        seg.k_type = c.k_type, seg.v_type = c.v_type;
        seg.pos_offset = static_cast<int64_t>(s) * 1000 - 777;
        seg.pos = pos[i].data();
        seg.mass = mass[i].data();
        view.segments.push_back(seg);
      }
  }

  std::vector<uint8_t> encode(const std::vector<float>& x, KvType type) const {
    const size_t rows = x.size() / c.hd, bytes = kv_row_bytes(type, c.hd);
    std::vector<uint8_t> out(rows * bytes);
    for (size_t r = 0; r < rows; ++r) kv_encode_row(type, &x[r * c.hd], c.hd, &out[r * bytes]);
    return out;
  }

  struct Result {
    std::vector<float> out, chunk_mass;
    std::vector<std::vector<float>> mass;
  };

  Result run(bool fast, ThreadPool* pool, const std::atomic<bool>* cancel = nullptr) {
    for (auto& m : mass) std::fill(m.begin(), m.end(), 0.5f);
    Result r;
    r.out.assign(q.size(), NAN);
    r.chunk_mass.assign(static_cast<size_t>(c.nkv) * c.n_tokens, NAN);
    AttentionArgs a;
    a.n_tokens = c.n_tokens, a.n_q_heads = c.nq, a.n_kv_heads = c.nkv, a.head_dim = c.hd;
    a.q = q.data(), a.q_pos0 = q_pos0, a.rope = &rope;
    a.k_chunk = kc.data(), a.v_chunk = vc.data(), a.view = &view;
    a.scale = 1.0f / std::sqrt(static_cast<float>(c.hd));
    a.softcap = c.softcap, a.window = c.window;
    a.want_mass = c.want_mass, a.beta = c.beta, a.mass_max = c.mass_max;
    a.chunk_mass = r.chunk_mass.data(), a.out = r.out.data(), a.pool = pool;
    a.cancel = cancel;
    fast ? attention(a) : attention_reference(a);
    r.mass = mass;
    return r;
  }
};

void expect_close(const std::vector<float>& a, const std::vector<float>& b, float tol, const char* what) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    ASSERT_NEAR(a[i], b[i], tol * (1.0f + std::fabs(b[i]))) << what << " at " << i;
}

void compare(const Case& c, ThreadPool* pool, uint32_t seed = 1) {
  Fixture f(c, seed);
  const auto ref = f.run(false, nullptr);
  const auto got = f.run(true, pool);
  expect_close(got.out, ref.out, 2e-5f, "out");
  if (!c.want_mass) return;
  expect_close(got.chunk_mass, ref.chunk_mass, 2e-5f, "chunk_mass");
  for (size_t i = 0; i < ref.mass.size(); ++i) expect_close(got.mass[i], ref.mass[i], 2e-5f, "mass");
}

// A cancelled attention returns before the query blocks (Ctrl-C inside a long prefill); an
// unset flag changes nothing.
TEST(Attention, StopsWhenCancelled) {
  ThreadPool pool(2);
  Fixture f({16, 4, 2, 16, {20, 5}}, 3);
  std::atomic<bool> cancel{true};
  const auto stopped = f.run(true, &pool, &cancel);
  for (float x : stopped.out) ASSERT_TRUE(std::isnan(x)) << "attention ran on";
  cancel = false;
  const auto ran = f.run(true, &pool, &cancel);
  expect_close(ran.out, f.run(true, &pool).out, 0.0f, "out");
}

TEST(Attention, DecodeMatchesReference) {
  ThreadPool pool(2);
  compare({1, 9, 3, 64, {64, 100, 37, 0, 5}}, &pool);  // SmolLM2-like, an empty segment
  compare({1, 4, 1, 256, {64, 512, 512, 512, 511}}, &pool);  // Gemma-like
  compare({1, 4, 1, 256, {64, 512}, 0, 0.0f, false}, nullptr);
  // Wider GQA groups (6 query heads per KV head), and a window that masks cached slots.
  compare({1, 12, 2, 16, {30, 7}}, &pool);
  compare({1, 8, 1, 32, {20, 20}, 9, 0.0f}, &pool);
  // Up to 4 tokens are one block: each group's masses are reduced inside the attention pass, by
  // whichever thread did the group (3 threads: chunks of one, two or three groups).
  ThreadPool three(3);
  compare({3, 9, 3, 64, {64, 100, 37, 0, 5}, 0, 0.0f, true, 0.9f, false}, &three);  // mean
  compare({4, 12, 6, 16, {30, 7}, 0, 0.0f, true, 0.99f}, &three);
  compare({1, 9, 3, 64, {64, 100, 37, 0, 5}}, &three);
}

TEST(Attention, ChunksGqaWindowSoftcapMatchReference) {
  ThreadPool pool(2);
  compare({7, 6, 2, 32, {10, 3}, 0, 0.0f, true, 0.9f, false}, &pool);  // mean over the group
  compare({16, 4, 4, 16, {20, 20, 20}, 9, 0.0f}, &pool);               // window masks slots and chunk
  compare({5, 2, 1, 24, {8}, 0, 30.0f, true, 1.0f}, nullptr);          // softcap, plain sum (H2O)
  compare({12, 8, 2, 20, {}, 0, 0.0f, true, 0.5f}, &pool);             // no cache, odd head_dim
  compare({1, 2, 1, 8, {0, 0}, 0, 0.0f}, &pool);                       // empty cache
  // Prefill reads cached keys once per block of 4 tokens: blocks of 4, 4 and 2 at model shapes.
  compare({10, 9, 3, 64, {64, 100, 37, 0, 5}, 0, 0.0f, true, 0.9999f}, &pool);   // SmolLM2-like
  compare({6, 4, 1, 256, {64, 200, 13}, 0, 0.0f, true, 0.99f, false}, &pool);     // Gemma-like
}

// pos_offset means what the header says: a key stored rotated at virtual v sits at v + offset.
TEST(Attention, SegmentOffsetEqualsRotatingKeysToRealPositions) {
  const int hd = 32, n = 3;
  Case c{n, 2, 1, hd, {6, 9}, 0, 0.0f, true, 0.9f};
  Fixture f(c, 7);
  const size_t out_size = f.q.size();
  // One segment with offset 0: every key rotated from its virtual position to its real one.
  std::vector<float> k, v;
  for (int s = 0; s < 2; ++s)
    for (int i = 0; i < c.seg_n[s]; ++i) {
      std::vector<float> key(f.k[s].begin() + i * hd, f.k[s].begin() + (i + 1) * hd);
      f.rope.rotate(key.data(), f.view.segments[s].pos_offset);
      k.insert(k.end(), key.begin(), key.end());
      v.insert(v.end(), f.v[s].begin() + i * hd, f.v[s].begin() + (i + 1) * hd);
    }
  std::vector<float> m(15, 0.5f);
  f.view.n_segments = 1;
  f.view.segments.assign(1, KvSegment{as_rows(k.data()), as_rows(v.data()), 15, 0, nullptr, m.data()});
  std::vector<float> out(out_size), cm(n);
  AttentionArgs a;
  a.n_tokens = n, a.n_q_heads = 2, a.n_kv_heads = 1, a.head_dim = hd, a.q = f.q.data();
  a.q_pos0 = f.q_pos0, a.rope = &f.rope, a.k_chunk = f.kc.data(), a.v_chunk = f.vc.data();
  a.view = &f.view, a.scale = 0.2f, a.want_mass = true, a.beta = 0.9f, a.chunk_mass = cm.data();
  a.out = out.data();
  attention_reference(a);
  // The fast kernel on a fresh copy of the two-segment view, same arguments otherwise.
  std::vector<float> out2(out.size()), cm2(n);
  Fixture g(c, 7);
  AttentionArgs b = a;
  b.view = &g.view, b.out = out2.data(), b.chunk_mass = cm2.data();
  attention(b);
  expect_close(out2, out, 2e-5f, "out");
  expect_close(cm2, cm, 2e-5f, "chunk_mass");
  for (int i = 0; i < 15; ++i)
    EXPECT_NEAR(i < 6 ? g.mass[0][i] : g.mass[1][i - 6], m[i], 2e-5f);
}

TEST(Attention, MassesSumToTheEmaWeights) {
  // Each query spreads probability 1; with one query head per group the masses add up to
  // sum_j (1 - beta) beta^(n-1-j), plus the 0.5 already in every slot.
  Case c{4, 3, 3, 16, {5, 7}, 0, 0.0f, true, 0.8f};
  Fixture f(c, 3);
  const auto r = f.run(true, nullptr);
  for (int h = 0; h < 3; ++h) {
    double total = 0;
    for (int s = 0; s < 2; ++s)
      for (float m : r.mass[h * 2 + s]) total += m - 0.5;
    for (int j = 0; j < 4; ++j) total += r.chunk_mass[h * 4 + j];
    double expect = 0;
    for (int j = 0; j < 4; ++j) expect += 0.2 * std::pow(0.8, 3 - j);
    EXPECT_NEAR(total, expect, 1e-5);
  }
}

// The fast kernel reads f16 and q8_0 rows as stored and must equal the reference over the same
// rows decoded, on every SIMD target this CPU runs: decode, prefill blocks, odd head_dim (the
// scalar tail), keys and values of different types.
class AttentionStorage : public ::testing::TestWithParam<int64_t> {
 protected:
  void SetUp() override { hwy::SetSupportedTargetsForTest(GetParam()); }
  void TearDown() override { hwy::SetSupportedTargetsForTest(0); }
};

Case stored(Case c, KvType k, KvType v) {
  c.k_type = k, c.v_type = v;
  return c;
}

TEST_P(AttentionStorage, F16MatchesReference) {
  ThreadPool pool(2);
  const KvType h = KvType::kF16;
  compare(stored({1, 9, 3, 64, {64, 100, 37, 0, 5}}, h, h), &pool);             // SmolLM2-like decode
  compare(stored({1, 4, 1, 256, {64, 512, 511}}, h, h), &pool);                  // Gemma-like decode
  compare(stored({10, 9, 3, 64, {64, 100, 37, 0, 5}, 0, 0.0f, true, 0.9999f}, h, h), &pool);
  compare(stored({5, 2, 1, 24, {8, 3}, 0, 30.0f, true, 1.0f}, h, h), nullptr);   // softcap
  compare(stored({7, 6, 2, 20, {10, 3}, 0, 0.0f, true, 0.9f, false}, h, h), &pool);  // odd hd
  compare(stored({1, 8, 1, 32, {20, 20}, 9, 0.0f}, h, h), &pool);                // window mask
}

TEST_P(AttentionStorage, Q8_0MatchesReference) {
  ThreadPool pool(2);
  const KvType q = KvType::kQ8_0;
  compare(stored({1, 9, 3, 64, {64, 100, 37, 0, 5}}, q, q), &pool);
  compare(stored({1, 4, 1, 256, {64, 512, 511}}, q, q), &pool);
  compare(stored({10, 9, 3, 64, {64, 100, 37, 0, 5}, 0, 0.0f, true, 0.9999f}, q, q), &pool);
  compare(stored({6, 4, 1, 256, {64, 200, 13}, 0, 0.0f, true, 0.99f, false}, q, q), &pool);
  compare(stored({3, 4, 2, 32, {33, 7}, 0, 0.0f, true, 0.9f}, q, q), nullptr);
}

TEST_P(AttentionStorage, KeysAndValuesMayDiffer) {
  ThreadPool pool(2);
  compare(stored({1, 9, 3, 64, {64, 100, 5}}, KvType::kQ8_0, KvType::kF16), &pool);
  compare(stored({4, 9, 3, 64, {64, 100, 5}}, KvType::kF16, KvType::kQ8_0), &pool);
  compare(stored({4, 9, 3, 64, {64, 100, 5}}, KvType::kF32, KvType::kQ8_0), &pool);
}

INSTANTIATE_TEST_SUITE_P(AllTargets, AttentionStorage,
                         ::testing::ValuesIn(hwy::SupportedAndGeneratedTargets()),
                         [](const ::testing::TestParamInfo<int64_t>& p) {
                           return std::string(hwy::TargetName(p.param));
                         });

}  // namespace
}  // namespace kvc
