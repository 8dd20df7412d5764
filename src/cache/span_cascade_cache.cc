// `cascade --cascade-unit span`: the Cascading KV cache (cascade_cache.cc) with whole spans of
// tokens as the unit that moves and competes, instead of single tokens. Beyond the paper: with
// one token per digit, a token cascade keeps at most 3 of a 5-digit key below sub-cache 0
// (docs/results.md), because each slot keeps the winner of an aligned block of 2^i tokens.
//
// Units. A unit ends after a separator token (punctuation, newline), or before a token once it
// holds `unit_max` tokens, except that a run of digits is not split until the run itself is
// longer than unit_max (so a unit holds at most 2 * unit_max - 1 tokens). Boundaries depend
// only on token ids, so every KV head sees the same units.
//
// Schedule. Units are counted as they start (u = 0, 1, ... after the sinks); sub-cache i is open
// for the evictions that unit u causes iff u mod 2^i == 0, or while the cache is still filling
// (it fills like a window until a token no longer fits or the last level first drops a unit). Sub-cache 0 always takes the arriving token,
// evicting its oldest whole unit when full. An evicted unit carries on to sub-cache i + 1:
//   open:               appended, evicting the oldest units as needed (they carry on);
//   closed and empty:   appended;
//   closed, non-empty:  competes with the fewest newest units it must displace to fit; it wins
//                       if its score is at least theirs (summed), and the losers are dropped.
// With unit_max = 1 every token is a unit and this is the token cascade, slot for slot.
//
// Unit score (--unit-score): `sum` of its tokens' EMA attention scores leaving out a terminal
// separator (punctuation hoards attention as a secondary sink, and every unit has at most one),
// their `mean`, or the `peak` token's (against several displaced units: their sum for `sum`,
// their best for the others); with value-norm weighting each token's score is scaled by the mean
// |v| of its value vector (sinks and separators draw attention but carry small values).
//
// Levels may differ in size (--cascade-sizes 256,64,64,64,64: a dense recent level for
// perplexity, small deep ones for reach). Because units differ in length and competitions are
// decided per KV head, the fill of a sub-cache differs per head once the cache is full; the
// query then sits at NS + S for every head and each head numbers its tokens back from it, so the
// newest cached token is always right before the query (a head that holds fewer tokens leaves
// a gap after the sinks). Keys keep the virtual-position trick of the token cascade: a key is
// rotated only when it moves.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "base/error.h"
#include "cache/policies.h"

namespace kvc {
namespace {

class SpanCascadeCache final : public LayerKvCache {
 public:
  SpanCascadeCache(const CacheConfig& c, const KvShape& shape, const KeyRotator& rotator)
      : ns_(c.sinks), g_(c.unit_max), beta_(c.beta), by_score_(c.select_by_score),
        peak_(c.unit_score == "peak"), mean_(c.unit_score == "mean"),
        vnorm_weight_(c.value_norm_weight), kinds_(c.token_kinds), shape_(shape),
        rotator_(rotator), sizes_(level_sizes(c)), c_(static_cast<int>(sizes_.size())) {
    s_ = std::accumulate(sizes_.begin(), sizes_.end(), 0);
    for (int i = 0, b = ns_; i < c_; b += sizes_[i++]) base_.push_back(b);
    slots_per_head_ = ns_ + s_;
    const size_t slots = static_cast<size_t>(shape_.n_heads) * slots_per_head_;
    k_.assign(slots * shape_.head_dim, 0.0f), v_.assign(k_.size(), 0.0f);
    score_.assign(slots, 0.0f), mass_.assign(slots, 0.0f), vnorm_.assign(slots, 0.0f);
    index_.assign(slots, 0);
    units_.assign(slots, Unit{});  // a level of W slots holds at most W units
    level_.assign(static_cast<size_t>(shape_.n_heads) * c_, Level{});
    // A unit is at most 2g - 1 tokens; an arriving one evicts fewer than 2g more per level.
    carry_cap_ = 2 * g_ * (c_ + 2);
    for (auto* b : {&carry_a_, &carry_b_}) {
      b->k.assign(static_cast<size_t>(carry_cap_) * shape_.head_dim, 0.0f);
      b->v.assign(b->k.size(), 0.0f);
      b->tok.assign(static_cast<size_t>(carry_cap_), CarryToken{});
      b->units.assign(static_cast<size_t>(carry_cap_), CarryUnit{});
    }
    clear();
  }

