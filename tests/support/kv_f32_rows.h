// Tests that build or read KV rows stored as f32 (KvType::kF32) see them as floats: a segment's
// rows are bytes (cache/kv_cache.h), and f32 rows are the floats themselves.
#pragma once

#include <cstdint>
#include <vector>

#include "cache/kv_cache.h"

namespace kvc {

inline const uint8_t* as_rows(const float* x) { return reinterpret_cast<const uint8_t*>(x); }
inline const float* as_f32(const uint8_t* rows) { return reinterpret_cast<const float*>(rows); }

// A config's keys and values stored as f32, for tests that compare them exactly.
inline CacheConfig f32_storage(CacheConfig c) {
  c.type_k = c.type_v = "f32";
  return c;
}

// Row i of head_dim elements in `type`, decoded to f32.
inline std::vector<float> decoded_row(const uint8_t* rows, KvType type, int head_dim, int i) {
  std::vector<float> x(static_cast<size_t>(head_dim));
  kv_decode_row(type, rows + static_cast<size_t>(i) * kv_row_bytes(type, head_dim), head_dim, x.data());
  return x;
}

}  // namespace kvc
