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
// The newest units of a level are the arrival's neighbours in the stream, so repeated statements
// of one fact (a passkey's six copies) knock each other out deep down. --unit-compete lowest
// makes the arrival compete with the level's lowest-scored units instead, wherever they sit
// (`lowest-last`: in the last level only); the losers are cut out and the younger tokens close
// up, each key rotated back by the length cut before it. `pool` is `lowest` with a last level
// that never opens once the cache is full: a pool of the best-scored units, which a unit leaves
// only by losing a competition, never by age (the cascade's reach, W (2^C - 1) arrivals, is
// what forgets a passkey at 16x S).
// With unit_max = 1 every token is a unit and this is the token cascade, slot for slot.
//
// Unit score (--unit-score): `sum` of its tokens' EMA attention scores leaving out a terminal
// separator (punctuation hoards attention as a secondary sink, and every unit has at most one),
// their `mean`, or the `peak` token's (against several displaced units: their sum for `sum`,
// their best for the others); with value-norm weighting each token's score is scaled by the mean
// |v| of its value vector (sinks and separators draw attention but carry small values).
//
// Who decides (--unit-share). A `SpanCascade` is one structure (levels, units, scores) that a
// number of key/value lanes follow. `head`: every KV head of every layer is its own cascade and
// decides its competitions by its own scores (the paper's way). `layer`: the KV heads of a layer
// share one cascade, scored by the sum of their masses. `model`: one cascade for every head of
// every layer it governs, so a span survives everywhere or nowhere (--share-reduce: the lanes'
// masses for a token are summed, or the largest is taken, so that the few heads that retrieve
// can keep what they read); a layer's commit is held
// until the last layer of the pass has committed, and then the chunk goes in for all of them
// with the masses of the whole pass (the transformer runs the layers in order and reads a
// layer's cache again only in the next pass, so no layer sees the delay).
//
// Levels may differ in size (--cascade-sizes 256,64,64,64,64: a dense recent level for
// perplexity, small deep ones for reach). Because units differ in length and competitions are
// decided per cascade, the fill of a sub-cache differs between cascades once the cache is full;
// the query then sits at NS + S for every one and each numbers its tokens back from it, so the
// newest cached token is always right before the query (a cascade that holds fewer tokens
// leaves a gap after the sinks). Keys keep the virtual-position trick of the token cascade: a
// key is rotated only when it moves.
//
// Storage (f16, q8_0): a carried key or value travels as stored; where a key lands it is
// decoded, rotated and stored again, so it is rounded once per move. Values never change.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <span>
#include <vector>

#include "base/error.h"
#include "cache/kv_rows.h"
#include "cache/policies.h"

namespace kvc {
namespace {

// Where one lane's keys, values and masses of a committed chunk are: lane `head` of
// [n][heads][head_dim] keys and values and [heads][n] masses (null: no masses).
struct LaneChunk {
  const float* k = nullptr;
  const float* v = nullptr;
  const float* mass = nullptr;
  int heads = 0, head = 0;
};

// A cascade decides its structure once per arrival; what that does to keys and values is logged
// as moves and then replayed for every lane, so a carry needs room for one lane only.
struct SpanMove {
  enum Kind : uint8_t { kFromChunk, kToCarry, kFromCarry, kShift } kind;
  int slot = 0;        // cache slot written (kFromChunk, kFromCarry, kShift) or read (kToCarry)
  int buf = 0, c = 0;  // carry buffer and token; kShift: c is the slot read
  int64_t delta = 0;   // rotation of the key as it lands
};

// What a commit works in: the move log and one lane of keys and values on their way down. Only
// one cascade commits at a time, so every cascade of a model shares one.
struct SpanScratch {
  std::vector<SpanMove> moves;
  KvRows carry_k, carry_v;  // [buffer][token] rows, as stored
  std::vector<float> key;   // [head_dim]: a key being rotated
};

class SpanCascade {
 public:
  using Move = SpanMove;