  int64_t next_position() const override {
    if (!filling_) return ns_ + s_;
    int64_t p = n_sinks_;
    for (int i = 0; i < c_; ++i) p += lv(0, i).fill;
    return p;
  }
  int64_t room() const override { return std::numeric_limits<int64_t>::max() / 4; }
  bool wants_mass() const override { return by_score_; }
  float beta() const override { return beta_; }

  void view(KvView& out) override {
    const int H = shape_.n_heads;
    out.n_heads = H;
    out.n_segments = 1 + 2 * c_;
    out.segments.assign(static_cast<size_t>(H) * out.n_segments, KvSegment{});
    if (mass_dirty_) std::fill(mass_.begin(), mass_.end(), 0.0f);
    mass_dirty_ = true;
    for (int h = 0; h < H; ++h) {
      KvSegment* seg = &out.segments[static_cast<size_t>(h) * out.n_segments];
      seg[0].k = key(h, 0), seg[0].v = value(h, 0), seg[0].n = n_sinks_;  // sinks: no score
      // A level's live tokens may wrap around its ring: two runs of storage, one position frame
      // (attention needs no order within a segment, only the offset).
      for (int i = 0; i < c_; ++i) {
        const Level& L = lv(h, i);
        const int first = std::min(L.fill, sizes_[i] - L.head);
        const int runs[2][2] = {{L.head, first}, {0, L.fill - first}};
        for (int r = 0; r < 2; ++r) {
          KvSegment& sg = seg[1 + 2 * i + r];
          const int slot = base_[i] + runs[r][0];
          sg.k = key(h, slot), sg.v = value(h, slot), sg.n = runs[r][1];
          sg.pos_offset = offset(h, i);
          sg.mass = &mass_[at(h, slot)];
        }
      }
    }
  }

  void commit(const float* k, const float* v, int n, const float* chunk_mass,
              const int32_t* ids) override {
    const float decay = beta_ >= 1.0f ? 1.0f : static_cast<float>(std::pow(static_cast<double>(beta_), n));
    for (int h = 0; h < shape_.n_heads; ++h)
      for (int i = 0; i < c_; ++i) {
        const Level& L = lv(h, i);
        for (int r = 0; r < L.fill; ++r) {
          const size_t a = at(h, ring_slot(i, L, r));
          score_[a] = decay * score_[a] + mass_[a];
          mass_[a] = 0.0f;
        }
      }
    mass_dirty_ = false;
    const int64_t p0 = next_position();
    for (int j = 0; j < n; ++j, ++t_) {
      insert(k, v, n, j, chunk_mass, p0, ids ? kind_of(ids[j]) : uint8_t{kPlainToken});
    }
  }

  void clear() override {
    n_sinks_ = 0, t_ = 0, u_ = -1, filling_ = true;
    open_len_ = 0, open_digits_ = 0, open_closed_ = true;
    std::fill(mass_.begin(), mass_.end(), 0.0f);
    mass_dirty_ = false;
    for (int h = 0; h < shape_.n_heads; ++h)
      for (int i = 0; i < c_; ++i) lv(h, i) = Level{0, 0, ns_, 0, 0};
  }

  size_t bytes() const override {
    size_t carry = 0;
    for (const auto* b : {&carry_a_, &carry_b_})
      carry += (b->k.size() + b->v.size()) * sizeof(float) + b->tok.size() * sizeof(CarryToken) +
               b->units.size() * sizeof(CarryUnit);
    return (k_.size() + v_.size() + score_.size() + mass_.size() + vnorm_.size()) * sizeof(float) +
           index_.size() * sizeof(int64_t) + units_.size() * sizeof(Unit) +
           level_.size() * sizeof(Level) + carry;
  }

  std::vector<SlotInfo> slots(int h) const override {
    std::vector<SlotInfo> out;
    for (int s = 0; s < n_sinks_; ++s) out.push_back({index_[at(h, s)], s, 0.0f});
    for (int i = c_ - 1; i >= 0; --i) {
      const Level& L = lv(h, i);
      for (int r = 0; r < L.fill; ++r) {
        const size_t a = at(h, ring_slot(i, L, r));
        out.push_back({index_[a], L.count - L.fill + r + offset(h, i), score_[a]});
      }
    }
    return out;
  }

