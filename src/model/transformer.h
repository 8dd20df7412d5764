// The forward pass, top to bottom: embeddings -> blocks (norm, q/k/v, RoPE, attention over the
// layer's cache, output projection, FFN) -> final norm. The caches are handed in: the pass
// neither knows nor cares which policy they implement.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "cache/kv_cache.h"
#include "model/config.h"
#include "model/weights.h"
#include "ops/matmul.h"
#include "ops/rope.h"
#include "ops/sparse_attention.h"
#include "ops/thread_pool.h"

namespace kvc {

// Buffers for one chunk, grown on demand and reused from chunk to chunk.
struct ForwardScratch {
  int capacity = 0;  // tokens
  std::vector<float> x, xb, q, k, v, att, ffn_gate, ffn_up, chunk_mass;
  KvView view;
  ActivationScratch act;
  // Per layer: sparse attention's decode selection, reused between steps (empty when dense).
  // Only a cache of work: forgetting it costs one fresh selection.
  std::vector<SparseSelection> sparse;
  void reserve(const ModelConfig& c, int n_tokens);
};

class Transformer {
 public:
  Transformer(const ModelConfig& config, const ModelWeights& weights);

  // Runs n tokens through every layer; caches[l] is layer l's cache and receives the tokens.
  // Afterwards scratch.x holds the final-normed hidden state of every token ([n][n_embd]).
  // Once *cancel is set (polled between blocks and inside attention) it throws kvc::Cancelled,
  // leaving the caches of the layers already done holding the chunk: reset them.
  // `sparse`, if given, makes the global layers attend sparsely (ops/sparse_attention.h); local
  // (sliding-window) layers keep their native window and dense attention.
  void forward(std::span<const int32_t> tokens, std::span<LayerKvCache* const> caches,
               const CacheConfig& policy, ThreadPool& pool, ForwardScratch& s,
               const std::atomic<bool>* cancel = nullptr,
               const SparseAttentionConfig* sparse = nullptr) const;

  // Logits of tokens [t0, t0 + n) of the last forward pass, [n][vocab] into out.
  void logits(const ForwardScratch& s, int t0, int n, float* out, ThreadPool& pool,
              ActivationScratch& act) const;

  // One cache per layer as the policy asks: global layers follow `policy`, Gemma's local layers
  // keep their native sliding window.
  std::vector<std::unique_ptr<LayerKvCache>> make_caches(const CacheConfig& policy) const;
  // Bytes of keys and values (f32) that make_caches(policy) allocates over all layers, before
  // the policies' bookkeeping; saturates at UINT64_MAX instead of overflowing.
  uint64_t kv_bytes(const CacheConfig& policy) const;

  const ModelConfig& config() const { return config_; }

 private:
  // tokens: the chunk's ids, which the cache receives with its keys and values; stored: the
  // row types the caches keep (with_storage of the policy, resolved once per forward pass).
  void attention_block(int layer, std::span<const int32_t> tokens, LayerKvCache& cache,
                       const CacheConfig& policy, const KvShape& stored, ThreadPool& pool,
                       ForwardScratch& s, const std::atomic<bool>* cancel,
                       const SparseAttentionConfig* sparse) const;
  void ffn_block(int layer, int n, ThreadPool& pool, ForwardScratch& s) const;

  const ModelConfig& config_;
  const ModelWeights& weights_;
  std::vector<Rope> ropes_;  // per layer (Gemma's local layers use another base)
};

}  // namespace kvc