  SpanCascade(const CacheConfig& c, int n_lanes, const KvShape& shape,
              std::vector<const KeyRotator*> lane_rotators)
      : ns_(c.sinks), g_(c.unit_max), beta_(c.beta), by_score_(c.select_by_score),
        peak_(c.unit_score == "peak"), mean_(c.unit_score == "mean"),
        vnorm_weight_(c.value_norm_weight), share_max_(c.share_reduce == "max"),
        kinds_(c.token_kinds), lanes_(n_lanes), hd_(shape.head_dim), k_type_(shape.k_type),
        v_type_(shape.v_type),
        rotators_(std::move(lane_rotators)), sizes_(level_sizes(c)),
        c_(static_cast<int>(sizes_.size())) {
    lowest_from_ = c.unit_compete == "lowest" || c.unit_compete == "pool" ? 1
                   : c.unit_compete == "lowest-last"                    ? c_ - 1
                                                                        : c_;
    pool_ = c.unit_compete == "pool";
    s_ = std::accumulate(sizes_.begin(), sizes_.end(), 0);
    for (int i = 0, b = ns_; i < c_; b += sizes_[i++]) base_.push_back(b);
    slots_ = ns_ + s_;
    const size_t lane_slots = static_cast<size_t>(lanes_) * slots_;
    k_ = KvRows(k_type_, hd_, lane_slots), v_ = KvRows(v_type_, hd_, lane_slots);
    mass_.assign(lane_slots, 0.0f);
    score_.assign(static_cast<size_t>(slots_), 0.0f), vnorm_.assign(score_.size(), 0.0f);
    index_.assign(score_.size(), 0);
    units_.assign(score_.size(), Unit{});  // a level of W slots holds at most W units
    const int widest = *std::max_element(sizes_.begin(), sizes_.end());
    rank_.assign(static_cast<size_t>(widest), RankedUnit{});
    cut_.assign(static_cast<size_t>(widest), 0);
    level_.assign(static_cast<size_t>(c_), Level{});
    chunk_.assign(static_cast<size_t>(lanes_), LaneChunk{});
    // A unit is at most 2g - 1 tokens; an arriving one evicts fewer than 2g more per level.
    carry_cap_ = 2 * g_ * (c_ + 2);
    carry_b_.id = 1;
    for (auto* b : {&carry_a_, &carry_b_}) {
      b->tok.assign(static_cast<size_t>(carry_cap_), CarryToken{});
      b->units.assign(static_cast<size_t>(carry_cap_), CarryUnit{});
    }
    clear();
  }

  int lanes() const { return lanes_; }
  int levels() const { return c_; }
  // Sizes `s` for this cascade's commits (what it already holds for others stays).
  void reserve(SpanScratch& s) const {
    // Per arrival: one move for the token, one per token leaving a level and one per token
    // landing; level i >= 1 receives at most i (2g - 1) tokens and pops at most 2g - 2 more.
    size_t moves = 1 + static_cast<size_t>(2 * (2 * g_) * c_ * (c_ + 1));
    if (lowest_from_ < c_) moves += static_cast<size_t>(s_);  // a level closing up, typically
    if (s.moves.capacity() < moves) s.moves.reserve(moves);
    const size_t rows = static_cast<size_t>(2 * carry_cap_);
    if (s.carry_k.rows() < rows) s.carry_k = KvRows(k_type_, hd_, rows);
    if (s.carry_v.rows() < rows) s.carry_v = KvRows(v_type_, hd_, rows);
    if (s.key.size() < static_cast<size_t>(hd_)) s.key.resize(static_cast<size_t>(hd_), 0.0f);
  }
  bool wants_mass() const { return by_score_; }
  float beta() const { return beta_; }

  int64_t next_position() const {
    if (!filling_) return ns_ + s_;
    int64_t p = n_sinks_;
    for (int i = 0; i < c_; ++i) p += level_[i].fill;
    return p;
  }

  // Segment 0 (the sinks) and two per level (a level's ring may wrap) of one lane, with its
  // masses zeroed for the coming attention.
  void view(int lane, KvSegment* seg) {
    std::fill_n(&mass_[at(lane, 0)], slots_, 0.0f);
    seg[0] = KvSegment{};
    seg[0].k = k_.row(at(lane, 0)), seg[0].v = v_.row(at(lane, 0)), seg[0].n = n_sinks_;  // sinks: no score
    seg[0].k_type = k_type_, seg[0].v_type = v_type_;
    for (int i = 0; i < c_; ++i) {
      const Level& L = level_[i];
      const int first = std::min(L.fill, sizes_[i] - L.head);
      const int runs[2][2] = {{L.head, first}, {0, L.fill - first}};
      for (int r = 0; r < 2; ++r) {
        KvSegment& sg = seg[1 + 2 * i + r];
        sg = KvSegment{};
        const int slot = base_[i] + runs[r][0];
        sg.k = k_.row(at(lane, slot)), sg.v = v_.row(at(lane, slot)), sg.n = runs[r][1];
        sg.k_type = k_type_, sg.v_type = v_type_;
        sg.pos_offset = offset(i);
        sg.mass = &mass_[at(lane, slot)];
      }
    }
  }