 private:
  // Per head and level: a ring of W token slots and, beside it, a ring of the units they form.
  struct Level {
    int head = 0, fill = 0;  // token ring: oldest slot, tokens held
    int64_t count = 0;       // next virtual index (NS + tokens ever appended - tokens displaced)
    int unit_head = 0, n_units = 0;
  };
  struct Unit {
    int len = 0;
    bool sep_end = false;  // ends with a separator token (left out of the sum score)
  };
  struct CarryToken {
    float score = 0.0f, vnorm = 0.0f;
    int64_t index = 0, virt = 0;
  };
  struct CarryUnit {
    int first = 0, len = 0;  // tokens [first, first + len) of the carry buffer
    bool sep_end = false;
  };
  // Units on their way to the next level, with their tokens' keys, values and bookkeeping.
  struct CarryBuffer {
    std::vector<float> k, v;
    std::vector<CarryToken> tok;
    std::vector<CarryUnit> units;
    int n_tok = 0, n_units = 0;
  };
  static std::vector<int> level_sizes(const CacheConfig& c) {
    if (!c.level_sizes.empty()) return c.level_sizes;
    return std::vector<int>(static_cast<size_t>(c.cascades), c.size / c.cascades);
  }

  uint8_t kind_of(int32_t id) const {
    if (!kinds_ || id < 0 || static_cast<size_t>(id) >= kinds_->size()) return kPlainToken;
    return (*kinds_)[static_cast<size_t>(id)];
  }

  Level& lv(int h, int i) { return level_[static_cast<size_t>(h) * c_ + i]; }
  const Level& lv(int h, int i) const { return level_[static_cast<size_t>(h) * c_ + i]; }
  size_t at(int h, int slot) const { return static_cast<size_t>(h) * slots_per_head_ + slot; }
  float* key(int h, int slot) { return &k_[at(h, slot) * shape_.head_dim]; }
  float* value(int h, int slot) { return &v_[at(h, slot) * shape_.head_dim]; }
  int ring_slot(int i, const Level& L, int r) const { return base_[i] + (L.head + r) % sizes_[i]; }
  Unit& unit(int h, int i, int r) {
    const Level& L = lv(h, i);
    return units_[at(h, base_[i] + (L.unit_head + r) % sizes_[i])];
  }

  // Cache position = virtual + offset: each head numbers back from the query, newest level last.
  int64_t offset(int h, int i) const {
    int64_t newer = 0;
    for (int j = 0; j < i; ++j) newer += lv(h, j).fill;
    return next_position() - newer - lv(h, i).count;
  }

  float value_norm(const float* v) const {
    float s = 0.0f;
    for (int d = 0; d < shape_.head_dim; ++d) s += std::fabs(v[d]);
    return s / static_cast<float>(shape_.head_dim);
  }

  // The competition score of tokens [first, first + len) whose scores `score(r)` gives.
  template <typename Score, typename Vnorm>
  float unit_score(int len, bool sep_end, Score score, Vnorm vnorm) const {
    const int counted = sep_end && len > 1 ? len - 1 : len;
    float total = 0.0f;
    for (int r = 0; r < counted; ++r) {
      const float x = vnorm_weight_ ? score(r) * vnorm(r) : score(r);
      total = peak_ ? std::max(total, x) : total + x;
    }
    return mean_ ? total / static_cast<float>(counted) : total;
  }

  float level_unit_score(int h, int i, int first_token, const Unit& u) const {
    const Level& L = lv(h, i);
    return unit_score(u.len, u.sep_end,
                      [&](int r) { return score_[at(h, ring_slot(i, L, first_token + r))]; },
                      [&](int r) { return vnorm_[at(h, ring_slot(i, L, first_token + r))]; });
  }

