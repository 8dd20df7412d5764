#include "eval/cache_census.h"

#include <algorithm>
#include <thread>

#include "base/error.h"
#include "engine/session.h"
#include "model/model.h"

namespace kvc {

CacheCensus cache_census(const Model& model, const SessionOptions& options,
                         std::span<const int32_t> tokens,
                         const std::function<void(int64_t, int64_t)>& progress,
                         const std::atomic<bool>* cancel) {
  if (options.stride < 1) fail("--stride must be at least 1, got {}", options.stride);
  const unsigned hw = std::thread::hardware_concurrency();
  ThreadPool pool(options.threads > 0 ? options.threads : (hw > 0 ? static_cast<int>(hw) : 1));
  const Transformer& tf = model.transformer();
  auto caches = tf.make_caches(options.cache);
  std::vector<LayerKvCache*> ptrs;
  for (auto& c : caches) ptrs.push_back(c.get());
  ForwardScratch scratch;

  CacheCensus census;
  const size_t stride = static_cast<size_t>(options.stride);
  const int64_t total = static_cast<int64_t>(tokens.size());
  for (size_t i = 0; i < tokens.size(); i += stride) {
    if (cancel && cancel->load()) {
      census.cancelled = true;
      break;
    }
    const auto chunk = tokens.subspan(i, std::min(stride, tokens.size() - i));
    for (const auto* c : ptrs)
      if (c->room() < static_cast<int64_t>(chunk.size()))
        fail("context full after {} tokens (raise -c or use a bounded --cache)", i);
    tf.forward(chunk, ptrs, options.cache, pool, scratch);
    census.stream_length += static_cast<int64_t>(chunk.size());
    if (progress) progress(census.stream_length, total);
  }

  const ModelConfig& config = model.config();
  for (int l = 0; l < config.n_layers; ++l) {
    if (config.layer_is_local[l]) continue;  // native sliding window, not the policy's
    for (int h = 0; h < config.n_kv_heads; ++h)
      for (const auto& s : caches[l]->slots(h))
        census.slots.push_back({l, h, s.index, s.position, s.score});
  }
  return census;
}

}  // namespace kvc