  // Lanes [first, first + chunks.size()) commit an n-token chunk; once every lane has, the
  // chunk goes in. `ids` must be the same for every part of one chunk. `scratch` was reserved
  // by this cascade.
  void commit(int first, std::span<const LaneChunk> chunks, int n, const int32_t* ids,
              SpanScratch& scratch) {
    if (n_committed_ == 0) chunk_n_ = n;
    if (n != chunk_n_) fail("span cascade: layers committed chunks of {} and {} tokens", chunk_n_, n);
    for (size_t j = 0; j < chunks.size(); ++j) chunk_[static_cast<size_t>(first) + j] = chunks[j];
    n_committed_ += static_cast<int>(chunks.size());
    if (n_committed_ < lanes_) return;
    n_committed_ = 0;
    fold_masses(n);
    const int64_t p0 = next_position();
    for (int j = 0; j < n; ++j, ++t_) {
      scratch.moves.clear();
      insert(j, n, p0, ids ? kind_of(ids[j]) : uint8_t{kPlainToken}, scratch.moves);
      replay(j, scratch);
    }
  }

  void clear() {
    n_sinks_ = 0, t_ = 0, u_ = -1, filling_ = true;
    open_len_ = 0, open_digits_ = 0, open_closed_ = true;
    n_committed_ = 0;
    std::fill(mass_.begin(), mass_.end(), 0.0f);
    for (Level& L : level_) L = Level{0, 0, ns_, 0, 0};
  }

  // Between forward passes. mass_ is scratch (view() zeroes it, commit folds it into score_),
  // as are the carries, rank_, cut_ and chunk_, which one commit fills and empties.
  void visit_state(StateFields& f) {
    f.expect(n_committed_ == 0, "a chunk half committed");
    f.value("n_sinks", n_sinks_), f.value("t", t_), f.value("u", u_);
    f.value("filling", filling_), f.value("open_len", open_len_);
    f.value("open_digits", open_digits_), f.value("open_closed", open_closed_);
    f.expect(n_sinks_ >= 0 && n_sinks_ <= ns_ && open_len_ >= 0 && open_digits_ >= 0, "n_sinks");
    f.array("levels", level_);
    for (int i = 0; i < c_; ++i) {
      const Level& L = level_[static_cast<size_t>(i)];
      const int w = sizes_[static_cast<size_t>(i)];
      f.expect(L.head >= 0 && L.head < w && L.fill >= 0 && L.fill <= w && L.unit_head >= 0 &&
                   L.unit_head < w && L.n_units >= 0 && L.n_units <= L.fill,
               "levels");
    }
    f.rows("k", k_), f.rows("v", v_);
    f.array("score", score_), f.array("vnorm", vnorm_), f.array("index", index_);
    // Units field by field: a bool loaded as a raw byte could hold a value no bool may.
    std::vector<int32_t> lens(units_.size());
    std::vector<uint8_t> seps(units_.size());
    for (size_t i = 0; i < units_.size(); ++i) lens[i] = units_[i].len, seps[i] = units_[i].sep_end;
    f.array("unit_lengths", lens);
    f.array("unit_separator_ends", seps);
    for (size_t i = 0; i < units_.size(); ++i) {
      f.expect(lens[i] >= 0 && lens[i] < 2 * g_ && seps[i] <= 1, "units");
      units_[i] = {lens[i], seps[i] == 1};
    }
    // Each level's units cover exactly the tokens it holds.
    for (int i = 0; i < c_; ++i) {
      const Level& L = level_[static_cast<size_t>(i)];
      int tokens = 0;
      for (int r = 0; r < L.n_units; ++r) {
        const int len = unit(i, r).len;
        f.expect(len > 0, "units");
        tokens += len;
      }
      f.expect(tokens == L.fill, "units");
    }
  }

  size_t bytes() const {
    size_t carry = 0;
    for (const auto* b : {&carry_a_, &carry_b_})
      carry += b->tok.size() * sizeof(CarryToken) + b->units.size() * sizeof(CarryUnit);
    return k_.bytes() + v_.bytes() + (score_.size() + mass_.size() + vnorm_.size()) * sizeof(float) +
           index_.size() * sizeof(int64_t) + units_.size() * sizeof(Unit) +
           level_.size() * sizeof(Level) + chunk_.size() * sizeof(LaneChunk) + carry +
           rank_.size() * sizeof(RankedUnit) + cut_.size();
  }

