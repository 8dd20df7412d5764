// `cascade`: the Cascading KV cache (docs/cascade-spec.md). NS sinks plus C sub-caches of
// W = S / C circular buffers; sub-cache i accepts one arrival in 2^i once the cache is full, and
// what it evicts carries on to sub-cache i + 1 or competes (by EMA score) for a closed one's
// newest slot.
//
// Schedule state (heads, fills, which sub-caches are open) is shared by every KV head; only the
// contents differ, because competitions are decided per head.
//
// Positions: sinks 0..NS-1, then the sub-caches from the oldest (C-1) to the newest (0), each by
// age. Sub-cache i stores a key rotated at a monotonic virtual index (count_i: NS + the number of
// tokens it ever accepted); its segment's pos_offset maps that to the cache position. Counting
// from NS makes sub-cache 0's virtual positions the real ones until it first evicts, so the
// cascade equals the full cache bit for bit while nothing has moved. A token is
// rotated by a delta only when it moves: into sub-cache 0 from the chunk, on to the next
// sub-cache, or into a competed slot. O(C * head_dim) rotation per token, never the whole cache.
//
// Storage (f16, q8_0): a key on the move is held in f32 and stored again where it lands, so a
// stored key is rounded once per move (decoded exactly, rotated, encoded); values never change
// and move as stored bytes.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "base/error.h"
#include "cache/kv_rows.h"
#include "cache/policies.h"

namespace kvc {
namespace {

class CascadeCache final : public LayerKvCache {
 public:
  CascadeCache(const CacheConfig& c, const KvShape& shape, const KeyRotator& rotator)
      : ns_(c.sinks), c_(c.cascades), w_(c.size / c.cascades), beta_(c.beta),
        by_score_(c.select_by_score), shape_(shape),
        rotator_(rotator), slots_per_head_(c.sinks + c.size),
        k_(shape.k_type, shape.head_dim, static_cast<size_t>(shape.n_heads) * slots_per_head_),
        v_(shape.v_type, shape.head_dim, static_cast<size_t>(shape.n_heads) * slots_per_head_),
        score_(static_cast<size_t>(shape.n_heads) * slots_per_head_, 0.0f), mass_(score_.size(), 0.0f),
        index_(score_.size(), 0), head_(c_, 0), fill_(c_, 0), count_(c_, c.sinks),
        carry_k_(static_cast<size_t>(shape.n_heads) * shape.head_dim),
        carry_v_(shape.v_type, shape.head_dim, static_cast<size_t>(shape.n_heads)),
        key_(static_cast<size_t>(shape.head_dim)), carry_(shape.n_heads) {}

  int64_t next_position() const override {
    int64_t p = n_sinks_;
    for (int f : fill_) p += f;
    return p;
  }
  int64_t room() const override { return std::numeric_limits<int64_t>::max() / 4; }
  bool wants_mass() const override { return by_score_; }
  float beta() const override { return beta_; }

  void view(KvView& out) override {
    const int H = shape_.n_heads;
    out.n_heads = H;
    out.n_segments = 1 + c_;
    out.segments.assign(static_cast<size_t>(H) * (1 + c_), KvSegment{});
    // commit() leaves the masses zeroed; only a second view without a commit must clear them.
    if (mass_dirty_) std::fill(mass_.begin(), mass_.end(), 0.0f);
    mass_dirty_ = true;
    for (int h = 0; h < H; ++h) {
      KvSegment* seg = &out.segments[static_cast<size_t>(h) * (1 + c_)];
      seg[0].k = k_.row(at(h, 0)), seg[0].v = v_.row(at(h, 0)), seg[0].n = n_sinks_;  // sinks: no score
      for (int i = 0; i <= c_; ++i) seg[i].k_type = k_.type(), seg[i].v_type = v_.type();
      for (int i = 0; i < c_; ++i) {
        const int first = ns_ + i * w_;
        seg[1 + i].k = k_.row(at(h, first)), seg[1 + i].v = v_.row(at(h, first));
        seg[1 + i].n = fill_[i];
        seg[1 + i].pos_offset = offset(i);
        seg[1 + i].mass = &mass_[at(h, first)];
      }
    }
  }

