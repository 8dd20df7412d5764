// The factory: validates the user's choice and builds the policy.
#include "cache/kv_cache.h"

#include <algorithm>

#include "base/error.h"
#include "cache/policies.h"

namespace kvc {

bool uses_span_cascade(const CacheConfig& c) {
  return c.policy == "cascade" && (c.unit == "span" || !c.level_sizes.empty() ||
                                   c.value_norm_weight || c.unit_score != "sum");
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
  if (c.policy == "window") return make_window_cache(c.sinks, c.size, shape, rotator);
  if (!(c.beta > 0.0f && c.beta <= 1.0f)) fail("kv cache: beta must be in (0, 1], got {}", c.beta);
  if (c.policy == "oracle") return make_oracle_cache(c, shape, rotator);
  if (c.policy == "cascade") {
    if (c.unit != "token" && c.unit != "span")
      fail("kv cache: unknown cascade unit '{}' (token, span)", c.unit);
    if (c.unit_score != "sum" && c.unit_score != "mean" && c.unit_score != "peak")
      fail("kv cache: unknown unit score '{}' (sum, mean, peak)", c.unit_score);
    if (!c.level_sizes.empty()) {
      if (c.level_sizes.size() > 30) fail("kv cache: at most 30 sub-caches, got {}", c.level_sizes.size());
      int64_t sum = 0;
      for (int w : c.level_sizes) {
        if (w < 1) fail("kv cache: sub-cache sizes must be positive, got {}", w);
        sum += w;
      }
      if (sum != c.size) fail("kv cache: sub-cache sizes add up to {}, not the size {}", sum, c.size);
    } else if (c.cascades <= 0 || c.cascades > 30 || c.size % c.cascades != 0) {
      fail("kv cache: size {} must split into {} equal sub-caches (1..30)", c.size, c.cascades);
    }
    if (!uses_span_cascade(c)) return make_cascade_cache(c, shape, rotator);
    const int g = c.unit == "span" ? c.unit_max : 1;
    if (g < 1) fail("kv cache: the longest unit must be at least 1 token, got {}", g);
    const int smallest = c.level_sizes.empty()
                             ? c.size / c.cascades
                             : *std::min_element(c.level_sizes.begin(), c.level_sizes.end());
    if (smallest < 2 * g - 1)
      fail("kv cache: every sub-cache must hold a whole unit ({} slots for --unit-max {}), the "
           "smallest has {}", 2 * g - 1, g, smallest);
    CacheConfig span = c;
    span.unit_max = g;
    return make_span_cascade_cache(span, shape, rotator);
  }
  if (c.policy == "h2o") {
    if (c.size < 2) fail("kv cache: h2o needs size >= 2, got {}", c.size);
    return make_h2o_cache(c, shape, rotator);
  }
  fail("kv cache: unknown policy '{}' (full, window, cascade, h2o)", c.policy);
}

}  // namespace kvc
