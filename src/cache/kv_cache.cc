// The factory: validates the user's choice (cache_config.cc) and builds the policy.
#include "cache/kv_cache.h"

#include "base/error.h"
#include "cache/policies.h"

namespace kvc {

bool uses_span_cascade(const CacheConfig& c) {
  return c.policy == "cascade" && (c.unit == "span" || !c.level_sizes.empty() ||
                                   c.value_norm_weight || c.unit_score != "sum" ||
                                   c.unit_share != "head" || c.share_reduce != "sum" ||
                                   c.unit_compete != "newest");
}

int64_t cache_slots(const CacheConfig& c) {
  return c.policy == "full" ? c.context : static_cast<int64_t>(c.sinks) + c.size;
}

std::unique_ptr<LayerKvCache> make_layer_cache(const CacheConfig& c, const KvShape& shape,
                                               const KeyRotator& rotator) {
  if (shape.n_heads <= 0 || shape.head_dim <= 0)
    fail("kv cache: bad shape ({} heads of {} dims)", shape.n_heads, shape.head_dim);
  if (const std::string error = cache_config_error(c); !error.empty()) fail("kv cache: {}", error);
  if (c.policy == "full") return make_full_cache(c.context, shape);
  if (c.policy == "window") return make_window_cache(c.sinks, c.size, shape, rotator);
  if (c.policy == "oracle") return make_oracle_cache(c, shape, rotator);
  if (c.policy == "cascade") {
    if (!uses_span_cascade(c)) return make_cascade_cache(c, shape, rotator);
    const KeyRotator* one[] = {&rotator};
    return std::move(make_layer_caches(c, shape, one)[0]);
  }
  return make_h2o_cache(c, shape, rotator);
}

std::vector<std::unique_ptr<LayerKvCache>> make_layer_caches(
    const CacheConfig& c, const KvShape& shape, std::span<const KeyRotator* const> rotators) {
  std::vector<std::unique_ptr<LayerKvCache>> caches;
  if (!uses_span_cascade(c)) {
    for (const KeyRotator* r : rotators) caches.push_back(make_layer_cache(c, shape, *r));
    return caches;
  }
  if (shape.n_heads <= 0 || shape.head_dim <= 0)
    fail("kv cache: bad shape ({} heads of {} dims)", shape.n_heads, shape.head_dim);
  if (const std::string error = cache_config_error(c); !error.empty()) fail("kv cache: {}", error);
  CacheConfig span = c;
  if (c.unit == "token") span.unit_max = 1;  // unequal sub-caches of single tokens
  return make_span_cascade_caches(span, shape, rotators);
}

}  // namespace kvc
