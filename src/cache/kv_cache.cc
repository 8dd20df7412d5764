// The factory: validates the user's choice and builds the policy.
#include "cache/kv_cache.h"

#include "base/error.h"
#include "cache/policies.h"

namespace kvc {

std::unique_ptr<LayerKvCache> make_layer_cache(const CacheConfig& c, const KvShape& shape,
                                               const KeyRotator& rotator) {
  (void)rotator;
  if (shape.n_heads <= 0 || shape.head_dim <= 0)
    fail("kv cache: bad shape ({} heads of {} dims)", shape.n_heads, shape.head_dim);
  if (c.policy == "full") {
    if (c.context <= 0) fail("kv cache: context must be positive, got {}", c.context);
    return make_full_cache(c.context, shape);
  }
  fail("kv cache: unknown policy '{}' (full, window, cascade, h2o)", c.policy);
}

}  // namespace kvc
