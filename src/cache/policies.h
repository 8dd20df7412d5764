// Constructors of the individual policies; make_layer_cache() (kv_cache.cc) picks one.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "cache/kv_cache.h"

namespace kvc {

std::unique_ptr<LayerKvCache> make_full_cache(int64_t context, const KvShape& shape);
std::unique_ptr<LayerKvCache> make_window_cache(int sinks, int size, const KvShape& shape,
                                                const KeyRotator& rotator);
std::unique_ptr<LayerKvCache> make_cascade_cache(const CacheConfig& config, const KvShape& shape,
                                                 const KeyRotator& rotator);
// One cache per layer, rotators[l] for layer l: with `unit_share` model they share one cascade.
std::vector<std::unique_ptr<LayerKvCache>> make_span_cascade_caches(
    const CacheConfig& config, const KvShape& shape, std::span<const KeyRotator* const> rotators);
std::unique_ptr<LayerKvCache> make_oracle_cache(const CacheConfig& config, const KvShape& shape,
                                                const KeyRotator& rotator);
std::unique_ptr<LayerKvCache> make_h2o_cache(const CacheConfig& config, const KvShape& shape,
                                             const KeyRotator& rotator);

}  // namespace kvc