  // Moves the oldest unit of level i into `out`.
  void pop_oldest(int h, int i, CarryBuffer& out) {
    Level& L = lv(h, i);
    const Unit u = unit(h, i, 0);
    const int hd = shape_.head_dim;
    CarryUnit& cu = out.units[static_cast<size_t>(out.n_units++)];
    cu = {out.n_tok, u.len, u.sep_end};
    for (int r = 0; r < u.len; ++r) {
      const int slot = ring_slot(i, L, r);
      const size_t a = at(h, slot), c = static_cast<size_t>(out.n_tok);
      std::memcpy(&out.k[c * hd], key(h, slot), hd * sizeof(float));
      std::memcpy(&out.v[c * hd], value(h, slot), hd * sizeof(float));
      out.tok[c] = {score_[a], vnorm_[a], index_[a], L.count - L.fill + r};
      ++out.n_tok;
    }
    L.head = (L.head + u.len) % sizes_[i];
    L.fill -= u.len;
    L.unit_head = (L.unit_head + 1) % sizes_[i];
    --L.n_units;
  }

  // Drops the newest `k` units of level i.
  void drop_newest(int h, int i, int k) {
    Level& L = lv(h, i);
    for (; k > 0; --k) {
      const int len = unit(h, i, L.n_units - 1).len;
      L.fill -= len, L.count -= len;
      --L.n_units;
    }
  }

  // Appends carry unit `cu` of `in` to level i; the caller made room.
  void push(int h, int i, const CarryBuffer& in, const CarryUnit& cu) {
    Level& L = lv(h, i);
    const int hd = shape_.head_dim;
    for (int r = 0; r < cu.len; ++r) {
      const size_t c = static_cast<size_t>(cu.first + r);
      const int slot = ring_slot(i, L, L.fill);
      const size_t a = at(h, slot);
      float* dst = key(h, slot);
      std::memcpy(dst, &in.k[c * hd], hd * sizeof(float));
      rotator_.rotate(dst, L.count - in.tok[c].virt);
      std::memcpy(value(h, slot), &in.v[c * hd], hd * sizeof(float));
      score_[a] = in.tok[c].score, vnorm_[a] = in.tok[c].vnorm, index_[a] = in.tok[c].index;
      ++L.fill, ++L.count;
    }
    unit(h, i, L.n_units) = {cu.len, cu.sep_end};
    ++L.n_units;
  }

  // Level i >= 1 takes the units in `in` (evicted from level i - 1 by unit u_); what it evicts
  // in turn goes to `out`.
  void take(int h, int i, const CarryBuffer& in, CarryBuffer& out) {
    const bool open = filling_ || (u_ & ((int64_t{1} << i) - 1)) == 0;
    const int w = sizes_[i];
    for (int m = 0; m < in.n_units; ++m) {
      const CarryUnit& cu = in.units[static_cast<size_t>(m)];
      Level& L = lv(h, i);
      if (open || L.n_units == 0) {
        while (w - L.fill < cu.len) pop_oldest(h, i, out);
        push(h, i, in, cu);
        continue;
      }
      // Closed: the fewest newest units whose slots (with the free ones) fit the carry.
      int k = 0, freed = w - L.fill, end = L.fill;
      float theirs = 0.0f;
      while (freed < cu.len || k == 0) {
        const Unit& u = unit(h, i, L.n_units - 1 - k);
        end -= u.len, freed += u.len;
        const float s = level_unit_score(h, i, end, u);
        theirs = peak_ || mean_ ? std::max(theirs, s) : theirs + s;
        ++k;
      }
      const float mine = unit_score(cu.len, cu.sep_end,
                                    [&](int r) { return in.tok[static_cast<size_t>(cu.first + r)].score; },
                                    [&](int r) { return in.tok[static_cast<size_t>(cu.first + r)].vnorm; });
      if (!by_score_ || mine >= theirs) {  // a tie goes to the carry, the newer unit
        drop_newest(h, i, k);
        push(h, i, in, cu);
      }
    }
  }