  std::vector<LayerKvCache::SlotInfo> slots() const {
    std::vector<LayerKvCache::SlotInfo> out;
    for (int s = 0; s < n_sinks_; ++s) out.push_back({index_[s], s, 0.0f});
    for (int i = c_ - 1; i >= 0; --i) {
      const Level& L = level_[i];
      for (int r = 0; r < L.fill; ++r) {
        const int slot = ring_slot(i, L, r);
        out.push_back({index_[slot], L.count - L.fill + r + offset(i), score_[slot]});
      }
    }
    return out;
  }

 private:
  // Per level: a ring of W token slots and, beside it, a ring of the units they form.
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
  struct RankedUnit {
    float score = 0.0f;
    int unit = 0, len = 0;  // index in the level's unit ring (0 = oldest), tokens
  };
  struct CarryUnit {
    int first = 0, len = 0;  // tokens [first, first + len) of the carry buffer
    bool sep_end = false;
  };
  // Units on their way to the next level (their keys and values: scratch buffer `id`).
  struct CarryBuffer {
    std::vector<CarryToken> tok;
    std::vector<CarryUnit> units;
    int n_tok = 0, n_units = 0;
    int id = 0;
  };
  static std::vector<int> level_sizes(const CacheConfig& c) {
    if (!c.level_sizes.empty()) return c.level_sizes;
    return std::vector<int>(static_cast<size_t>(c.cascades), c.size / c.cascades);
  }

  uint8_t kind_of(int32_t id) const {
    if (!kinds_ || id < 0 || static_cast<size_t>(id) >= kinds_->size()) return kPlainToken;
    return (*kinds_)[static_cast<size_t>(id)];
  }

  size_t at(int lane, int slot) const { return static_cast<size_t>(lane) * slots_ + slot; }
  int ring_slot(int i, const Level& L, int r) const { return base_[i] + (L.head + r) % sizes_[i]; }
  Unit& unit(int i, int r) {
    const Level& L = level_[i];
    return units_[static_cast<size_t>(base_[i] + (L.unit_head + r) % sizes_[i])];
  }

  // Cache position = virtual + offset: numbered back from the query, newest level last.
  int64_t offset(int i) const {
    int64_t newer = 0;
    for (int j = 0; j < i; ++j) newer += level_[j].fill;
    return next_position() - newer - level_[i].count;
  }

  float value_norm(const float* v) const {
    float s = 0.0f;
    for (int d = 0; d < hd_; ++d) s += std::fabs(v[d]);
    return s / static_cast<float>(hd_);
  }

  // How the lanes' masses for one token combine (masses are >= 0, so 0 starts both).
  float reduce(float acc, float mass) const { return share_max_ ? std::max(acc, mass) : acc + mass; }

