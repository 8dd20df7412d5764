// Sparse attention: the selection (chunk_selection.h) picks what a query block reads; this file
// turns that into key ranges and attends to them. The row kernel reads each key and value row
// once for all the query heads of a group (GQA), in tiles with an online softmax, so the keys
// and values of a tile are read together and no row of probabilities over the cache is formed.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/sparse_attention.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
#include <hwy/contrib/math/math-inl.h>

#include <algorithm>
#include <cmath>

#include "ops/kv_row-inl.h"
#include "ops/sparse_attention.h"

#ifndef KVC_OPS_SPARSE_ATTENTION_ROWS_
#define KVC_OPS_SPARSE_ATTENTION_ROWS_
namespace kvc::sparse_detail {

// Up to kMaxRows query rows (the heads of one group, for one token) against one key list: the
// cached ranges, then the first n_chunk_keys keys of the chunk.
inline constexpr int kMaxRows = 16;
struct RowsTask {
  const KvView* view = nullptr;
  int head = 0;  // KV head
  int hd = 0;
  int m = 0;     // rows
  int n_seg = 0;
  const float* const* q = nullptr;  // q[s * m + r]: row r rotated for segment s; s = n_seg: chunk
  const KeyRange* ranges = nullptr;
  int n_ranges = 0;
  const float* k_chunk = nullptr;
  const float* v_chunk = nullptr;
  size_t chunk_stride = 0;
  int n_chunk_keys = 0;
  float scale = 0.0f;
  float softcap = 0.0f;
  float* const* out = nullptr;  // m rows of hd floats
  // Null, or [m][n_keys] logits in key order, for the masses; with the rows' max and sum.
  float* logits = nullptr;
  int n_keys = 0;
  float* row_max = nullptr;
  float* row_sum = nullptr;
};

}  // namespace kvc::sparse_detail
#endif

