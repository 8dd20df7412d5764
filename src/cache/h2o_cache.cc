// `h2o` (Heavy-Hitter Oracle): NS sinks, then S slots holding the S/2 most recent tokens and the
// S/2 older tokens with the highest accumulated attention (a plain sum: beta = 1). When a token
// arrives into a full cache, the lowest-scored token outside the recent half is evicted (a tie
// evicts the older one).
//
// Positions are cache positions (sinks, then the rest by age). Evicting from the middle shifts
// every younger token by one, so instead of moving rotated keys (which drifts) this baseline
// keeps each key un-rotated and re-rotates a slot from that copy whenever its position changed:
// O(changed slots * head_dim) per step, against O(C * head_dim) for the cascade. Positions never
// pass NS + S, so their rotations come from a table made once (no sin/cos per step).
//
// Storage (f16, q8_0): the un-rotated copy is stored in the key type too; a re-rotation decodes
// it, rotates and stores the result, so a key is rounded twice (un-rotated, then rotated) however
// often it moves: always from the same copy, no drift.
#include <algorithm>
#include <limits>

#include "base/error.h"
#include "cache/kv_rows.h"
#include "cache/policies.h"

namespace kvc {
namespace {

class H2oCache final : public LayerKvCache {
 public:
  H2oCache(const CacheConfig& c, const KvShape& shape, const KeyRotator& rotator)
      : ns_(c.sinks),
        s_(c.size),
        recent_(c.size / 2),
        shape_(shape),
        rotator_(rotator),
        rotations_(rotator.position_table(ns_ + s_)) {
    const size_t slots = static_cast<size_t>(shape.n_heads) * (ns_ + s_);
    raw_ = KvRows(shape.k_type, shape.head_dim, slots);
    k_ = KvRows(shape.k_type, shape.head_dim, slots);
    v_ = KvRows(shape.v_type, shape.head_dim, slots);
    key_.assign(static_cast<size_t>(shape.head_dim), 0.0f);
    score_.assign(slots, 0.0f);
    mass_.assign(slots, 0.0f);
    index_.assign(slots, 0);
    rotated_at_.assign(slots, -1);
    order_.assign(shape.n_heads, {});
    for (auto& o : order_) o.reserve(s_ + 1);
  }

  int64_t next_position() const override { return n_sinks_ + n_; }
  int64_t room() const override { return std::numeric_limits<int64_t>::max() / 4; }
  bool wants_mass() const override { return true; }
  float beta() const override { return 1.0f; }

  void view(KvView& out) override {
    const int H = shape_.n_heads;
    out.n_heads = H;
    out.n_segments = 2;
    out.segments.assign(static_cast<size_t>(H) * 2, KvSegment{});
    std::fill(mass_.begin(), mass_.end(), 0.0f);
    for (int h = 0; h < H; ++h) {
      for (int r = 0; r < n_; ++r) {  // bring every key to its current cache position
        const int slot = order_[h][r];
        const int64_t pos = n_sinks_ + r;
        const size_t a = at(h, slot);
        if (rotated_at_[a] == pos) continue;
        raw_.load(a, key_.data());
        rotator_.rotate_to(key_.data(), pos, rotations_);
        k_.store(a, key_.data());
        rotated_at_[a] = pos;
      }
      KvSegment& sinks = out.segments[h * 2];
      sinks.k = k_.row(at(h, 0)), sinks.v = v_.row(at(h, 0));
      sinks.n = n_sinks_;
      KvSegment& rest = out.segments[h * 2 + 1];
      rest.k = k_.row(at(h, ns_)), rest.v = v_.row(at(h, ns_));
      rest.n = n_;
      sinks.k_type = rest.k_type = k_.type();
      sinks.v_type = rest.v_type = v_.type();
      rest.mass = &mass_[at(h, ns_)];
    }
  }