  // Scores decay by beta^n; each slot gains the mass the lanes gave it (their sum or the most).
  void fold_masses(int n) {
    const float decay =
        beta_ >= 1.0f ? 1.0f : static_cast<float>(std::pow(static_cast<double>(beta_), n));
    for (int i = 0; i < c_; ++i) {
      const Level& L = level_[i];
      for (int r = 0; r < L.fill; ++r) {
        const int slot = ring_slot(i, L, r);
        float m = 0.0f;
        for (int lane = 0; lane < lanes_; ++lane) m = reduce(m, mass_[at(lane, slot)]);
        score_[slot] = decay * score_[slot] + m;
      }
    }
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

  float level_unit_score(int i, int first_token, const Unit& u) const {
    const Level& L = level_[i];
    return unit_score(u.len, u.sep_end,
                      [&](int r) { return score_[ring_slot(i, L, first_token + r)]; },
                      [&](int r) { return vnorm_[ring_slot(i, L, first_token + r)]; });
  }

  // Moves the oldest unit of level i into `out`.
  void pop_oldest(int i, CarryBuffer& out, std::vector<Move>& moves) {
    Level& L = level_[i];
    const Unit u = unit(i, 0);
    CarryUnit& cu = out.units[static_cast<size_t>(out.n_units++)];
    cu = {out.n_tok, u.len, u.sep_end};
    for (int r = 0; r < u.len; ++r) {
      const int slot = ring_slot(i, L, r), c = out.n_tok;
      moves.push_back({Move::kToCarry, slot, out.id, c, 0});
      out.tok[static_cast<size_t>(c)] = {score_[slot], vnorm_[slot], index_[slot], L.count - L.fill + r};
      ++out.n_tok;
    }
    L.head = (L.head + u.len) % sizes_[i];
    L.fill -= u.len;
    L.unit_head = (L.unit_head + 1) % sizes_[i];
    --L.n_units;
  }

  // Drops the newest `k` units of level i.
  void drop_newest(int i, int k) {
    Level& L = level_[i];
    for (; k > 0; --k) {
      const int len = unit(i, L.n_units - 1).len;
      L.fill -= len, L.count -= len;
      --L.n_units;
    }
  }

  // Appends carry unit `cu` of `in` to level i; the caller made room.
  void push(int i, CarryBuffer& in, const CarryUnit& cu, std::vector<Move>& moves) {
    Level& L = level_[i];
    for (int r = 0; r < cu.len; ++r) {
      const int c = cu.first + r;
      const CarryToken& t = in.tok[static_cast<size_t>(c)];
      const int slot = ring_slot(i, L, L.fill);
      moves.push_back({Move::kFromCarry, slot, in.id, c, L.count - t.virt});
      score_[slot] = t.score, vnorm_[slot] = t.vnorm, index_[slot] = t.index;
      ++L.fill, ++L.count;
    }
    unit(i, L.n_units) = {cu.len, cu.sep_end};
    ++L.n_units;
  }

  // Level i >= 1 takes the units in `in` (evicted from level i - 1 by unit u_); what it evicts
  // in turn goes to `out`.
  void take(int i, CarryBuffer& in, CarryBuffer& out, std::vector<Move>& moves) {
    const bool open = filling_ || (!(pool_ && i == c_ - 1) && (u_ & ((int64_t{1} << i) - 1)) == 0);
    const int w = sizes_[i];
    for (int m = 0; m < in.n_units; ++m) {
      const CarryUnit& cu = in.units[static_cast<size_t>(m)];
      Level& L = level_[i];
      if (open || L.n_units == 0) {
        while (w - L.fill < cu.len) pop_oldest(i, out, moves);
        push(i, in, cu, moves);
        continue;
      }
      if (i >= lowest_from_) {
        compete_with_lowest(i, in, cu, moves);
        continue;
      }
      // Closed: the fewest newest units whose slots (with the free ones) fit the carry.
      int k = 0, freed = w - L.fill, end = L.fill;
      float theirs = 0.0f;
      while (freed < cu.len || k == 0) {
        const Unit& u = unit(i, L.n_units - 1 - k);
        end -= u.len, freed += u.len;
        const float s = level_unit_score(i, end, u);
        theirs = peak_ || mean_ ? std::max(theirs, s) : theirs + s;
        ++k;
      }
      if (!by_score_ || carry_score(in, cu) >= theirs) {  // a tie goes to the carry, the newer unit
        drop_newest(i, k);
        push(i, in, cu, moves);
      }
    }
  }

  float carry_score(const CarryBuffer& in, const CarryUnit& cu) const {
    return unit_score(cu.len, cu.sep_end,
                      [&](int r) { return in.tok[static_cast<size_t>(cu.first + r)].score; },
                      [&](int r) { return in.tok[static_cast<size_t>(cu.first + r)].vnorm; });
  }

  // --unit-compete lowest: carry unit `cu` competes with the fewest lowest-scored units of
  // closed level i that make room for it (the older first among equals); if it wins they are cut
  // out, the level closes up and the carry is appended.
  void compete_with_lowest(int i, CarryBuffer& in, const CarryUnit& cu, std::vector<Move>& moves) {
    Level& L = level_[i];
    for (int u = 0, first = 0; u < L.n_units; ++u) {
      const Unit& un = unit(i, u);
      rank_[static_cast<size_t>(u)] = {level_unit_score(i, first, un), u, un.len};
      first += un.len;
    }
    const auto ranked = std::span(rank_).first(static_cast<size_t>(L.n_units));
    std::sort(ranked.begin(), ranked.end(), [](const RankedUnit& a, const RankedUnit& b) {
      return a.score < b.score || (a.score == b.score && a.unit < b.unit);
    });
    int k = 0, freed = sizes_[i] - L.fill;
    float theirs = 0.0f;
    for (; freed < cu.len || k == 0; ++k) {
      freed += ranked[static_cast<size_t>(k)].len;
      const float s = ranked[static_cast<size_t>(k)].score;
      theirs = peak_ || mean_ ? std::max(theirs, s) : theirs + s;
    }
    if (by_score_ && carry_score(in, cu) < theirs) return;
    std::fill_n(cut_.begin(), L.n_units, uint8_t{0});
    for (int r = 0; r < k; ++r) cut_[static_cast<size_t>(ranked[static_cast<size_t>(r)].unit)] = 1;
    close_up(i, moves);
    push(i, in, cu, moves);
  }

  // Removes the units of level i marked in cut_, moving each younger token back over the gap
  // (its virtual index drops by the tokens cut before it, so its key turns back as much).
  void close_up(int i, std::vector<Move>& moves) {
    Level& L = level_[i];
    int from = 0, to = 0, kept = 0;
    for (int u = 0; u < L.n_units; ++u) {
      const Unit un = unit(i, u);
      if (cut_[static_cast<size_t>(u)]) {
        from += un.len;
        continue;
      }
      for (int r = 0; r < un.len; ++r, ++from, ++to) {
        if (from == to) continue;
        const int src = ring_slot(i, L, from), dst = ring_slot(i, L, to);
        moves.push_back({Move::kShift, dst, 0, src, to - from});
        score_[dst] = score_[src], vnorm_[dst] = vnorm_[src], index_[dst] = index_[src];
      }
      unit(i, kept++) = un;
    }
    L.count -= from - to;
    L.fill = to;
    L.n_units = kept;
  }

  const float* chunk_key(int lane, int j) const {
    const LaneChunk& c = chunk_[static_cast<size_t>(lane)];
    return c.k + (static_cast<size_t>(j) * c.heads + c.head) * hd_;
  }
  const float* chunk_value(int lane, int j) const {
    const LaneChunk& c = chunk_[static_cast<size_t>(lane)];
    return c.v + (static_cast<size_t>(j) * c.heads + c.head) * hd_;
  }

  // Carries out the logged moves of arrival j in every lane.
  void replay(int j, SpanScratch& scratch) {
    const auto carry = [&](const Move& m) {  // the carry row of token m.c in buffer m.buf
      return static_cast<size_t>(m.buf) * carry_cap_ + static_cast<size_t>(m.c);
    };
    float* key = scratch.key.data();
    for (int lane = 0; lane < lanes_; ++lane) {
      const KeyRotator& rotator = *rotators_[static_cast<size_t>(lane)];
      for (const Move& m : scratch.moves) {
        const size_t a = at(lane, m.slot);
        switch (m.kind) {
          case Move::kFromChunk:
            std::copy_n(chunk_key(lane, j), hd_, key);
            rotator.rotate(key, m.delta);
            k_.store(a, key);
            v_.store(a, chunk_value(lane, j));
            break;
          case Move::kToCarry:
            scratch.carry_k.copy_from(carry(m), k_, a);
            scratch.carry_v.copy_from(carry(m), v_, a);
            break;
          case Move::kFromCarry:
            scratch.carry_k.load(carry(m), key);
            rotator.rotate(key, m.delta);
            k_.store(a, key);
            v_.copy_from(a, scratch.carry_v, carry(m));
            break;
          case Move::kShift:  // within the cache: the slot it leaves is read before it is reused
            k_.load(at(lane, m.c), key);
            rotator.rotate(key, m.delta);
            k_.store(a, key);
            v_.copy(a, at(lane, m.c));
            break;
        }
      }
    }
  }

  // One arrival: stream token t_, position j of the n-token chunk being committed. Decides the
  // structure and logs the moves of keys and values (replay() does them).
  void insert(int j, int n, int64_t p0, uint8_t kind, std::vector<Move>& moves) {
    if (n_sinks_ < ns_) {
      moves.push_back({Move::kFromChunk, n_sinks_, 0, 0, n_sinks_ - (p0 + j)});
      index_[n_sinks_] = t_;
      ++n_sinks_;
      return;
    }
    // Unit boundary before this token.
    const bool digit = kind == kDigitToken;
    const bool extend_digits = digit && open_digits_ > 0 && open_digits_ + 1 <= g_;
    if (open_closed_ || (open_len_ >= g_ && !extend_digits)) {
      ++u_;
      open_len_ = 0, open_digits_ = 0, open_closed_ = false;
    }
    if (filling_) {
      int total = 0;
      for (int i = 0; i < c_; ++i) total += level_[i].fill;
      if (total + 1 > s_) filling_ = false;
    }
    // Sub-cache 0 is always open: make room by evicting whole units, then take the token.
    carry_a_.n_tok = carry_a_.n_units = 0;
    Level& L0 = level_[0];
    while (L0.fill == sizes_[0]) pop_oldest(0, carry_a_, moves);
    if (open_len_ == 0) {
      unit(0, L0.n_units) = {0, false};
      ++L0.n_units;
    }
    const int slot = ring_slot(0, L0, L0.fill);
    float score = 0.0f, vnorm = 0.0f;
    moves.push_back({Move::kFromChunk, slot, 0, 0, L0.count - (p0 + j)});
    for (int lane = 0; lane < lanes_; ++lane) {
      const LaneChunk& c = chunk_[static_cast<size_t>(lane)];
      if (c.mass) score = reduce(score, c.mass[static_cast<size_t>(c.head) * n + j]);
      if (vnorm_weight_) vnorm += value_norm(chunk_value(lane, j));
    }
    score_[slot] = score;
    vnorm_[slot] = vnorm_weight_ ? vnorm / static_cast<float>(lanes_) : 1.0f;
    index_[slot] = t_;
    ++L0.fill, ++L0.count;
    Unit& open = unit(0, L0.n_units - 1);
    ++open.len;
    open.sep_end = kind == kSeparatorToken;
    // Evicted units go down the cascade.
    CarryBuffer* in = &carry_a_;
    CarryBuffer* out = &carry_b_;
    for (int i = 1; i < c_ && in->n_units > 0; ++i) {
      out->n_tok = out->n_units = 0;
      take(i, *in, *out, moves);
      std::swap(in, out);
    }
    // Evicted from the last level: dropped, and the cache has filled up (units leave slack,
    // so the total may never reach S exactly).
    if (in->n_units > 0) filling_ = false;
    ++open_len_;
    open_digits_ = digit ? open_digits_ + 1 : 0;
    if (kind == kSeparatorToken) open_closed_ = true;
  }

  int ns_, g_;
  float beta_;
  bool by_score_, peak_, mean_, vnorm_weight_, share_max_;
  std::shared_ptr<const std::vector<uint8_t>> kinds_;
  int lanes_, hd_;
  KvType k_type_, v_type_;
  std::vector<const KeyRotator*> rotators_;  // per lane
  std::vector<int> sizes_;                   // W per level
  int c_;
  int s_ = 0, slots_ = 0, carry_cap_ = 0;
  std::vector<int> base_;               // first slot of each level
  KvRows k_, v_;                        // [lane][NS + S] rows
  std::vector<float> mass_;             // [lane][NS + S]: what attention adds
  std::vector<float> score_, vnorm_;    // [NS + S]: shared by every lane
  std::vector<int64_t> index_;          // [NS + S]
  std::vector<Unit> units_;             // [NS + S]: level i's unit ring at base_[i]
  std::vector<Level> level_;            // [C]
  std::vector<LaneChunk> chunk_;        // [lane]: the chunk being committed
  int n_committed_ = 0, chunk_n_ = 0;   // lanes that have committed it, its length
  CarryBuffer carry_a_, carry_b_;
  int lowest_from_ = 0;              // first level whose arrivals compete with the lowest units
  bool pool_ = false;                // the last level never opens once the cache is full
  std::vector<RankedUnit> rank_;     // compete_with_lowest's working lists, one level wide
  std::vector<uint8_t> cut_;
  int n_sinks_ = 0;
  int64_t t_ = 0, u_ = -1;  // next stream index; index of the unit being built
  bool filling_ = true;     // every level is open until the cache is full (see insert())
  int open_len_ = 0, open_digits_ = 0;
  bool open_closed_ = true;  // the last unit ended (after a separator): the next token starts one
};

// One layer's part of the span cascades: with `per_head`, KV head h is the one lane of
// cascades[h] (`head`); otherwise it is lane lane0 + h of cascades[0] (`layer`, `model`).
class SpanCascadeLayer final : public LayerKvCache {
 public:
  // `owns_cascades`, `reports_scratch`: this layer counts the cascades and the scratch in its
  // bytes (shared ones are counted by one layer only).
  SpanCascadeLayer(std::vector<std::shared_ptr<SpanCascade>> cascades, bool per_head, int lane0,
                   const KvShape& shape, std::shared_ptr<SpanScratch> scratch,
                   bool owns_cascades, bool reports_scratch)
      : cascades_(std::move(cascades)), per_head_(per_head), lane0_(lane0), shape_(shape),
        scratch_(std::move(scratch)), owns_cascades_(owns_cascades),
        reports_scratch_(reports_scratch) {
    for (const auto& c : cascades_) c->reserve(*scratch_);
  }