HWY_BEFORE_NAMESPACE();
namespace kvc {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

void AttendRows(const sparse_detail::RowsTask& t) {
  constexpr int kTile = 16;
  constexpr int R = sparse_detail::kMaxRows;
  const hn::ScalableTag<float> d;
  const int N = static_cast<int>(hn::Lanes(d));
  const int m = t.m, hd = t.hd;
  // l[r]: the tile's logits of row r, then their exps (contiguous per row, for SIMD exp)
  HWY_ALIGN float l[R][kTile];
  float dots[R], mx[R], sum[R];
  const float* prow[R];
  for (int r = 0; r < m; ++r) {
    mx[r] = -HUGE_VALF, sum[r] = 0.0f, prow[r] = l[r];
    std::fill(t.out[r], t.out[r] + hd, 0.0f);
  }
  int at = 0;  // keys attended so far: the logits' column
  // Keys and values as stored: rows k_stride and v_stride bytes apart.
  auto attend = [&](const float* const* q, const uint8_t* k, KvType k_type, size_t k_stride,
                    const uint8_t* v, KvType v_type, size_t v_stride, int n) {
    for (int i0 = 0; i0 < n; i0 += kTile) {
      const int nt = std::min(kTile, n - i0);
      for (int i = 0; i < nt; ++i) {
        KeyRowDots(k_type, q, m, k + (i0 + i) * k_stride, hd, dots);
        for (int r = 0; r < m; ++r) l[r][i] = dots[r] * t.scale;
      }
      for (int r = 0; r < m; ++r) {
        if (t.softcap > 0.0f)
          for (int i = 0; i < nt; ++i) l[r][i] = t.softcap * std::tanh(l[r][i] / t.softcap);
        if (t.logits) std::copy(l[r], l[r] + nt, t.logits + static_cast<size_t>(r) * t.n_keys + at);
        float tile_max = l[r][0];
        for (int i = 1; i < nt; ++i) tile_max = std::max(tile_max, l[r][i]);
        if (tile_max > mx[r]) {  // a new maximum: what was summed so far shrinks to its scale
          const float f = std::exp(mx[r] - tile_max);
          sum[r] *= f;
          for (int x = 0; x < hd; ++x) t.out[r][x] *= f;
          mx[r] = tile_max;
        }
        for (int i = nt; i < kTile; ++i) l[r][i] = -HUGE_VALF;  // exp gives 0 past the tile
        const auto mv = hn::Set(d, mx[r]);
        auto sv = hn::Zero(d);
        for (int i = 0; i < kTile; i += N) {
          const auto e = hn::Exp(d, hn::Sub(hn::Load(d, l[r] + i), mv));
          hn::Store(e, d, l[r] + i);
          sv = hn::Add(sv, e);
        }
        sum[r] += hn::GetLane(hn::SumOfLanes(d, sv));
      }
      AddValueRows(v_type, prow, m, v + i0 * v_stride, v_stride, nt, hd, t.out);
      at += nt;
    }
  };
  for (int x = 0; x < t.n_ranges; ++x) {
    const KeyRange& rg = t.ranges[x];
    const KvSegment& seg = t.view->at(t.head, rg.seg);
    const size_t kb = kv_row_bytes(seg.k_type, hd), vb = kv_row_bytes(seg.v_type, hd);
    attend(t.q + static_cast<size_t>(rg.seg) * m, seg.k + rg.begin * kb, seg.k_type, kb,
           seg.v + rg.begin * vb, seg.v_type, vb, rg.size());
  }
  const size_t chunk_bytes = t.chunk_stride * sizeof(float);  // the chunk's own rows are f32
  attend(t.q + static_cast<size_t>(t.n_seg) * m, reinterpret_cast<const uint8_t*>(t.k_chunk),
         KvType::kF32, chunk_bytes, reinterpret_cast<const uint8_t*>(t.v_chunk), KvType::kF32,
         chunk_bytes, t.n_chunk_keys);
  for (int r = 0; r < m; ++r) {
    const float inv = 1.0f / sum[r];
    for (int x = 0; x < hd; ++x) t.out[r][x] *= inv;
    if (t.row_max) t.row_max[r] = mx[r], t.row_sum[r] = sum[r];
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace kvc
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <functional>
#include <vector>

#include "base/error.h"

namespace kvc {

HWY_EXPORT(AttendRows);

std::string sparse_config_error(const SparseAttentionConfig& c) {
  auto range = [](const char* flag, int v, int lo, int hi) -> std::string {
    if (v < lo || v > hi) return fmt::format("{} must be in {}..{}, got {}", flag, lo, hi, v);
    return "";
  };
  constexpr int kMaxKeys = 1 << 24;  // as many as a cache may hold
  for (const std::string& e : {range("--sparse-sinks", c.sinks, 0, kMaxKeys),
                               range("--sparse-recent", c.recent, 1, kMaxKeys),
                               range("--sparse-top-chunks", c.top_chunks, 1, kMaxKeys),
                               range("--sparse-chunk", c.chunk, 1, 1 << 16),
                               range("--sparse-refresh", c.refresh, 1, 1 << 20),
                               range("--sparse-min-keys", c.min_keys, 0, kMaxKeys)})
    if (!e.empty()) return e;
  if (static_cast<int64_t>(c.top_chunks) * c.chunk > kMaxKeys)
    return fmt::format("--sparse-top-chunks x --sparse-chunk must be at most {}, got {} x {}",
                       kMaxKeys, c.top_chunks, c.chunk);
  return "";
}

namespace {

using sparse_detail::kMaxRows;
using sparse_detail::RowsTask;

void parallel(ThreadPool* pool, int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (pool && pool->size() > 1 && n > 1)
    pool->parallel_for(n, fn);
  else
    fn(0, n);
}

// Weight of query j of an n-token chunk in the EMA, as dense attention weighs it.
std::vector<float> ema_weights(int n, float beta) {
  std::vector<float> w(n);
  for (int j = 0; j < n; ++j)
    w[j] = beta >= 1.0f ? 1.0f
                        : static_cast<float>((1.0 - beta) * std::pow(static_cast<double>(beta), n - 1 - j));
  return w;
}

bool cancelled(const AttentionArgs& a) {
  return a.cancel && a.cancel->load(std::memory_order_relaxed);
}

// True while `now` is `then` grown at its segments' ends: the same rows, more of them.
bool grew_from(const std::vector<KvSegment>& then, const KvView& now) {
  if (then.size() != now.segments.size()) return false;
  for (size_t i = 0; i < then.size(); ++i) {
    const KvSegment &a = then[i], &b = now.segments[i];
    if (a.k != b.k || a.v != b.v || a.pos_offset != b.pos_offset || b.n < a.n) return false;
  }
  return true;
}

// One call's layout: per KV head, where each segment starts in view order, and the total.
struct Layout {
  int n_seg = 0;
  std::vector<int> begin;  // [head][n_seg + 1]
  int total(int g) const { return begin[static_cast<size_t>(g) * (n_seg + 1) + n_seg]; }
  const int* of(int g) const { return &begin[static_cast<size_t>(g) * (n_seg + 1)]; }
};

Layout make_layout(const AttentionArgs& a) {
  Layout L;
  L.n_seg = a.view->n_segments;
  L.begin.resize(static_cast<size_t>(a.n_kv_heads) * (L.n_seg + 1));
  for (int g = 0; g < a.n_kv_heads; ++g) {
    int off = 0;
    for (int s = 0; s < L.n_seg; ++s) {
      L.begin[static_cast<size_t>(g) * (L.n_seg + 1) + s] = off;
      off += a.view->at(g, s).n;
    }
    L.begin[static_cast<size_t>(g) * (L.n_seg + 1) + L.n_seg] = off;
  }
  return L;
}

// Rows [b, e) in view order as pieces within segments, appended to `out`.
void append_rows(const Layout& L, int g, int b, int e, std::vector<KeyRange>& out) {
  const int* begin = L.of(g);
  for (int s = 0; s < L.n_seg && b < e; ++s) {
    const int lo = std::max(b, begin[s]), hi = std::min(e, begin[s + 1]);
    if (lo < hi) out.push_back({s, lo - begin[s], hi - begin[s]});
  }
}

// The middle rows [b, e) cut into chunks of `chunk` keys, none across a segment boundary.
std::vector<KeyRange> candidate_chunks(const Layout& L, int g, int b, int e, int chunk) {
  std::vector<KeyRange> pieces, chunks;
  append_rows(L, g, b, e, pieces);
  for (const KeyRange& p : pieces)
    for (int x = p.begin; x < p.end; x += chunk) chunks.push_back({p.seg, x, std::min(p.end, x + chunk)});
  return chunks;
}

// Dense attention's probabilities for the decode query's rows of KV head g, and the mass the
// attended cached `ranges` (plus the token's own key) cover of them; against the top keys.
template <typename QRow>
void measure_recall(const AttentionArgs& a, const Layout& L, int g, const QRow& qrow,
                    const std::vector<KeyRange>& ranges, SparseStats& st) {
  const int hd = a.head_dim, group = a.n_q_heads / a.n_kv_heads, S = L.n_seg, T = L.total(g);
  std::vector<char> attended(static_cast<size_t>(T) + 1, 0);
  int n_attended = 1;
  attended[T] = 1;  // the token's own key
  for (const KeyRange& r : ranges)
    for (int x = r.begin; x < r.end; ++x) attended[L.of(g)[r.seg] + x] = 1, ++n_attended;
  std::vector<double> p(static_cast<size_t>(T) + 1);
  for (int h = 0; h < group; ++h) {
    const int qh = g * group + h;
    std::vector<float> key_row(static_cast<size_t>(hd));
    auto logit = [&](const float* q, const float* k) {
      double dot = 0;
      for (int x = 0; x < hd; ++x) dot += static_cast<double>(q[x]) * k[x];
      double l = dot * a.scale;
      return a.softcap > 0.0f ? a.softcap * std::tanh(l / a.softcap) : l;
    };
    for (int s = 0; s < S; ++s) {
      const KvSegment& seg = a.view->at(g, s);
      for (int x = 0; x < seg.n; ++x)
        p[L.of(g)[s] + x] = logit(qrow(s, 0, qh), kv_decoded_row(seg.k_type, seg.k, x, hd, key_row));
    }
    p[T] = logit(qrow(S, 0, qh), a.k_chunk + static_cast<size_t>(g) * hd);
    const double mx = *std::max_element(p.begin(), p.end());
    double total = 0, covered = 0;
    for (double& x : p) total += (x = std::exp(x - mx));
    for (int i = 0; i <= T; ++i) covered += attended[i] ? p[i] / total : 0.0;
    std::nth_element(p.begin(), p.begin() + (n_attended - 1), p.end(), std::greater<double>());
    double best = 0;
    for (int i = 0; i < n_attended; ++i) best += p[i] / total;
    st.recall_covered += covered;
    st.recall_best += best;
    ++st.recall_rows;
  }
}

// The whole of one call, fast or reference.
void run(const AttentionArgs& a, const SparseAttentionConfig& c, SparseSelection& sel,
         bool reference) {
  if (a.n_tokens <= 0 || a.n_q_heads <= 0 || a.n_kv_heads <= 0 || a.head_dim <= 0 ||
      a.n_q_heads % a.n_kv_heads != 0 || !a.q || !a.k_chunk || !a.v_chunk || !a.out || !a.view ||
      a.view->n_heads != a.n_kv_heads)
    fail("sparse attention: bad arguments ({} tokens, {} q heads, {} kv heads, head_dim {})",
         a.n_tokens, a.n_q_heads, a.n_kv_heads, a.head_dim);
  const int n = a.n_tokens, nq = a.n_q_heads, nkv = a.n_kv_heads, hd = a.head_dim;
  const int group = nq / nkv;
  if (group > kMaxRows)
    fail("sparse attention: {} query heads share a KV head, at most {} can", group, kMaxRows);
  const Layout L = make_layout(a);
  const int S = L.n_seg;
  const size_t q_token = static_cast<size_t>(nq) * hd;
  const size_t chunk_stride = static_cast<size_t>(nkv) * hd;

  // Queries rotated for each segment's offset (s = S: the chunk itself, offset 0).
  std::vector<float> qrot(static_cast<size_t>(S + 1) * n * q_token);
  parallel(a.pool, static_cast<int64_t>(S + 1) * n, [&](int64_t b, int64_t e) {
    for (int64_t item = b; item < e; ++item) {
      const int s = static_cast<int>(item / n), j = static_cast<int>(item % n);
      float* dst = qrot.data() + item * q_token;
      std::copy(a.q + j * q_token, a.q + (j + 1) * q_token, dst);
      if (!a.rope) continue;
      for (int g = 0; g < nkv; ++g)
        a.rope->apply_heads(dst + static_cast<size_t>(g) * group * hd, group,
                            a.q_pos0 + j - (s == S ? 0 : a.view->at(g, s).pos_offset));
    }
  });
  auto qrow = [&](int s, int j, int qh) {
    return qrot.data() + (static_cast<size_t>(s) * n + j) * q_token + static_cast<size_t>(qh) * hd;
  };

  // Decode reuses the layer's selection while it is fresh and the view only grew.
  const bool decode = n == 1;
  const bool reuse = decode && sel.valid && sel.uses < c.refresh &&
                     static_cast<int>(sel.heads.size()) == nkv && grew_from(sel.made_on, *a.view);
  if (decode && !reuse) sel.heads.assign(nkv, {});

  const int block = decode ? 1 : kSparseQueryBlock;
  const int n_blocks = (n + block - 1) / block;
  const int64_t items = static_cast<int64_t>(n_blocks) * nkv;
  const std::vector<float> w = a.want_mass ? ema_weights(n, a.beta) : std::vector<float>();
  // Masses per item ([rows in view order][then the chunk's n]), summed after in a fixed order.
  int max_rows = 0;
  for (int g = 0; g < nkv; ++g) max_rows = std::max(max_rows, L.total(g));
  const size_t mass_len = static_cast<size_t>(max_rows) + n;
  std::vector<float> mass(a.want_mass ? static_cast<size_t>(items) * mass_len : 0, 0.0f);
  std::vector<SparseStats> item_stats(static_cast<size_t>(items));

  parallel(a.pool, items, [&](int64_t b, int64_t e) {
    std::vector<const float*> sel_rows, rows;
    std::vector<float> logits, pmax(kMaxRows), psum(kMaxRows);
    std::vector<double> dlogit;
    for (int64_t item = b; item < e; ++item) {
      if (cancelled(a)) return;
      const int g = static_cast<int>(item % nkv);
      const int j0 = static_cast<int>(item / nkv) * block, j1 = std::min(n, j0 + block);
      const int T = L.total(g);
      SparseStats& st = item_stats[static_cast<size_t>(item)];
      const int sinks = std::min(c.sinks, T);

      // The selection: the block's rows (every query head of the group) score the middle.
      std::vector<KeyRange> chosen;
      int tail_begin = 0;
      if (reuse) {
        chosen = sel.heads[g].chunks;
        tail_begin = sel.heads[g].tail_begin;
      } else {
        tail_begin = std::max(sinks, T - c.recent);
        std::vector<int> scorers;  // the block's tokens that score: strided, and the last
        for (int j = j1 - 1; j >= j0; j -= kSparseQueryStride) scorers.push_back(j);
        const int n_rows = static_cast<int>(scorers.size()) * group;
        sel_rows.resize(static_cast<size_t>(S) * n_rows);
        for (int s = 0; s < S; ++s)
          for (size_t t = 0; t < scorers.size(); ++t)
            for (int h = 0; h < group; ++h)
              sel_rows[static_cast<size_t>(s) * n_rows + t * group + h] = qrow(s, scorers[t], g * group + h);
        const ChunkQueries cq{a.view, g, hd, n_rows, sel_rows.data(), a.scale};
        chosen = select_chunks(cq, candidate_chunks(L, g, sinks, tail_begin, c.chunk),
                               c.top_chunks, reference, &st.keys_scored);
        ++st.selections;
        if (decode) sel.heads[g] = {chosen, tail_begin};
      }
      std::vector<KeyRange> ranges;
      append_rows(L, g, 0, sinks, ranges);
      ranges.insert(ranges.end(), chosen.begin(), chosen.end());
      append_rows(L, g, tail_begin, T, ranges);
      int n_cached = 0;
      for (const KeyRange& r : ranges) n_cached += r.size();
      st.keys_attended += n_cached;
      st.keys_cached += T;
      // View-order row of each attended key, for the masses.
      std::vector<int> key_row;
      if (a.want_mass)
        for (const KeyRange& r : ranges)
          for (int x = r.begin; x < r.end; ++x) key_row.push_back(L.of(g)[r.seg] + x);
      float* item_mass = a.want_mass ? mass.data() + static_cast<size_t>(item) * mass_len : nullptr;
      if (c.measure_recall && decode) measure_recall(a, L, g, qrow, ranges, st);

      for (int j = j0; j < j1; ++j) {
        const int n_keys = n_cached + j + 1;
        {
          const int m = group;
          const int qh0 = g * group;
          float* out[kMaxRows];
          for (int r = 0; r < m; ++r) out[r] = a.out + j * q_token + static_cast<size_t>(qh0 + r) * hd;
          // probability of key i for row r, once the row is done
          std::function<double(int, int)> prob;
          if (!reference) {
            rows.resize(static_cast<size_t>(S + 1) * m);
            for (int s = 0; s <= S; ++s)
              for (int r = 0; r < m; ++r) rows[static_cast<size_t>(s) * m + r] = qrow(s, j, qh0 + r);
            if (a.want_mass) logits.resize(static_cast<size_t>(m) * n_keys);
            RowsTask t;
            t.view = a.view, t.head = g, t.hd = hd, t.m = m, t.n_seg = S, t.q = rows.data();
            t.ranges = ranges.data(), t.n_ranges = static_cast<int>(ranges.size());
            t.k_chunk = a.k_chunk + static_cast<size_t>(g) * hd;
            t.v_chunk = a.v_chunk + static_cast<size_t>(g) * hd;
            t.chunk_stride = chunk_stride, t.n_chunk_keys = j + 1;
            t.scale = a.scale, t.softcap = a.softcap, t.out = out;
            if (a.want_mass)
              t.logits = logits.data(), t.n_keys = n_keys, t.row_max = pmax.data(), t.row_sum = psum.data();
            HWY_DYNAMIC_DISPATCH(AttendRows)(t);
            prob = [&](int r, int i) {
              return std::exp(static_cast<double>(logits[static_cast<size_t>(r) * n_keys + i]) - pmax[r]) /
                     psum[r];
            };
          } else {
            dlogit.assign(static_cast<size_t>(m) * n_keys, 0.0);
            for (int r = 0; r < m; ++r) {
              std::vector<float> values;  // [n_keys][hd], decoded
              std::vector<float> key_row(static_cast<size_t>(hd)), value_row(key_row.size());
              int i = 0;
              auto key = [&](const float* q, const float* k, const float* v) {
                double dot = 0;
                for (int x = 0; x < hd; ++x) dot += static_cast<double>(q[x]) * k[x];
                double lg = dot * a.scale;
                if (a.softcap > 0.0f) lg = a.softcap * std::tanh(lg / a.softcap);
                dlogit[static_cast<size_t>(r) * n_keys + i++] = lg;
                values.insert(values.end(), v, v + hd);
              };
              for (const KeyRange& rg : ranges) {
                const KvSegment& seg = a.view->at(g, rg.seg);
                for (int x = rg.begin; x < rg.end; ++x)
                  key(qrow(rg.seg, j, qh0 + r), kv_decoded_row(seg.k_type, seg.k, x, hd, key_row),
                      kv_decoded_row(seg.v_type, seg.v, x, hd, value_row));
              }
              for (int k = 0; k <= j; ++k)
                key(qrow(S, j, qh0 + r), a.k_chunk + k * chunk_stride + static_cast<size_t>(g) * hd,
                    a.v_chunk + k * chunk_stride + static_cast<size_t>(g) * hd);
              double* lr = &dlogit[static_cast<size_t>(r) * n_keys];
              const double mxr = *std::max_element(lr, lr + n_keys);
              double total = 0;
              for (int x = 0; x < n_keys; ++x) total += (lr[x] = std::exp(lr[x] - mxr));
              std::vector<double> o(hd, 0.0);
              for (int x = 0; x < n_keys; ++x) {
                lr[x] /= total;
                for (int y = 0; y < hd; ++y) o[y] += lr[x] * values[static_cast<size_t>(x) * hd + y];
              }
              for (int y = 0; y < hd; ++y) out[r][y] = static_cast<float>(o[y]);
            }
            prob = [&](int r, int i) { return dlogit[static_cast<size_t>(r) * n_keys + i]; };
          }
          if (!a.want_mass) continue;
          // Reduced over the query heads of the group as dense attention does (max or mean).
          for (int i = 0; i < n_keys; ++i) {
            double red = 0;
            for (int r = 0; r < m; ++r) red = a.mass_max ? std::max(red, prob(r, i)) : red + prob(r, i) / group;
            const size_t at = i < n_cached ? static_cast<size_t>(key_row[i]) : max_rows + (i - n_cached);
            item_mass[at] += static_cast<float>(w[j] * red);
          }
        }
      }
    }
  });
  if (cancelled(a)) return;

  if (a.want_mass) {
    if (a.chunk_mass) std::fill(a.chunk_mass, a.chunk_mass + static_cast<size_t>(nkv) * n, 0.0f);
    for (int64_t item = 0; item < items; ++item) {
      const int g = static_cast<int>(item % nkv);
      const float* m = mass.data() + static_cast<size_t>(item) * mass_len;
      const int* begin = L.of(g);
      for (int s = 0; s < S; ++s)
        if (float* dst = a.view->at(g, s).mass)
          for (int x = 0; x < begin[s + 1] - begin[s]; ++x) dst[x] += m[begin[s] + x];
      if (a.chunk_mass)
        for (int k = 0; k < n; ++k) a.chunk_mass[static_cast<size_t>(g) * n + k] += m[max_rows + k];
    }
  }
  for (const SparseStats& st : item_stats) {
    sel.stats.selections += st.selections;
    sel.stats.keys_scored += st.keys_scored;
    sel.stats.keys_attended += st.keys_attended;
    sel.stats.keys_cached += st.keys_cached;
    sel.stats.recall_covered += st.recall_covered;
    sel.stats.recall_best += st.recall_best;
    sel.stats.recall_rows += st.recall_rows;
  }
  ++sel.stats.sparse_calls;
  if (decode) {
    if (reuse) {
      ++sel.uses;
    } else {
      sel.valid = true, sel.uses = 1;
      sel.made_on = a.view->segments;
    }
  } else {
    sel.invalidate();  // the next decode step selects afresh, over the chunk's keys too
  }
}

}  // namespace

void sparse_attention(const AttentionArgs& a, const SparseAttentionConfig& c,
                      SparseSelection& sel) {
  int most = 0;
  if (a.view)
    for (int g = 0; g < a.view->n_heads; ++g) {
      int t = 0;
      for (int s = 0; s < a.view->n_segments; ++s) t += a.view->at(g, s).n;
      most = std::max(most, t);
    }
  if (!a.view || a.view->n_segments == 0 || a.window > 0 || most < c.min_keys) {
    sel.invalidate();
    ++sel.stats.dense_calls;
    attention(a);
    return;
  }
  run(a, c, sel, false);
}

void sparse_attention_reference(const AttentionArgs& a, const SparseAttentionConfig& c,
                                SparseSelection& sel) {
  run(a, c, sel, true);
}

}  // namespace kvc
#endif  // HWY_ONCE
