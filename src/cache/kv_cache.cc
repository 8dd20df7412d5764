// The factory: validates the user's choice (cache_config.cc) and builds the policy.
#include "cache/kv_cache.h"

#include "base/error.h"
#include "cache/policies.h"

namespace kvc {

std::unique_ptr<LayerKvCache> make_layer_cache(const CacheConfig& c, const KvShape& shape,
                                               const KeyRotator& rotator) {
  if (shape.n_heads <= 0 || shape.head_dim <= 0)
    fail("kv cache: bad shape ({} heads of {} dims)", shape.n_heads, shape.head_dim);
  if (const std::string error = cache_config_error(c); !error.empty()) fail("kv cache: {}", error);
  if (c.policy == "full") return make_full_cache(c.context, shape);
  if (c.policy == "window") return make_window_cache(c.sinks, c.size, shape, rotator);
  if (c.policy == "cascade") return make_cascade_cache(c, shape, rotator);
  return make_h2o_cache(c, shape, rotator);
}

}  // namespace kvc