  int64_t next_position() const override { return cascades_[0]->next_position(); }
  int64_t room() const override { return std::numeric_limits<int64_t>::max() / 4; }
  bool wants_mass() const override { return cascades_[0]->wants_mass(); }
  float beta() const override { return cascades_[0]->beta(); }

  void view(KvView& out) override {
    const int H = shape_.n_heads, n_segments = 1 + 2 * cascades_[0]->levels();
    out.n_heads = H;
    out.n_segments = n_segments;
    out.segments.assign(static_cast<size_t>(H) * n_segments, KvSegment{});
    for (int h = 0; h < H; ++h)
      cascade(h).view(lane(h), &out.segments[static_cast<size_t>(h) * n_segments]);
  }

  void commit(const float* k, const float* v, int n, const float* chunk_mass,
              const int32_t* ids) override {
    const int H = shape_.n_heads;
    if (!per_head_ && cascades_[0]->lanes() > H) {
      // `model`: the cascade takes the chunk once the last layer has committed, after the
      // caller has reused these buffers.
      const size_t kv = static_cast<size_t>(n) * H * shape_.head_dim;
      held_k_.assign(k, k + kv), held_v_.assign(v, v + kv);
      k = held_k_.data(), v = held_v_.data();
      if (chunk_mass) {
        held_mass_.assign(chunk_mass, chunk_mass + static_cast<size_t>(H) * n);
        chunk_mass = held_mass_.data();
      }
    }
    lanes_.resize(static_cast<size_t>(H));  // once: no allocation per token
    for (int h = 0; h < H; ++h) lanes_[static_cast<size_t>(h)] = {k, v, chunk_mass, H, h};
    if (per_head_) {
      for (int h = 0; h < H; ++h)
        cascade(h).commit(0, std::span(&lanes_[static_cast<size_t>(h)], 1), n, ids, *scratch_);
    } else {
      cascades_[0]->commit(lane0_, lanes_, n, ids, *scratch_);
    }
  }