  void commit(const float* k, const float* v, int n, const float* chunk_mass,
              const int32_t*) override {
    const int H = shape_.n_heads, hd = shape_.head_dim;
    for (int h = 0; h < H; ++h)
      for (int s = 0; s < n_; ++s) {
        const size_t a = at(h, ns_ + s);
        score_[a] += mass_[a];
        mass_[a] = 0.0f;
      }
    const int64_t p0 = next_position();
    for (int j = 0; j < n; ++j, ++t_) {
      const bool sink = n_sinks_ < ns_;
      for (int h = 0; h < H; ++h) {
        int slot;
        if (sink) {
          slot = n_sinks_;
        } else if (n_ < s_) {
          slot = ns_ + n_;
          order_[h].push_back(slot);
        } else {
          // Evict the lowest score among all but the newest recent_ - 1 (the arrival is the last).
          const int candidates = s_ + 1 - recent_;
          int victim = 0;
          for (int r = 1; r < candidates; ++r)
            if (score_[at(h, order_[h][r])] < score_[at(h, order_[h][victim])]) victim = r;
          slot = order_[h][victim];
          order_[h].erase(order_[h].begin() + victim);
          order_[h].push_back(slot);
        }
        const size_t a = at(h, slot), src = (static_cast<size_t>(j) * H + h) * hd;
        v_.store(a, v + src);
        if (sink) {  // sinks never move: keep the rotated key as it came
          k_.store(a, k + src);
        } else {
          std::copy(k + src, k + src + hd, key_.begin());
          rotator_.rotate(key_.data(), -(p0 + j));
          raw_.store(a, key_.data());
          rotated_at_[a] = -1;
        }
        score_[a] = chunk_mass ? chunk_mass[static_cast<size_t>(h) * n + j] : 0.0f;
        index_[a] = t_;
      }
      if (sink) ++n_sinks_;
      else if (n_ < s_) ++n_;
    }
  }

  void clear() override {
    n_sinks_ = 0, n_ = 0, t_ = 0;
    for (auto& o : order_) o.clear();
    std::fill(rotated_at_.begin(), rotated_at_.end(), -1);
  }

  size_t bytes() const override {
    return raw_.bytes() + k_.bytes() + v_.bytes() +
           (key_.size() + score_.size() + mass_.size() + rotations_.size()) * sizeof(float) +
           (index_.size() + rotated_at_.size()) * sizeof(int64_t) +
           order_.size() * (s_ + 1) * sizeof(int);
  }

  // key_ is scratch, mass_ too (view() zeroes it), rotations_ is made from the rotator. The
  // lazy rotated_at_ is state: k_ holds each key rotated at that position, and view() re-rotates
  // only the slots whose position has changed since.
  void visit_state(StateFields& f) override {
    f.value("n_sinks", n_sinks_), f.value("n", n_), f.value("t", t_);
    f.expect(n_sinks_ >= 0 && n_sinks_ <= ns_ && n_ >= 0 && n_ <= s_, "n");
    f.rows("raw", raw_), f.rows("k", k_), f.rows("v", v_);
    f.array("score", score_), f.array("index", index_), f.array("rotated_at", rotated_at_);
    for (auto& o : order_) {
      f.list("order", o, static_cast<size_t>(s_));
      f.expect(static_cast<int>(o.size()) == n_, "order");
      for (int slot : o) f.expect(slot >= ns_ && slot < ns_ + s_, "order");
    }
  }

  std::vector<SlotInfo> slots(int h) const override {
    std::vector<SlotInfo> out;
    for (int s = 0; s < n_sinks_; ++s) out.push_back({index_[at(h, s)], s, 0.0f});
    for (int r = 0; r < n_; ++r) {
      const size_t a = at(h, order_[h][r]);
      out.push_back({index_[a], n_sinks_ + r, score_[a]});
    }
    return out;
  }

 private:
  size_t at(int h, int slot) const { return static_cast<size_t>(h) * (ns_ + s_) + slot; }

  int ns_, s_, recent_;
  KvShape shape_;
  const KeyRotator& rotator_;
  std::vector<float> rotations_;          // rotator_.position_table(NS + S)
  KvRows raw_, k_, v_;                    // [head][NS + S] rows: un-rotated, rotated, values
  std::vector<float> key_;                // [head_dim]: a key being rotated
  std::vector<float> score_, mass_;       // [head][NS + S]
  std::vector<int64_t> index_, rotated_at_;
  std::vector<std::vector<int>> order_;   // per head: non-sink slots from oldest to newest
  int n_sinks_ = 0, n_ = 0;
  int64_t t_ = 0;
};

}  // namespace

std::unique_ptr<LayerKvCache> make_h2o_cache(const CacheConfig& c, const KvShape& shape,
                                             const KeyRotator& rotator) {
  return std::make_unique<H2oCache>(c, shape, rotator);
}

}  // namespace kvc
