// Sparse attention (ops/sparse_attention.h) and its selection (ops/chunk_selection.h): the fast
// kernels held to their plain-loop references, and the sparse path held to dense attention where
// its budget covers every key (to float tolerance) or the cache is below its threshold (exactly).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "ops/chunk_selection.h"
#include "ops/sparse_attention.h"
#include "support/kv_f32_rows.h"

namespace kvc {
namespace {

// Random queries, chunk and a cache view of several segments (each with its own offset).
struct Fixture {
  int n, nq, nkv, hd;
  Rope rope;
  std::vector<float> q, kc, vc;
  std::vector<std::vector<float>> k, v, mass;  // per (head, segment)
  KvView view;
  int64_t q_pos0 = 0;
  bool want_mass = true;
  bool mass_max = true;

  Fixture(int n_tokens, int n_q, int n_kv, int head_dim, const std::vector<int>& seg_n,
          uint32_t seed)
      : n(n_tokens), nq(n_q), nkv(n_kv), hd(head_dim), rope(RopeStyle::Neox, head_dim, head_dim, 10000.0) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    auto fill = [&](std::vector<float>& x, size_t count) {
      x.resize(count);
      for (float& f : x) f = nd(rng);
    };
    fill(q, static_cast<size_t>(n) * nq * hd);
    fill(kc, static_cast<size_t>(n) * nkv * hd);
    fill(vc, kc.size());
    const int S = static_cast<int>(seg_n.size());
    view.n_heads = nkv;
    view.n_segments = S;
    k.resize(nkv * S), v.resize(k.size()), mass.resize(k.size());
    int64_t total = 0;
    for (int x : seg_n) total += x;
    q_pos0 = total;
    for (int h = 0; h < nkv; ++h)
      for (int s = 0; s < S; ++s) {
        const int i = h * S + s;
        fill(k[i], static_cast<size_t>(seg_n[s]) * hd);
        // Some keys stand out, as real attention has heavy hitters: the selection has work to do.
        for (int x = 0; x < seg_n[s]; x += 37)
          for (int y = 0; y < hd; ++y) k[i][static_cast<size_t>(x) * hd + y] *= 3.0f;
        fill(v[i], k[i].size());
        mass[i].assign(seg_n[s], 0.5f);
        KvSegment seg;
        seg.k = as_rows(k[i].data()), seg.v = as_rows(v[i].data()), seg.n = seg_n[s];
        seg.pos_offset = static_cast<int64_t>(s) * 100 - 50;
        seg.mass = mass[i].data();
        view.segments.push_back(seg);
      }
  }

  struct Result {
    std::vector<float> out, chunk_mass;
    std::vector<std::vector<float>> mass;
  };

  enum Kernel { kDense, kDenseReference, kSparse, kSparseReference };
  Result run(Kernel kernel, const SparseAttentionConfig& c, SparseSelection& sel, ThreadPool* pool) {
    for (auto& m : mass) std::fill(m.begin(), m.end(), 0.5f);
    Result r;
    r.out.assign(q.size(), NAN);
    r.chunk_mass.assign(static_cast<size_t>(nkv) * n, NAN);
    AttentionArgs a;
    a.n_tokens = n, a.n_q_heads = nq, a.n_kv_heads = nkv, a.head_dim = hd;
    a.q = q.data(), a.q_pos0 = q_pos0, a.rope = &rope;
    a.k_chunk = kc.data(), a.v_chunk = vc.data(), a.view = &view;
    a.scale = 1.0f / std::sqrt(static_cast<float>(hd));
    a.want_mass = want_mass, a.beta = 0.99f, a.mass_max = mass_max;
    a.chunk_mass = r.chunk_mass.data(), a.out = r.out.data(), a.pool = pool;
    switch (kernel) {
      case kDense: attention(a); break;
      case kDenseReference: attention_reference(a); break;
      case kSparse: sparse_attention(a, c, sel); break;
      case kSparseReference: sparse_attention_reference(a, c, sel); break;
    }
    r.mass = mass;
    return r;
  }
  Result run(Kernel kernel, const SparseAttentionConfig& c, ThreadPool* pool = nullptr) {
    SparseSelection sel;
    return run(kernel, c, sel, pool);
  }
};

void expect_close(const std::vector<float>& a, const std::vector<float>& b, float tol, const char* what) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    ASSERT_NEAR(a[i], b[i], tol * (1.0f + std::fabs(b[i]))) << what << " at " << i;
}

