// Cost of one caching operation (insert one token + score update) per layer, and of computing
// attention masses at decode. Run: build-*/cache_bench [--benchmark_filter=...]
//
// Paper setting (Willette et al.: 1.33 ms concatenating cache, 0.54 ms theirs, GPU): batch 8,
// 32 heads, head size 128, NS = 64, S = 1024 / 16384; the batch is 8 independent caches here.
// Model settings: SmolLM2 (3 KV heads x 64), Gemma 3 global layers (1 x 256); S = 2048, NS = 64, C = 4.
#include <benchmark/benchmark.h>

#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "cache/kv_cache.h"
#include "ops/attention.h"
#include "ops/rope.h"

namespace kvc {
namespace {

struct Setup {
  const char* policy;
  int batch, heads, head_dim, size, cascades;
};

// Fills `cache` past its capacity so that it is in its steady state.
void warm(LayerKvCache& cache, const KvShape& shape, int64_t tokens, std::mt19937& rng) {
  std::normal_distribution<float> nd;
  const int chunk = 256;
  std::vector<float> k(static_cast<size_t>(chunk) * shape.n_heads * shape.head_dim), v(k.size());
  std::vector<float> cm(static_cast<size_t>(shape.n_heads) * chunk);
  for (float& x : k) x = nd(rng);
  for (float& x : v) x = nd(rng);
  KvView view;
  for (int64_t t = 0; t < tokens; t += chunk) {
    cache.view(view);
    for (auto& s : view.segments)
      if (s.mass)
        for (int i = 0; i < s.n; ++i) s.mass[i] = std::fabs(nd(rng)) * 1e-3f;
    for (float& x : cm) x = std::fabs(nd(rng)) * 1e-3f;
    cache.commit(k.data(), v.data(), chunk, cache.wants_mass() ? cm.data() : nullptr, nullptr);
  }
}

void BM_CacheOp(benchmark::State& state, Setup st) {
  const KvShape shape{st.heads, st.head_dim};
  Rope rope(RopeStyle::Neox, st.head_dim, st.head_dim, 10000.0);
  CacheConfig cfg;
  cfg.policy = st.policy, cfg.sinks = 64, cfg.size = st.size, cfg.cascades = st.cascades, cfg.beta = 0.9999f;
  std::mt19937 rng(1);
  std::vector<std::unique_ptr<LayerKvCache>> caches;
  size_t bytes = 0;
  for (int b = 0; b < st.batch; ++b) {
    caches.push_back(make_layer_cache(cfg, shape, rope));
    warm(*caches.back(), shape, 64 + 2 * static_cast<int64_t>(st.size), rng);
    bytes += caches.back()->bytes();
  }
  std::normal_distribution<float> nd;
  std::vector<float> k(static_cast<size_t>(st.heads) * st.head_dim), v(k.size()), cm(st.heads);
  for (float& x : k) x = nd(rng);
  for (float& x : v) x = nd(rng);
  KvView view;
  for (auto _ : state) {
    for (auto& cache : caches) {
      cache->view(view);  // zeroes the masses: part of the operation
      for (float& x : cm) x = 1e-4f;
      cache->commit(k.data(), v.data(), 1, cm.data(), nullptr);
    }
    benchmark::ClobberMemory();
  }
  state.counters["MB"] = static_cast<double>(bytes) / 1e6;
}

// Decode attention (one token) over a full cascade view, with and without masses.
void BM_DecodeAttention(benchmark::State& state, int nq, int nkv, int hd, bool mass, int threads) {
  const KvShape shape{nkv, hd};
  Rope rope(RopeStyle::Neox, hd, hd, 10000.0);
  CacheConfig cfg;
  cfg.policy = "cascade", cfg.sinks = 64, cfg.size = 2048, cfg.cascades = 4;
  std::mt19937 rng(2);
  auto cache = make_layer_cache(cfg, shape, rope);
  warm(*cache, shape, 64 + 4096, rng);
  std::normal_distribution<float> nd;
  std::vector<float> q(static_cast<size_t>(nq) * hd), k(static_cast<size_t>(nkv) * hd), v(k.size()),
      out(q.size()), cm(nkv);
  for (float& x : q) x = nd(rng);
  for (float& x : k) x = nd(rng);
  for (float& x : v) x = nd(rng);
  ThreadPool pool(threads);
  KvView view;
  cache->view(view);
  AttentionArgs a;
  a.n_tokens = 1, a.n_q_heads = nq, a.n_kv_heads = nkv, a.head_dim = hd;
  a.q = q.data(), a.q_pos0 = cache->next_position(), a.rope = &rope;
  a.k_chunk = k.data(), a.v_chunk = v.data(), a.view = &view, a.scale = 1.0f / std::sqrt(static_cast<float>(hd));
  a.want_mass = mass, a.beta = 0.9999f, a.chunk_mass = cm.data(), a.out = out.data(), a.pool = &pool;
  for (auto _ : state) {
    attention(a);
    benchmark::DoNotOptimize(out.data());
  }
}

void register_all() {
  for (const char* policy : {"window", "cascade", "h2o"}) {
    for (int size : {1024, 16384}) {
      const std::string name = std::string("CacheOp/paper/") + policy + "/S" + std::to_string(size);
      benchmark::RegisterBenchmark(name.c_str(), BM_CacheOp, Setup{policy, 8, 32, 128, size, 4})
          ->Unit(benchmark::kMillisecond);
    }
    benchmark::RegisterBenchmark((std::string("CacheOp/smollm2/") + policy).c_str(), BM_CacheOp,
                                 Setup{policy, 1, 3, 64, 2048, 4})
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark((std::string("CacheOp/gemma/") + policy).c_str(), BM_CacheOp,
                                 Setup{policy, 1, 1, 256, 2048, 4})
        ->Unit(benchmark::kMicrosecond);
  }
  for (int threads : {1, 2})
    for (bool mass : {false, true}) {
      const std::string suffix = std::string(mass ? "/mass" : "/nomass") + "/threads" + std::to_string(threads);
      benchmark::RegisterBenchmark(("DecodeAttention/smollm2" + suffix).c_str(), BM_DecodeAttention, 9, 3, 64, mass, threads)
          ->Unit(benchmark::kMicrosecond);
      benchmark::RegisterBenchmark(("DecodeAttention/gemma" + suffix).c_str(), BM_DecodeAttention, 4, 1, 256, mass, threads)
          ->Unit(benchmark::kMicrosecond);
    }
}

}  // namespace
}  // namespace kvc

int main(int argc, char** argv) {
  kvc::register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