  void clear() override {
    for (auto& c : cascades_) c->clear();
  }
  size_t bytes() const override {
    size_t b = (held_k_.capacity() + held_v_.capacity() + held_mass_.capacity()) * sizeof(float);
    if (reports_scratch_)
      b += scratch_->carry_k.bytes() + scratch_->carry_v.bytes() +
           scratch_->key.size() * sizeof(float) + scratch_->moves.capacity() * sizeof(SpanMove);
    if (owns_cascades_)
      for (const auto& c : cascades_) b += c->bytes();
    return b;
  }
  std::vector<SlotInfo> slots(int h) const override { return cascades_[per_head_ ? h : 0]->slots(); }
  // A cascade shared by several layers (`model`) is saved with the layer that owns it.
  void visit_state(StateFields& f) override {
    if (owns_cascades_)
      for (auto& c : cascades_) c->visit_state(f);
  }

 private:
  SpanCascade& cascade(int h) { return *cascades_[per_head_ ? static_cast<size_t>(h) : 0]; }
  int lane(int h) const { return per_head_ ? 0 : lane0_ + h; }

  std::vector<std::shared_ptr<SpanCascade>> cascades_;
  bool per_head_;
  int lane0_;
  KvShape shape_;
  std::shared_ptr<SpanScratch> scratch_;  // shared by every layer of the model
  bool owns_cascades_;   // counts its cascades' bytes (`model`: the first layer only)
  bool reports_scratch_;  // counts the shared scratch (the first layer)
  std::vector<float> held_k_, held_v_, held_mass_;  // `model`: this layer's chunk in flight
  std::vector<LaneChunk> lanes_;                    // where this layer's heads are in a chunk
};

}  // namespace

std::vector<std::unique_ptr<LayerKvCache>> make_span_cascade_caches(
    const CacheConfig& c, const KvShape& shape, std::span<const KeyRotator* const> rotators) {
  const int H = shape.n_heads, n_layers = static_cast<int>(rotators.size());
  std::vector<std::unique_ptr<LayerKvCache>> layers;
  auto scratch = std::make_shared<SpanScratch>();
  if (c.unit_share == "model") {
    std::vector<const KeyRotator*> lane_rotators;
    for (const KeyRotator* r : rotators) lane_rotators.insert(lane_rotators.end(), H, r);
    auto shared = std::make_shared<SpanCascade>(c, n_layers * H, shape, lane_rotators);
    for (int l = 0; l < n_layers; ++l)
      layers.push_back(std::make_unique<SpanCascadeLayer>(
          std::vector<std::shared_ptr<SpanCascade>>{shared}, false, l * H, shape, scratch, l == 0,
          l == 0));
    return layers;
  }
  for (const KeyRotator* r : rotators) {
    const bool first = layers.empty();
    std::vector<std::shared_ptr<SpanCascade>> cascades;
    if (c.unit_share == "layer") {
      cascades.push_back(std::make_shared<SpanCascade>(
          c, H, shape, std::vector<const KeyRotator*>(static_cast<size_t>(H), r)));
    } else {
      for (int h = 0; h < H; ++h)
        cascades.push_back(std::make_shared<SpanCascade>(c, 1, shape,
                                                         std::vector<const KeyRotator*>{r}));
    }
    layers.push_back(std::make_unique<SpanCascadeLayer>(
        std::move(cascades), c.unit_share != "layer", 0, shape, scratch, true, first));
  }
  return layers;
}

}  // namespace kvc
