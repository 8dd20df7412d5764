// Bytes that attention reads of a cache view in one decode step: the roofline's KV term.
#pragma once

#include <cstdint>

#include "cache/kv_cache.h"

namespace kvc {

// For every slot of every segment: its key and value (a row each, in its storage type), its mass (read and
// added to) when the segment has one, its position when the segment has one (sliding-window
// masks). The chunk's own key and value are left out: one token's worth per step.
uint64_t view_read_bytes(const KvView& view, int head_dim);

}  // namespace kvc
