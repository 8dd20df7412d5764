// `oracle`: StreamingLLM with chosen tokens kept like sinks. A diagnostic, not a policy one can
// deploy: passkey --oracle pins the key's tokens, so the model reads a retained key at compressed
// positions with the same memory as the window (NS sinks + P pins + a ring of S - P). If the
// model cannot answer even then, no eviction policy can help it.
//
// Positions: sinks 0..NS-1, then the pins by age, then the ring by age. A ring token's key is
// rotated at a monotonic virtual index, as in window_cache.cc; a token that leaves the ring and is
// pinned moves to the pin area, rotated to its fixed position there.
#include <algorithm>
#include <limits>

#include "base/error.h"
#include "cache/kv_rows.h"
#include "cache/policies.h"

namespace kvc {
namespace {

class OracleCache final : public LayerKvCache {
 public:
  OracleCache(const CacheConfig& c, const KvShape& shape, const KeyRotator& rotator)
      : ns_(c.sinks), pinned_(c.pinned), shape_(shape), rotator_(rotator) {
    std::sort(pinned_.begin(), pinned_.end());
    pinned_.erase(std::unique(pinned_.begin(), pinned_.end()), pinned_.end());
    p_ = static_cast<int>(std::min<size_t>(pinned_.size(), static_cast<size_t>(c.size - 1)));
    ring_ = c.size - p_;
    const size_t slots = static_cast<size_t>(ns_ + p_ + ring_);
    k_ = KvRows(shape.k_type, shape.head_dim, static_cast<size_t>(shape.n_heads) * slots);
    v_ = KvRows(shape.v_type, shape.head_dim, static_cast<size_t>(shape.n_heads) * slots);
    index_.assign(slots, 0);
    key_.assign(static_cast<size_t>(shape.head_dim), 0.0f);
  }

  int64_t next_position() const override { return n_sinks_ + n_pins_ + fill_; }
  int64_t room() const override { return std::numeric_limits<int64_t>::max() / 4; }
  bool wants_mass() const override { return false; }
  float beta() const override { return 1.0f; }

  void view(KvView& out) override {
    out.n_heads = shape_.n_heads;
    out.n_segments = 3;
    out.segments.assign(static_cast<size_t>(shape_.n_heads) * 3, KvSegment{});
    for (int h = 0; h < shape_.n_heads; ++h) {
      KvSegment* seg = &out.segments[static_cast<size_t>(h) * 3];
      seg[0].k = k_.row(at(h, 0)), seg[0].v = v_.row(at(h, 0)), seg[0].n = n_sinks_;
      seg[1].k = k_.row(at(h, ns_)), seg[1].v = v_.row(at(h, ns_)), seg[1].n = n_pins_;
      seg[2].k = k_.row(at(h, ns_ + p_)), seg[2].v = v_.row(at(h, ns_ + p_)), seg[2].n = fill_;
      seg[2].pos_offset = ring_offset();
      for (int s = 0; s < 3; ++s) seg[s].k_type = k_.type(), seg[s].v_type = v_.type();
    }
  }

  void commit(const float* k, const float* v, int n, const float*, const int32_t*) override {
    const int hd = shape_.head_dim, H = shape_.n_heads;
    const int64_t p0 = next_position();
    for (int j = 0; j < n; ++j, ++t_) {
      int slot;
      int64_t virt;
      if (n_sinks_ < ns_) {
        slot = n_sinks_++;
        virt = slot;
      } else {
        slot = ns_ + p_ + static_cast<int>(count_ % ring_);
        if (fill_ == ring_) evict(slot);
        virt = ns_ + count_++;
        fill_ = std::min(fill_ + 1, ring_);
      }
      index_[static_cast<size_t>(slot)] = t_;
      for (int h = 0; h < H; ++h) {
        const size_t src = (static_cast<size_t>(j) * H + h) * hd;
        std::copy(k + src, k + src + hd, key_.begin());
        rotator_.rotate(key_.data(), virt - (p0 + j));
        k_.store(at(h, slot), key_.data());
        v_.store(at(h, slot), v + src);
      }
    }
  }

  void clear() override { n_sinks_ = 0, n_pins_ = 0, fill_ = 0, count_ = 0, t_ = 0; }
  void visit_state(StateFields& f) override {  // key_ is scratch; pinned_ comes with the config
    f.value("n_sinks", n_sinks_), f.value("n_pins", n_pins_), f.value("fill", fill_);
    f.value("count", count_), f.value("t", t_);
    f.expect(n_sinks_ >= 0 && n_sinks_ <= ns_ && n_pins_ >= 0 && n_pins_ <= p_ && fill_ >= 0 &&
                 fill_ <= ring_ && count_ >= fill_,
             "fill");
    f.rows("k", k_), f.rows("v", v_), f.array("index", index_);
  }
  size_t bytes() const override {
    return k_.bytes() + v_.bytes() + key_.size() * sizeof(float) +
           index_.size() * sizeof(int64_t) + pinned_.size() * sizeof(int64_t);
  }

  std::vector<SlotInfo> slots(int) const override {
    std::vector<SlotInfo> out;
    for (int i = 0; i < n_sinks_ + n_pins_; ++i) out.push_back({index_[static_cast<size_t>(i)], i, 0.0f});
    for (int64_t virt = count_ - fill_; virt < count_; ++virt)
      out.push_back({index_[static_cast<size_t>(ns_ + p_ + virt % ring_)], ns_ + virt + ring_offset(), 0.0f});
    return out;
  }

 private:
  // The oldest ring token leaves `slot`; a pinned one moves to the pin area first, rotated from
  // its ring virtual index to its pin position (the pin segment's virtual positions are real).
  void evict(int slot) {
    const int64_t index = index_[static_cast<size_t>(slot)];
    if (n_pins_ >= p_ || !std::binary_search(pinned_.begin(), pinned_.end(), index)) return;
    const int pin = ns_ + n_pins_;
    const int64_t old_virt = ns_ + count_ - fill_;  // the oldest ring token's virtual index
    for (int h = 0; h < shape_.n_heads; ++h) {
      // The key is decoded, rotated and stored again: one more rounding for a pinned token.
      k_.load(at(h, slot), key_.data());
      rotator_.rotate(key_.data(), pin - old_virt);
      k_.store(at(h, pin), key_.data());
      v_.copy(at(h, pin), at(h, slot));
    }
    index_[static_cast<size_t>(pin)] = index;
    ++n_pins_;
  }

  int64_t ring_offset() const { return n_sinks_ + n_pins_ + fill_ - count_ - ns_; }
  size_t at(int h, int slot) const { return static_cast<size_t>(h) * (ns_ + p_ + ring_) + slot; }

  int ns_;
  std::vector<int64_t> pinned_;  // sorted stream indices
  int p_ = 0, ring_ = 0;         // pin slots, ring slots (p + ring = S)
  KvShape shape_;
  const KeyRotator& rotator_;
  KvRows k_, v_;                 // [head][NS + P + ring] rows
  std::vector<float> key_;       // [head_dim]: a key being rotated before it is stored
  std::vector<int64_t> index_;   // stream index per slot (the same for every head)
  int n_sinks_ = 0, n_pins_ = 0, fill_ = 0;
  int64_t count_ = 0;            // tokens that ever entered the ring
  int64_t t_ = 0;
};

}  // namespace

std::unique_ptr<LayerKvCache> make_oracle_cache(const CacheConfig& config, const KvShape& shape,
                                                const KeyRotator& rotator) {
  return std::make_unique<OracleCache>(config, shape, rotator);
}

}  // namespace kvc