  void commit(const float* k, const float* v, int n, const float* chunk_mass,
              const int32_t*) override {
    const int H = shape_.n_heads, hd = shape_.head_dim;
    // Scores first: the cached slots decay by beta^n and gain this step's mass.
    const float decay = beta_ >= 1.0f ? 1.0f : static_cast<float>(std::pow(static_cast<double>(beta_), n));
    for (int h = 0; h < H; ++h)
      for (int i = 0; i < c_; ++i)
        for (int s = 0; s < fill_[i]; ++s) {
          const size_t a = at(h, ns_ + i * w_ + s);
          score_[a] = decay * score_[a] + mass_[a];
          mass_[a] = 0.0f;  // a second commit without a view must not count it twice
        }
    mass_dirty_ = false;
    // Then the chunk's tokens, one at a time; token j's key is rotated at p0 + j.
    const int64_t p0 = next_position();
    for (int j = 0; j < n; ++j, ++t_) {
      for (int h = 0; h < H; ++h) {
        const size_t src = (static_cast<size_t>(j) * H + h) * hd;
        std::memcpy(&carry_k_[static_cast<size_t>(h) * hd], k + src, hd * sizeof(float));
        carry_v_.store(static_cast<size_t>(h), v + src);
        carry_[h] = {chunk_mass ? chunk_mass[static_cast<size_t>(h) * n + j] : 0.0f, t_, p0 + j};
      }
      insert();
    }
  }

  void clear() override {
    n_sinks_ = 0, t_ = 0;
    std::fill(mass_.begin(), mass_.end(), 0.0f);
    mass_dirty_ = false;
    std::fill(head_.begin(), head_.end(), 0);
    std::fill(fill_.begin(), fill_.end(), 0);
    std::fill(count_.begin(), count_.end(), ns_);
  }

  size_t bytes() const override {
    return k_.bytes() + v_.bytes() + carry_v_.bytes() +
           (score_.size() + mass_.size() + carry_k_.size() + key_.size()) * sizeof(float) +
           index_.size() * sizeof(int64_t);
  }

  // carry_k_, carry_v_, carry_ and key_ are scratch: one arrival fills and empties them.
  void visit_state(StateFields& f) override {
    f.value("n_sinks", n_sinks_), f.value("t", t_), f.value("mass_dirty", mass_dirty_);
    f.array("head", head_), f.array("fill", fill_), f.array("count", count_);
    f.expect(n_sinks_ >= 0 && n_sinks_ <= ns_, "n_sinks");
    for (int i = 0; i < c_; ++i)
      f.expect(head_[i] >= 0 && head_[i] < w_ && fill_[i] >= 0 && fill_[i] <= w_, "fill");
    f.rows("k", k_), f.rows("v", v_);
    f.array("score", score_), f.array("mass", mass_), f.array("index", index_);
  }

  std::vector<SlotInfo> slots(int h) const override {
    std::vector<SlotInfo> out;
    for (int s = 0; s < n_sinks_; ++s) out.push_back({index_[at(h, s)], s, 0.0f});
    for (int i = c_ - 1; i >= 0; --i)
      for (int r = 0; r < fill_[i]; ++r) {
        const size_t a = at(h, ns_ + i * w_ + (head_[i] + r) % w_);
        out.push_back({index_[a], count_[i] - fill_[i] + r + offset(i), score_[a]});
      }
    return out;
  }

 private:
  // What travels down the cascade for one head; its key (f32) and value (as stored) sit in
  // carry_k_/carry_v_.
  struct Carry {
    float score;
    int64_t index;
    int64_t virt;  // the virtual position its key is rotated at
  };

  // cache position = virtual + offset(i): sinks, then the older sub-caches, then this one by age.
  int64_t offset(int i) const {
    int64_t p = n_sinks_;
    for (int j = i + 1; j < c_; ++j) p += fill_[j];
    return p + fill_[i] - count_[i];
  }
  size_t at(int h, int slot) const { return static_cast<size_t>(h) * slots_per_head_ + slot; }

