#include "cache/view_read_bytes.h"

namespace kvc {

uint64_t view_read_bytes(const KvView& view, int head_dim) {
  uint64_t total = 0;
  for (const KvSegment& s : view.segments) {
    const uint64_t n = static_cast<uint64_t>(s.n);
    total += n * (kv_row_bytes(s.k_type, head_dim) + kv_row_bytes(s.v_type, head_dim));
    if (s.mass) total += n * sizeof(float);
    if (s.pos) total += n * sizeof(int64_t);
  }
  return total;
}

}  // namespace kvc