void expect_same(const Fixture::Result& got, const Fixture::Result& want, float tol, bool masses) {
  expect_close(got.out, want.out, tol, "out");
  if (!masses) return;
  expect_close(got.chunk_mass, want.chunk_mass, tol, "chunk_mass");
  for (size_t i = 0; i < want.mass.size(); ++i) expect_close(got.mass[i], want.mass[i], tol, "mass");
}

// A small budget, so that the selection matters.
SparseAttentionConfig small_budget() {
  SparseAttentionConfig c;
  c.sinks = 8, c.recent = 24, c.top_chunks = 4, c.chunk = 8, c.refresh = 4, c.min_keys = 0;
  return c;
}

TEST(ChunkSelection, ScoresMatchReference) {
  Fixture f(3, 6, 2, 64, {50, 83}, 1);
  for (int g = 0; g < 2; ++g) {
    std::vector<const float*> rows;
    for (int s = 0; s < 2; ++s)
      for (int r = 0; r < 9; ++r) rows.push_back(f.q.data() + static_cast<size_t>(r % 18) * 64);
    const ChunkQueries cq{&f.view, g, 64, 9, rows.data(), 0.125f};
    std::vector<KeyRange> chunks = {{0, 0, 16}, {0, 16, 50}, {1, 0, 1}, {1, 5, 83}, {1, 40, 47}};
    for (int samples : {1, 2, 3, 8, 64}) {
      std::vector<float> fast(chunks.size()), ref(chunks.size());
      score_chunks(cq, chunks, samples, fast.data());
      score_chunks_reference(cq, chunks, samples, ref.data());
      expect_close(fast, ref, 1e-5f, "score");
    }
  }
}

TEST(ChunkSelection, FastAndReferenceKeepTheSameChunks) {
  for (uint32_t seed = 1; seed <= 5; ++seed) {
    Fixture f(1, 3, 1, 64, {900, 333}, seed);
    std::vector<const float*> rows;
    for (int s = 0; s < 2; ++s)
      for (int r = 0; r < 3; ++r) rows.push_back(f.q.data() + static_cast<size_t>(r) * 64);
    const ChunkQueries cq{&f.view, 0, 64, 3, rows.data(), 0.125f};
    std::vector<KeyRange> cand;
    for (int s = 0; s < 2; ++s)
      for (int x = 0; x < f.view.at(0, s).n; x += 16) cand.push_back({s, x, std::min(f.view.at(0, s).n, x + 16)});
    int64_t scored = 0;
    const auto fast = select_chunks(cq, cand, 7, false, &scored);
    const auto ref = select_chunks(cq, cand, 7, true);
    ASSERT_EQ(fast.size(), 7u);
    ASSERT_EQ(ref.size(), 7u);
    for (size_t i = 0; i < 7; ++i) {
      EXPECT_EQ(fast[i].seg, ref[i].seg);
      EXPECT_EQ(fast[i].begin, ref[i].begin);
    }
    EXPECT_LT(scored, 900 + 333) << "the stages read fewer keys than there are";
  }
}

// A run of keys far above the rest (a passage the query asks about) survives every stage: a run
// of chunk / 2 keys holds one of the first stage's samples, whose mass estimate keeps it on top.
TEST(ChunkSelection, FindsAPlantedRun) {
  for (int planted : {0, 1234, 3984, 2025}) {
    Fixture f(1, 2, 1, 32, {4000}, 9);
    const float* q1 = f.q.data() + 32;  // the second query head asks
    for (int x = planted; x < planted + 16; ++x)
      for (int y = 0; y < 32; ++y) f.k[0][static_cast<size_t>(x) * 32 + y] = 3.0f * q1[y];
    std::vector<const float*> rows = {f.q.data(), q1};
    const ChunkQueries cq{&f.view, 0, 32, 2, rows.data(), 0.177f};
    std::vector<KeyRange> cand;
    for (int x = 0; x < 4000; x += 32) cand.push_back({0, x, std::min(4000, x + 32)});
    const auto kept = select_chunks(cq, cand, 3);
    int covered = 0;
    for (const KeyRange& c : kept)
      for (int x = planted; x < planted + 16; ++x) covered += c.begin <= x && x < c.end;
    EXPECT_GT(covered, 0) << "run at " << planted;
  }
}

