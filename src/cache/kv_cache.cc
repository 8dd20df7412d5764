// The factory: validates the user's choice (cache_config.cc) and builds the policy.
#include "cache/kv_cache.h"

#include <fmt/format.h>

#include "base/error.h"
#include "cache/policies.h"

namespace kvc {

bool uses_span_cascade(const CacheConfig& c) {
  return c.policy == "cascade" && (c.unit == "span" || !c.level_sizes.empty() ||
                                   c.value_norm_weight || c.unit_score != "sum" ||
                                   c.unit_share != "head" || c.share_reduce != "sum" ||
                                   c.unit_compete != "newest");
}

KvShape with_storage(KvShape shape, const CacheConfig& c) {
  shape.k_type = parse_kv_type(c.type_k).value_or(KvType::kF32);
  shape.v_type = parse_kv_type(c.type_v).value_or(KvType::kF32);
  return shape;
}

std::string kv_shape_error(const KvShape& shape) {
  if (shape.n_heads <= 0 || shape.head_dim <= 0)
    return fmt::format("bad shape ({} heads of {} dims)", shape.n_heads, shape.head_dim);
  for (KvType t : {shape.k_type, shape.v_type})
    if (shape.head_dim % kv_type_block(t) != 0)
      return fmt::format("{} stores blocks of {}, which head_dim {} is not a multiple of",
                         kv_type_name(t), kv_type_block(t), shape.head_dim);
  return "";
}

int64_t cache_slots(const CacheConfig& c) {
  return c.policy == "full" ? c.context : static_cast<int64_t>(c.sinks) + c.size;
}

std::unique_ptr<LayerKvCache> make_layer_cache(const CacheConfig& c, const KvShape& layer,
                                               const KeyRotator& rotator) {
  if (const std::string error = cache_config_error(c); !error.empty()) fail("kv cache: {}", error);
  const KvShape shape = with_storage(layer, c);
  if (const std::string error = kv_shape_error(shape); !error.empty()) fail("kv cache: {}", error);
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
    const CacheConfig& c, const KvShape& layer, std::span<const KeyRotator* const> rotators) {
  std::vector<std::unique_ptr<LayerKvCache>> caches;
  if (!uses_span_cascade(c)) {
    for (const KeyRotator* r : rotators) caches.push_back(make_layer_cache(c, layer, *r));
    return caches;
  }
  if (const std::string error = cache_config_error(c); !error.empty()) fail("kv cache: {}", error);
  const KvShape shape = with_storage(layer, c);
  if (const std::string error = kv_shape_error(shape); !error.empty()) fail("kv cache: {}", error);
  CacheConfig span = c;
  if (c.unit == "token") span.unit_max = 1;  // unequal sub-caches of single tokens
  return make_span_cascade_caches(span, shape, rotators);
}

}  // namespace kvc
