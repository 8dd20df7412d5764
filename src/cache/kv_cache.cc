// The factory: validates the user's choice and builds the policy.
#include "cache/kv_cache.h"

#include <limits>

#include "base/error.h"
#include "cache/policies.h"

namespace kvc {

int64_t cache_slots(const CacheConfig& c) {
  return c.policy == "full" ? c.context : static_cast<int64_t>(c.sinks) + c.size;
}

std::unique_ptr<LayerKvCache> make_layer_cache(const CacheConfig& c, const KvShape& shape,
                                               const KeyRotator& rotator) {
  if (shape.n_heads <= 0 || shape.head_dim <= 0)
    fail("kv cache: bad shape ({} heads of {} dims)", shape.n_heads, shape.head_dim);
  if (c.policy == "full") {
    if (c.context <= 0) fail("kv cache: context must be positive, got {}", c.context);
    return make_full_cache(c.context, shape);
  }
  if (c.sinks < 0) fail("kv cache: sinks must be >= 0, got {}", c.sinks);
  if (c.size <= 0) fail("kv cache: size must be positive, got {}", c.size);
  // The policies index slots with int.
  if (cache_slots(c) > std::numeric_limits<int>::max())
    fail("kv cache: {} sinks + {} slots is too many slots", c.sinks, c.size);
  if (c.policy == "window") return make_window_cache(c.sinks, c.size, shape, rotator);
  if (!(c.beta > 0.0f && c.beta <= 1.0f)) fail("kv cache: beta must be in (0, 1], got {}", c.beta);
  if (c.policy == "cascade") {
    if (c.cascades <= 0 || c.cascades > 30 || c.size % c.cascades != 0)
      fail("kv cache: size {} must split into {} equal sub-caches (1..30)", c.size, c.cascades);
    return make_cascade_cache(c, shape, rotator);
  }
  if (c.policy == "h2o") {
    if (c.size < 2) fail("kv cache: h2o needs size >= 2, got {}", c.size);
    return make_h2o_cache(c, shape, rotator);
  }
  fail("kv cache: unknown policy '{}' (full, window, cascade, h2o)", c.policy);
}

}  // namespace kvc