TEST(SparseAttention, FastMatchesReference) {
  ThreadPool pool(2);
  const SparseAttentionConfig c = small_budget();
  struct Shape { int n, nq, nkv, hd; std::vector<int> seg; bool mass_max; };
  for (const Shape& s : {Shape{1, 9, 3, 64, {300, 0, 77}, true},    // SmolLM2-like decode
                         Shape{1, 4, 1, 256, {400}, false},          // Gemma-like, mean masses
                         Shape{70, 9, 3, 64, {200, 61}, true},       // prefill: two query blocks
                         Shape{5, 6, 2, 20, {150}, false}}) {        // odd head_dim
    Fixture f(s.n, s.nq, s.nkv, s.hd, s.seg, 3);
    f.mass_max = s.mass_max;
    const auto ref = f.run(Fixture::kSparseReference, c);
    const auto got = f.run(Fixture::kSparse, c, &pool);
    expect_same(got, ref, 2e-5f, true);
    // The selection really left keys out: the result is not dense attention's.
    const auto dense = f.run(Fixture::kDenseReference, c);
    float diff = 0;
    for (size_t i = 0; i < dense.out.size(); ++i) diff = std::max(diff, std::fabs(dense.out[i] - ref.out[i]));
    EXPECT_GT(diff, 1e-3f);
  }
}

// With a budget that covers every key, sparse attention is dense attention reordered.
TEST(SparseAttention, FullBudgetEqualsDense) {
  ThreadPool pool(2);
  SparseAttentionConfig c = small_budget();
  c.top_chunks = 1000;
  for (int n : {1, 3, 70}) {
    Fixture f(n, 9, 3, 64, {130, 211, 0, 9}, 5);
    const auto dense = f.run(Fixture::kDenseReference, c);
    expect_same(f.run(Fixture::kSparse, c, &pool), dense, 2e-5f, true);
    expect_same(f.run(Fixture::kSparseReference, c), dense, 1e-6f, true);
  }
}

// Below min_keys the layer is dense attention itself: the same floats.
TEST(SparseAttention, BelowThresholdIsExactlyDense) {
  ThreadPool pool(2);
  SparseAttentionConfig c = small_budget();
  c.min_keys = 500;
  for (int n : {1, 40}) {
    Fixture f(n, 9, 3, 64, {300, 199}, 7);
    SparseSelection sel;
    const auto got = f.run(Fixture::kSparse, c, sel, &pool);
    const auto dense = f.run(Fixture::kDense, c, &pool);
    expect_same(got, dense, 0.0f, true);
    EXPECT_EQ(sel.stats.dense_calls, 1);
    EXPECT_EQ(sel.stats.sparse_calls, 0);
  }
}

// Decode keeps its selection for `refresh` steps while the view only grows, and makes a new one
// when the view changes otherwise; a fresh selection is what a new state would have made.
TEST(SparseAttention, DecodeReusesItsSelectionOnSchedule) {
  SparseAttentionConfig c = small_budget();
  c.refresh = 3;
  Fixture f(1, 9, 3, 64, {400}, 11);
  for (KvSegment& seg : f.view.segments) seg.n = 300;
  SparseSelection sel;
  for (int step = 0; step < 7; ++step) {
    const auto got = f.run(Fixture::kSparse, c, sel, nullptr);
    EXPECT_EQ(sel.stats.selections, 3 * (step / 3 + 1)) << "step " << step;  // 3 KV heads
    if (step % 3 == 0) {  // a fresh selection: as a new state makes it
      SparseSelection fresh;
      expect_same(got, f.run(Fixture::kSparse, c, fresh, nullptr), 0.0f, true);
    }
    // The stream grows by one key per head, in place (as the full cache does).
    for (KvSegment& seg : f.view.segments) ++seg.n;
  }
  // Another view (a policy that moved its keys): made afresh on the next step.
  const int64_t before = sel.stats.selections;
  f.view.segments[0].pos_offset += 1;
  f.run(Fixture::kSparse, c, sel, nullptr);
  EXPECT_EQ(sel.stats.selections, before + 3);
  // A prefill chunk leaves no decode selection behind.
  Fixture p(10, 9, 3, 64, {400}, 12);
  p.run(Fixture::kSparse, c, sel, nullptr);
  EXPECT_FALSE(sel.valid);
}

TEST(SparseAttention, ConfigErrorsNameTheFlag) {
  EXPECT_EQ(sparse_config_error(SparseAttentionConfig{}), "");
  SparseAttentionConfig c;
  c.chunk = 0;
  EXPECT_NE(sparse_config_error(c).find("--sparse-chunk"), std::string::npos);
  c = {};
  c.refresh = 0;
  EXPECT_NE(sparse_config_error(c).find("--sparse-refresh"), std::string::npos);
  c = {};
  c.top_chunks = -1;
  EXPECT_NE(sparse_config_error(c).find("--sparse-top-chunks"), std::string::npos);
}

}  // namespace
}  // namespace kvc
