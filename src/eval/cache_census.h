// Which tokens a bounded cache still holds after a long stream: the stream index of every live
// slot of every policy-governed layer and KV head. Feeds the "surviving token ages" histogram.
//
// It drives the transformer directly instead of a Session because it must read the caches'
// slots() afterwards, which a Session does not expose; it skips the logits (a fifth of the work
// for SmolLM2), so it costs a little less than the perplexity pass it mirrors.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace kvc {

class Model;
struct SessionOptions;

struct CensusSlot {
  int layer = 0;
  int head = 0;
  int64_t index = 0;     // original stream index
  int64_t position = 0;  // cache position its key is rotated at
  float score = 0.0f;
};

struct CacheCensus {
  int64_t stream_length = 0;  // tokens fed (the age of a slot is stream_length - 1 - index)
  bool cancelled = false;
  std::vector<CensusSlot> slots;
};

// Streams `tokens` through fresh caches configured as `options` says, in strides, then lists
// the live slots of every global (non sliding-window) layer.
CacheCensus cache_census(const Model& model, const SessionOptions& options,
                         std::span<const int32_t> tokens,
                         const std::function<void(int64_t done, int64_t total)>& progress = {},
                         const std::atomic<bool>* cancel = nullptr);

}  // namespace kvc
