#include "eval/cache_census.h"

#include <algorithm>
#include <unordered_set>

#include "engine/session.h"
#include "model/model.h"

namespace kvc {

CacheCensus take_census(const Session& session) {
  const ModelConfig& config = session.model().config();
  CacheCensus census;
  census.stream_length = session.n_past();
  for (int l = 0; l < config.n_layers; ++l) {
    if (config.layer_is_local[l]) continue;  // native sliding window, not the policy's
    for (int h = 0; h < config.n_kv_heads; ++h)
      for (const auto& s : session.cache(l).slots(h))
        census.slots.push_back({l, h, s.index, s.position, s.score});
  }
  return census;
}

double fraction_kept(const Session& session, std::span<const int64_t> indices) {
  const ModelConfig& config = session.model().config();
  if (indices.empty()) return 1.0;
  const std::unordered_set<int64_t> wanted(indices.begin(), indices.end());
  double sum = 0.0;
  int caches = 0;
  for (int l = 0; l < config.n_layers; ++l) {
    if (config.layer_is_local[l]) continue;
    for (int h = 0; h < config.n_kv_heads; ++h, ++caches) {
      int64_t kept = 0;
      for (const auto& s : session.cache(l).slots(h)) kept += wanted.count(s.index);
      sum += static_cast<double>(kept) / static_cast<double>(wanted.size());
    }
  }
  return caches > 0 ? sum / caches : 1.0;
}

double fraction_intact(const Session& session, const std::vector<std::vector<int64_t>>& copies) {
  const ModelConfig& config = session.model().config();
  if (copies.empty()) return 1.0;
  int intact = 0, caches = 0;
  for (int l = 0; l < config.n_layers; ++l) {
    if (config.layer_is_local[l]) continue;
    for (int h = 0; h < config.n_kv_heads; ++h, ++caches) {
      std::unordered_set<int64_t> held;
      for (const auto& s : session.cache(l).slots(h)) held.insert(s.index);
      intact += std::any_of(copies.begin(), copies.end(), [&](const std::vector<int64_t>& copy) {
        return std::all_of(copy.begin(), copy.end(), [&](int64_t t) { return held.count(t) > 0; });
      });
    }
  }
  return caches > 0 ? static_cast<double>(intact) / caches : 1.0;
}

}  // namespace kvc