  // One arrival: stream token t_, position j of the chunk being committed.
  void insert(const float* k, const float* v, int n, int j, const float* chunk_mass, int64_t p0,
              uint8_t kind) {
    const int H = shape_.n_heads, hd = shape_.head_dim;
    if (n_sinks_ < ns_) {
      for (int h = 0; h < H; ++h) {
        const size_t src = (static_cast<size_t>(j) * H + h) * hd;
        std::memcpy(key(h, n_sinks_), k + src, hd * sizeof(float));
        rotator_.rotate(key(h, n_sinks_), n_sinks_ - (p0 + j));
        std::memcpy(value(h, n_sinks_), v + src, hd * sizeof(float));
        index_[at(h, n_sinks_)] = t_;
      }
      ++n_sinks_;
      return;
    }
    // Unit boundary before this token (shared by every head).
    const bool digit = kind == kDigitToken;
    const bool extend_digits = digit && open_digits_ > 0 && open_digits_ + 1 <= g_;
    if (open_closed_ || (open_len_ >= g_ && !extend_digits)) {
      ++u_;
      open_len_ = 0, open_digits_ = 0, open_closed_ = false;
    }
    if (filling_) {
      int total = 0;
      for (int i = 0; i < c_; ++i) total += lv(0, i).fill;
      if (total + 1 > s_) filling_ = false;
    }
    bool dropped = false;  // the same for every head while filling
    for (int h = 0; h < H; ++h) {
      const size_t src = (static_cast<size_t>(j) * H + h) * hd;
      // Sub-cache 0 is always open: make room by evicting whole units, then take the token.
      carry_a_.n_tok = carry_a_.n_units = 0;
      Level& L0 = lv(h, 0);
      while (L0.fill == sizes_[0]) pop_oldest(h, 0, carry_a_);
      if (open_len_ == 0) {
        unit(h, 0, L0.n_units) = {0, false};
        ++L0.n_units;
      }
      const int slot = ring_slot(0, L0, L0.fill);
      const size_t a = at(h, slot);
      std::memcpy(key(h, slot), k + src, hd * sizeof(float));
      rotator_.rotate(key(h, slot), L0.count - (p0 + j));
      std::memcpy(value(h, slot), v + src, hd * sizeof(float));
      score_[a] = chunk_mass ? chunk_mass[static_cast<size_t>(h) * n + j] : 0.0f;
      vnorm_[a] = vnorm_weight_ ? value_norm(v + src) : 1.0f;
      index_[a] = t_;
      ++L0.fill, ++L0.count;
      Unit& open = unit(h, 0, L0.n_units - 1);
      ++open.len;
      open.sep_end = kind == kSeparatorToken;
      // Evicted units go down the cascade.
      CarryBuffer* in = &carry_a_;
      CarryBuffer* out = &carry_b_;
      for (int i = 1; i < c_ && in->n_units > 0; ++i) {
        out->n_tok = out->n_units = 0;
        take(h, i, *in, *out);
        std::swap(in, out);
      }
      // Evicted from the last level: dropped, and the cache has filled up (units leave slack,
      // so the total may never reach S exactly).
      dropped |= in->n_units > 0;
    }
    if (dropped) filling_ = false;
    ++open_len_;
    open_digits_ = digit ? open_digits_ + 1 : 0;
    if (kind == kSeparatorToken) open_closed_ = true;
  }

  int ns_, g_;
  float beta_;
  bool by_score_, peak_, mean_, vnorm_weight_;
  std::shared_ptr<const std::vector<uint8_t>> kinds_;
  KvShape shape_;
  const KeyRotator& rotator_;
  std::vector<int> sizes_;  // W per level
  int c_;
  int s_ = 0, slots_per_head_ = 0, carry_cap_ = 0;
  std::vector<int> base_;   // first slot of each level
  std::vector<float> k_, v_;            // [head][NS + S][head_dim]
  std::vector<float> score_, mass_, vnorm_;  // [head][NS + S]
  std::vector<int64_t> index_;          // [head][NS + S]
  std::vector<Unit> units_;             // [head][NS + S]: level i's unit ring at base_[i]
  std::vector<Level> level_;            // [head][C]
  CarryBuffer carry_a_, carry_b_;
  int n_sinks_ = 0;
  int64_t t_ = 0, u_ = -1;  // next stream index; index of the unit being built
  bool filling_ = true;     // every level is open until the cache is full (see insert())
  int open_len_ = 0, open_digits_ = 0;
  bool open_closed_ = true;  // the last unit ended (after a separator): the next token starts one
  bool mass_dirty_ = false;
};

}  // namespace

std::unique_ptr<LayerKvCache> make_span_cascade_cache(const CacheConfig& c, const KvShape& shape,
                                                      const KeyRotator& rotator) {
  return std::make_unique<SpanCascadeCache>(c, shape, rotator);
}

}  // namespace kvc
