// cache_config_error(): the rules a CacheConfig must keep, in one place, so that a flag, a
// request and the factory reject the same configs with the same words.
#include <fmt/format.h>

#include "cache/kv_cache.h"

namespace kvc {

std::string cache_config_error(const CacheConfig& c, const CacheFieldNames& n) {
  if (c.policy != "full" && c.policy != "window" && c.policy != "cascade" && c.policy != "h2o")
    return fmt::format("{} must be full, window, cascade or h2o, got '{}'", n.policy, c.policy);
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
    if (c.cascades < 1 || c.cascades > kMaxCascades)
      return fmt::format("{} must be in 1..{}, got {}", n.cascades, kMaxCascades, c.cascades);
    if (c.size % c.cascades != 0)
      return fmt::format("{} ({}) must be a multiple of {} ({}): each cascade holds an equal "
                         "share of the slots",
                         n.size, c.size, n.cascades, c.cascades);
  }
  if (c.policy == "h2o" && c.size < 2)
    return fmt::format("{} must be at least 2 for h2o (half recent tokens, half heavy hitters), "
                       "got {}",
                       n.size, c.size);
  return "";
}

}  // namespace kvc
