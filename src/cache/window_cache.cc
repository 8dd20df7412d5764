// `window` (StreamingLLM): NS sinks plus a ring of the S most recent tokens.
//
// Positions are cache positions: sinks 0..NS-1, ring tokens numbered by age right after them.
// A ring token's key is rotated once, at a monotonic virtual index (NS + the count of tokens that
// ever entered the ring); the ring's pos_offset = fill - count maps virtual to cache positions,
// so the whole ring slides down one position per step without touching a key. Counting from NS
// makes the virtual position the real one until the ring wraps: no rotation at all, and the
// results equal the full cache's bit for bit while nothing has been evicted.
#include <algorithm>
#include <limits>

#include "base/error.h"
#include "cache/kv_rows.h"
#include "cache/policies.h"

namespace kvc {
namespace {

class WindowCache final : public LayerKvCache {
 public:
  WindowCache(int sinks, int size, const KvShape& shape, const KeyRotator& rotator)
      : ns_(sinks), s_(size), shape_(shape), rotator_(rotator),
        k_(shape.k_type, shape.head_dim, static_cast<size_t>(shape.n_heads) * (sinks + size)),
        v_(shape.v_type, shape.head_dim, static_cast<size_t>(shape.n_heads) * (sinks + size)),
        index_(sinks + size, 0), key_(shape.head_dim) {}

  int64_t next_position() const override { return n_sinks_ + fill_; }
  int64_t room() const override { return std::numeric_limits<int64_t>::max() / 4; }
  bool wants_mass() const override { return false; }
  float beta() const override { return 1.0f; }

  void view(KvView& out) override {
    out.n_heads = shape_.n_heads;
    out.n_segments = 2;
    out.segments.assign(static_cast<size_t>(shape_.n_heads) * 2, KvSegment{});
    for (int h = 0; h < shape_.n_heads; ++h) {
      KvSegment& sinks = out.segments[h * 2];
      sinks.k = k_.row(at(h, 0)), sinks.v = v_.row(at(h, 0)), sinks.n = n_sinks_;
      KvSegment& ring = out.segments[h * 2 + 1];
      ring.k = k_.row(at(h, ns_)), ring.v = v_.row(at(h, ns_)), ring.n = fill_;
      sinks.k_type = ring.k_type = k_.type();
      sinks.v_type = ring.v_type = v_.type();
      ring.pos_offset = ring_offset();
    }
  }

  void commit(const float* k, const float* v, int n, const float*, const int32_t*) override {
    const int hd = shape_.head_dim;
    const int64_t p0 = next_position();
    for (int j = 0; j < n; ++j, ++t_) {
      int slot;
      int64_t virt;
      if (n_sinks_ < ns_) {
        slot = n_sinks_++;
        virt = slot;
      } else {
        slot = ns_ + static_cast<int>(count_ % s_);  // the oldest slot once the ring is full
        virt = ns_ + count_++;
        fill_ = std::min(fill_ + 1, s_);
      }
      index_[slot] = t_;
      for (int h = 0; h < shape_.n_heads; ++h) {
        const size_t src = (static_cast<size_t>(j) * shape_.n_heads + h) * hd;
        // Rotated in f32, then stored: one rounding per key.
        std::copy(k + src, k + src + hd, key_.begin());
        rotator_.rotate(key_.data(), virt - (p0 + j));
        k_.store(at(h, slot), key_.data());
        v_.store(at(h, slot), v + src);
      }
    }
  }

  void clear() override { n_sinks_ = 0, fill_ = 0, count_ = 0, t_ = 0; }
  size_t bytes() const override {
    return k_.bytes() + v_.bytes() + index_.size() * sizeof(int64_t) + key_.size() * sizeof(float);
  }
  void visit_state(StateFields& f) override {  // key_ is scratch
    f.value("n_sinks", n_sinks_), f.value("fill", fill_), f.value("count", count_);
    f.value("t", t_);
    f.expect(n_sinks_ >= 0 && n_sinks_ <= ns_ && fill_ >= 0 && fill_ <= s_ && count_ >= fill_,
             "fill");
    f.rows("k", k_), f.rows("v", v_), f.array("index", index_);
  }

  std::vector<SlotInfo> slots(int) const override {
    std::vector<SlotInfo> out;
    for (int i = 0; i < n_sinks_; ++i) out.push_back({index_[i], i, 0.0f});
    for (int64_t virt = count_ - fill_; virt < count_; ++virt)
      out.push_back({index_[ns_ + virt % s_], ns_ + virt + ring_offset(), 0.0f});
    return out;
  }

 private:
  int64_t ring_offset() const { return n_sinks_ + fill_ - count_ - ns_; }
  size_t at(int h, int slot) const { return static_cast<size_t>(h) * (ns_ + s_) + slot; }

  int ns_, s_;
  KvShape shape_;
  const KeyRotator& rotator_;
  KvRows k_, v_;                 // [head][NS + S] rows; slots NS.. are the ring
  std::vector<int64_t> index_;   // stream index per slot (the same for every head)
  std::vector<float> key_;       // [head_dim]: a key being rotated before it is stored
  int n_sinks_ = 0, fill_ = 0;
  int64_t count_ = 0;            // tokens that ever entered the ring
  int64_t t_ = 0;                // stream index of the next token
};

}  // namespace

std::unique_ptr<LayerKvCache> make_window_cache(int sinks, int size, const KvShape& shape,
                                                const KeyRotator& rotator) {
  return std::make_unique<WindowCache>(sinks, size, shape, rotator);
}

}  // namespace kvc
