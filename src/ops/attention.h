// Attention of a chunk of queries over a cache view plus the chunk itself (causal), returning
// the per-key attention mass the cache policies score with. See cache/kv_cache.h for the view.
#pragma once

#include <atomic>
#include <cstdint>

#include "cache/kv_cache.h"
#include "ops/rope.h"
#include "ops/thread_pool.h"

namespace kvc {

struct AttentionArgs {
  int n_tokens = 0;
  int n_q_heads = 0;
  int n_kv_heads = 0;   // query head h reads KV head h / (n_q_heads / n_kv_heads)
  int head_dim = 0;
  // Queries BEFORE rotation, [n_tokens][n_q_heads][head_dim]. Query j sits at q_pos0 + j and is
  // rotated with `rope` at (q_pos0 + j - pos_offset) for each segment of the view.
  const float* q = nullptr;
  int64_t q_pos0 = 0;
  const Rope* rope = nullptr;
  // The chunk's own keys (rotated at q_pos0 + j) and values, [n_tokens][n_kv_heads][head_dim].
  const float* k_chunk = nullptr;
  const float* v_chunk = nullptr;
  const KvView* view = nullptr;   // cache segments, may hold no slots
  float scale = 0.0f;             // usually 1/sqrt(head_dim)
  float softcap = 0.0f;           // logit soft-capping (0 = off)
  int window = 0;                 // > 0: key at position p is masked for query position q if q - p >= window
  // Scoring (only when want_mass): EMA weights (1 - beta) * beta^(n_tokens - 1 - j) per query j,
  // reduced over the query heads of a KV head with max (or mean).
  bool want_mass = false;
  float beta = 1.0f;
  bool mass_max = true;
  float* chunk_mass = nullptr;    // [n_kv_heads][n_tokens]: mass each chunk token received
  float* out = nullptr;           // [n_tokens][n_q_heads][head_dim]
  ThreadPool* pool = nullptr;     // null: run on the calling thread
  // Polled between blocks of queries: once set, attention returns early and `out` and the masses
  // are unfinished (the caller throws them away). A long chunk stops within milliseconds.
  const std::atomic<bool>* cancel = nullptr;
};

// The fast kernel: SIMD dot products that read the cached keys and values as stored (f32, f16,
// q8_0; KvSegment::k_type, v_type), converting a vector at a time, never a copy of the cache.
void attention(const AttentionArgs& args);
// Plain loops in double over the rows decoded by the storage codec (quant/kv_storage.h), for
// tests: the fast kernel must match it.
void attention_reference(const AttentionArgs& args);

}  // namespace kvc