  // Stores head h's carry in `slot` rotated at `virt`; with `swap`, the slot's old token becomes
  // the carry (keeping the virtual position it was rotated at).
  void place(int h, int slot, int64_t virt, bool swap, int64_t old_virt) {
    const int hd = shape_.head_dim;
    float* ck = &carry_k_[static_cast<size_t>(h) * hd];
    Carry& c = carry_[h];
    rotator_.rotate(ck, virt - c.virt);
    const size_t a = at(h, slot);
    if (swap) {
      k_.load(a, key_.data());
      k_.store(a, ck);
      std::copy(key_.begin(), key_.end(), ck);
      v_.swap_row(a, carry_v_, static_cast<size_t>(h));
      std::swap(c.score, score_[a]);
      std::swap(c.index, index_[a]);
      c.virt = old_virt;
    } else {
      k_.store(a, ck);
      v_.copy_from(a, carry_v_, static_cast<size_t>(h));
      score_[a] = c.score;
      index_[a] = c.index;
    }
  }

  // One arrival (stream index t_) through the spec's insertion steps, for every head.
  void insert() {
    const int H = shape_.n_heads;
    if (n_sinks_ < ns_) {
      for (int h = 0; h < H; ++h) place(h, n_sinks_, n_sinks_, false, 0);
      ++n_sinks_;
      return;
    }
    const bool filling = t_ < static_cast<int64_t>(ns_) + static_cast<int64_t>(c_) * w_;
    for (int i = 0; i < c_; ++i) {
      const bool open = filling || ((t_ - ns_) & ((int64_t{1} << i) - 1)) == 0;
      const int first = ns_ + i * w_;
      if (fill_[i] < w_ && (open || fill_[i] == 0)) {  // append
        const int slot = first + (head_[i] + fill_[i]) % w_;
        for (int h = 0; h < H; ++h) place(h, slot, count_[i], false, 0);
        ++fill_[i], ++count_[i];
        return;
      }
      if (open) {  // full: the carry takes the oldest slot, the oldest carries on
        const int slot = first + head_[i];
        const int64_t old_virt = count_[i] - w_;
        for (int h = 0; h < H; ++h) place(h, slot, count_[i], true, old_virt);
        head_[i] = (head_[i] + 1) % w_;
        ++count_[i];
        continue;
      }
      // Closed and non-empty: compete for the newest slot; a tie goes to the carry. Without
      // score selection every head keeps the carry, the newer token.
      const int slot = first + (head_[i] + fill_[i] - 1) % w_;
      for (int h = 0; h < H; ++h)
        if (!by_score_ || carry_[h].score >= score_[at(h, slot)])
          place(h, slot, count_[i] - 1, false, 0);
      return;
    }
    // Evicted from the last sub-cache: dropped.
  }

  int ns_, c_, w_;
  float beta_;
  bool by_score_;
  KvShape shape_;
  const KeyRotator& rotator_;
  int slots_per_head_;
  KvRows k_, v_;                    // [head][NS + S] rows: sinks, then sub-cache 0, 1, ...
  std::vector<float> score_, mass_; // [head][NS + S]
  std::vector<int64_t> index_;      // [head][NS + S] stream index
  std::vector<int> head_, fill_;    // per sub-cache, shared by every head
  std::vector<int64_t> count_;      // per sub-cache: NS + tokens ever accepted (next virtual index)
  int n_sinks_ = 0;
  int64_t t_ = 0;                   // stream index of the next arrival
  bool mass_dirty_ = false;         // a view handed out mass buffers that no commit has read
  std::vector<float> carry_k_;      // [head][head_dim]: f32, rotated on every move
  KvRows carry_v_;                  // [head] rows, as stored
  std::vector<float> key_;          // [head_dim]: a swapped-out key being decoded
  std::vector<Carry> carry_;
};

}  // namespace

std::unique_ptr<LayerKvCache> make_cascade_cache(const CacheConfig& c, const KvShape& shape,
                                                 const KeyRotator& rotator) {
  return std::make_unique<CascadeCache>(c, shape, rotator);
}

}  // namespace kvc
