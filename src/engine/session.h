// A stream of tokens through one model with one cache policy: strided prefill, next-token
// logits, and per-token logits for scoring text. Each session owns its caches and threads; the
// model is shared and read-only.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "cache/kv_cache.h"
#include "model/model.h"
#include "ops/thread_pool.h"

namespace kvc {

struct SessionOptions {
  int threads = 0;      // 0: usable_cpus(); ignored with a shared pool
  CacheConfig cache;
  int stride = 512;     // prefill chunk: a longer input is fed this many tokens at a time
  // Borrowed threads instead of the session's own: a server's sessions, which one engine thread
  // runs one at a time, share one pool. The caller keeps it alive and never runs two sessions
  // of one pool at once. Null: the session makes its own.
  ThreadPool* shared_pool = nullptr;
  // Attention of the global layers: dense (exact) or sparse (ops/sparse_attention.h).
  bool sparse_attention = false;
  SparseAttentionConfig sparse{};
};

class Session {
 public:
  Session(const Model& model, const SessionOptions& options);

  // Appends tokens to the stream, `stride` at a time: each chunk attends to the cache and to
  // itself, then enters the cache. Afterwards logits() predict the token after the last one.
  void feed(std::span<const int32_t> tokens);

  // Like feed, and calls on_logits(i, logits) for every token i of `tokens` with the logits
  // predicting token i + 1 (for perplexity). Logits are computed in small blocks, so a long
  // stride does not hold [stride][vocab] floats at once.
  void feed_scored(std::span<const int32_t> tokens,
                   const std::function<void(int64_t i, const float* logits)>& on_logits);

  // While *flag is set (a Ctrl-C), feed() and feed_scored() throw kvc::Cancelled, within
  // milliseconds even inside a long chunk (the forward pass polls it), and the stream is reset:
  // a half-fed chunk would leave the layers' caches out of step. Null: never cancelled.
  void set_cancel(const std::atomic<bool>* flag) { cancel_ = flag; }

  const float* logits() const { return logits_.data(); }
  int vocab_size() const;
  int64_t n_past() const { return n_past_; }
  // Starts a new stream; memory stays allocated.
  void reset();
  // Starts a new stream with other caches (passkey --oracle pins each prompt's key).
  void reconfigure(const CacheConfig& cache);
  // Bytes held by the caches of all layers.
  size_t kv_bytes() const;
  // Bytes of keys, values and bookkeeping that the next decode step's attention reads over all
  // layers (view_read_bytes of each layer's view as it stands).
  uint64_t kv_read_bytes();
  const SessionOptions& options() const { return options_; }
  const Model& model() const { return model_; }
  // Read-only view of one layer's cache, for diagnostics (which tokens survive).
  const LayerKvCache& cache(int layer) const { return *caches_[static_cast<size_t>(layer)]; }
  ThreadPool& pool() { return *pool_; }
  // Saving and loading (engine/session_file.h), between feeds: the stream's own state (its
  // position, the next-token logits, sparse attention's kept selections) and each layer's cache.
  // Loading needs a session made with the same model and options.
  void visit_stream_state(StateFields& f);
  int n_cache_layers() const { return static_cast<int>(caches_.size()); }
  void visit_layer_state(int layer, StateFields& f) {
    caches_[static_cast<size_t>(layer)]->visit_state(f);
  }
  // What sparse attention did so far, summed over layers (zeros when dense).
  SparseStats sparse_stats() const;
  // The same per layer (empty until a forward pass ran with sparse attention).
  std::vector<SparseStats> sparse_layer_stats() const;

 private:
  void feed_chunk(std::span<const int32_t> chunk);

  const Model& model_;
  SessionOptions options_;
  std::unique_ptr<ThreadPool> own_pool_;  // null with a shared pool
  ThreadPool* pool_;
  std::vector<std::unique_ptr<LayerKvCache>> caches_;
  std::vector<LayerKvCache*> cache_ptrs_;
  ForwardScratch scratch_;
  ActivationScratch logits_act_;
  std::vector<float> logits_;
  std::vector<float> block_logits_;
  int64_t n_past_ = 0;
  const std::atomic<bool>* cancel_ = nullptr;
};

}  // namespace kvc
