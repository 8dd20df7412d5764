// One decode step's attention over a full cache of T keys at SmolLM2's shape (9 query heads, 3
// KV heads x 64), dense against sparse (the default budget, its selection refreshed on its
// schedule, as in decode). Run: build/sparse_attention_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <vector>

#include "ops/attention.h"
#include "ops/sparse_attention.h"
#include "quant/kv_storage.h"

namespace kvc {
namespace {

struct Step {
  std::vector<float> q, kc, vc, out, k, v;
  std::vector<uint8_t> k16, v16;
  KvView view;
  Rope rope{RopeStyle::Norm, 64, 64, 100000.0};
  AttentionArgs a;
  Step(int T, ThreadPool* pool) {
    std::mt19937 rng(1);
    std::normal_distribution<float> nd;
    auto fill = [&](std::vector<float>& x, size_t n) {
      x.resize(n);
      for (float& f : x) f = nd(rng);
    };
    fill(q, 9 * 64), fill(kc, 3 * 64), fill(vc, 3 * 64), out.resize(9 * 64);
    fill(k, static_cast<size_t>(3) * T * 64), fill(v, k.size());
    // The cache's rows in its default storage type (f16), as a decode step reads them.
    const size_t row = kv_row_bytes(KvType::kF16, 64);
    k16.resize(static_cast<size_t>(3) * T * row), v16.resize(k16.size());
    for (size_t i = 0; i < static_cast<size_t>(3) * T; ++i) {
      kv_encode_row(KvType::kF16, k.data() + i * 64, 64, k16.data() + i * row);
      kv_encode_row(KvType::kF16, v.data() + i * 64, 64, v16.data() + i * row);
    }
    view.n_heads = 3, view.n_segments = 1;
    for (int h = 0; h < 3; ++h) {
      KvSegment seg;
      seg.k = k16.data() + static_cast<size_t>(h) * T * row;
      seg.v = v16.data() + static_cast<size_t>(h) * T * row;
      seg.n = T, seg.k_type = seg.v_type = KvType::kF16;
      view.segments.push_back(seg);
    }
    a.n_tokens = 1, a.n_q_heads = 9, a.n_kv_heads = 3, a.head_dim = 64;
    a.q = q.data(), a.q_pos0 = T, a.rope = &rope, a.k_chunk = kc.data(), a.v_chunk = vc.data();
    a.view = &view, a.scale = 0.125f, a.out = out.data(), a.pool = pool;
  }
};

void BM_Dense(benchmark::State& state) {
  ThreadPool pool(2);
  Step s(static_cast<int>(state.range(0)), &pool);
  for (auto _ : state) attention(s.a);
}

void BM_Sparse(benchmark::State& state) {
  ThreadPool pool(2);
  Step s(static_cast<int>(state.range(0)), &pool);
  SparseAttentionConfig c;
  SparseSelection sel;
  for (auto _ : state) sparse_attention(s.a, c, sel);
}

BENCHMARK(BM_Dense)->Arg(1024)->Arg(2048)->Arg(4096)->Arg(8192)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Sparse)->Arg(2048)->Arg(4096)->Arg(8192)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace kvc

BENCHMARK_MAIN();
