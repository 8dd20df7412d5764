// cache_config_error(): the rules a CacheConfig must keep, in one place, so that a flag, a
// request and the factory reject the same configs with the same words.
#include <algorithm>

#include <fmt/format.h>

#include "cache/kv_cache.h"

namespace kvc {

std::string cache_config_error(const CacheConfig& c, const CacheFieldNames& n) {
  // `oracle` is passkey's diagnostic (a window with pinned tokens), not offered as a policy.
  if (c.policy != "full" && c.policy != "window" && c.policy != "cascade" && c.policy != "h2o" &&
      c.policy != "oracle")
    return fmt::format("{} must be full, window, cascade or h2o, got '{}'", n.policy, c.policy);
  if (!parse_kv_type(c.type_k))
    return fmt::format("{} must be {}, got '{}'", n.type_k, kKvTypeChoices, c.type_k);
  if (!parse_kv_type(c.type_v))
    return fmt::format("{} must be {}, got '{}'", n.type_v, kKvTypeChoices, c.type_v);
  if (c.context < 1 || c.context > kMaxCacheSlots)
    return fmt::format("{} must be in 1..{}, got {}", n.context, kMaxCacheSlots, c.context);
  if (c.policy == "full") return "";  // the rest only shapes the bounded policies

  if (c.sinks < 0 || c.sinks > kMaxCacheSlots)
    return fmt::format("{} must be in 0..{}, got {}", n.sinks, kMaxCacheSlots, c.sinks);
  if (c.size < 1 || c.size > kMaxCacheSlots)
    return fmt::format("{} must be in 1..{}, got {}", n.size, kMaxCacheSlots, c.size);
  if (int64_t{c.sinks} + c.size > kMaxCacheSlots)
    return fmt::format("{} + {} must be at most {} slots, got {} + {}", n.sinks, n.size,
                       kMaxCacheSlots, c.sinks, c.size);
  if (!(c.beta > 0.0f && c.beta <= 1.0f))
    return fmt::format("{} must be in (0, 1], got {}", n.beta, c.beta);
  if (c.policy == "cascade") {
    if (c.unit != "token" && c.unit != "span")
      return fmt::format("{} must be token or span, got '{}'", n.unit, c.unit);
    if (c.unit_score != "sum" && c.unit_score != "mean" && c.unit_score != "peak")
      return fmt::format("{} must be sum, mean or peak, got '{}'", n.unit_score, c.unit_score);
    if (c.unit_share != "head" && c.unit_share != "layer" && c.unit_share != "model")
      return fmt::format("{} must be head, layer or model, got '{}'", n.unit_share, c.unit_share);
    if (c.share_reduce != "sum" && c.share_reduce != "max")
      return fmt::format("{} must be sum or max, got '{}'", n.share_reduce, c.share_reduce);
    if (c.unit_compete != "newest" && c.unit_compete != "lowest" &&
        c.unit_compete != "lowest-last" && c.unit_compete != "pool")
      return fmt::format("{} must be newest, lowest, lowest-last or pool, got '{}'",
                         n.unit_compete, c.unit_compete);
    if (c.unit_max < 1 || c.unit_max > 4096)
      return fmt::format("{} must be in 1..4096, got {}", n.unit_max, c.unit_max);
    int smallest = 0;
    if (!c.level_sizes.empty()) {
      if (static_cast<int>(c.level_sizes.size()) > kMaxCascades)
        return fmt::format("{}: at most {} sub-caches, got {}", n.level_sizes, kMaxCascades,
                           c.level_sizes.size());
      int64_t sum = 0;
      for (int w : c.level_sizes) {
        if (w < 1) return fmt::format("{} must be positive, got {}", n.level_sizes, w);
        sum += w;
      }
      if (sum != c.size)
        return fmt::format("{} add up to {}, not {} ({})", n.level_sizes, sum, n.size, c.size);
      smallest = *std::min_element(c.level_sizes.begin(), c.level_sizes.end());
    } else {
      if (c.cascades < 1 || c.cascades > kMaxCascades)
        return fmt::format("{} must be in 1..{}, got {}", n.cascades, kMaxCascades, c.cascades);
      if (c.size % c.cascades != 0)
        return fmt::format("{} ({}) must be a multiple of {} ({}): each cascade holds an equal "
                           "share of the slots",
                           n.size, c.size, n.cascades, c.cascades);
      smallest = c.size / c.cascades;
    }
    const int g = c.unit == "span" ? c.unit_max : 1;
    if (smallest < 2 * g - 1)
      return fmt::format("a sub-cache of {} slots cannot hold a whole span of up to {} tokens "
                         "({} {}): lower it or enlarge the sub-caches",
                         smallest, 2 * g - 1, n.unit_max, g);
  }
  if (c.policy == "h2o" && c.size < 2)
    return fmt::format("{} must be at least 2 for h2o (half recent tokens, half heavy hitters), "
                       "got {}",
                       n.size, c.size);
  return "";
}

}  // namespace kvc
