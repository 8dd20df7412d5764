// Attention over a cache view plus the chunk itself. The hot case is decode: one query token,
// a few query heads, up to a few thousand slots, so the work is split over (token, query head)
// rows and each row runs SIMD dot products over head_dim.
//
// Masses: each row's softmax probabilities are kept in a scratch block of tokens, then reduced
// over the query heads of a group (max or mean) and summed over the block's tokens with the EMA
// weights, in a second pass split over slots (so no two threads add into the same slot).

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/attention.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
#include <hwy/contrib/math/math-inl.h>

#include <cstring>

#include "ops/kv_row-inl.h"
#include "quant/fp16.h"
#include "quant/kv_storage.h"

HWY_BEFORE_NAMESPACE();
namespace kvc {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// out[i] = scale * dot(q, key row i), rows `stride` bytes apart, for i in [0, n).
template <class Row>
void Logits(const float* HWY_RESTRICT q, const uint8_t* HWY_RESTRICT k, size_t stride, int n,
            int hd, float scale, float* HWY_RESTRICT out) {
  const hn::ScalableTag<float> d;
  const int N = static_cast<int>(hn::Lanes(d));
  int i = 0;
  if (hd % N == 0) {
    for (; i + 4 <= n; i += 4) {
      const uint8_t* k0 = k + i * stride;
      const uint8_t* k1 = k0 + stride;
      const uint8_t* k2 = k1 + stride;
      const uint8_t* k3 = k2 + stride;
      auto a0 = hn::Zero(d), a1 = hn::Zero(d), a2 = hn::Zero(d), a3 = hn::Zero(d);
      for (int x = 0; x < hd; x += N) {
        const auto qv = hn::LoadU(d, q + x);
        a0 = hn::MulAdd(qv, Row::Load(d, k0, x), a0);
        a1 = hn::MulAdd(qv, Row::Load(d, k1, x), a1);
        a2 = hn::MulAdd(qv, Row::Load(d, k2, x), a2);
        a3 = hn::MulAdd(qv, Row::Load(d, k3, x), a3);
      }
      out[i] = hn::GetLane(hn::SumOfLanes(d, a0)) * scale;
      out[i + 1] = hn::GetLane(hn::SumOfLanes(d, a1)) * scale;
      out[i + 2] = hn::GetLane(hn::SumOfLanes(d, a2)) * scale;
      out[i + 3] = hn::GetLane(hn::SumOfLanes(d, a3)) * scale;
    }
    for (; i < n; ++i) {
      const uint8_t* ki = k + i * stride;
      auto a = hn::Zero(d);
      for (int x = 0; x < hd; x += N) a = hn::MulAdd(hn::LoadU(d, q + x), Row::Load(d, ki, x), a);
      out[i] = hn::GetLane(hn::SumOfLanes(d, a)) * scale;
    }
    return;
  }
  for (; i < n; ++i) {
    float s = 0.0f;
    for (int x = 0; x < hd; ++x) s += q[x] * Row::At(k + i * stride, x);
    out[i] = s * scale;
  }
}

// out += sum_i p[i] * value row i, with out held in registers a few vectors at a time.
template <class Row>
void AddScaled(const float* HWY_RESTRICT p, const uint8_t* HWY_RESTRICT v, size_t stride, int n,
               int hd, float* HWY_RESTRICT out) {
  const hn::ScalableTag<float> d;
  const int N = static_cast<int>(hn::Lanes(d));
  if (hd % N != 0) {
    for (int i = 0; i < n; ++i)
      for (int x = 0; x < hd; ++x) out[x] += p[i] * Row::At(v + i * stride, x);
    return;
  }
  int x0 = 0;
  for (; x0 + 4 * N <= hd; x0 += 4 * N) {
    auto a0 = hn::LoadU(d, out + x0), a1 = hn::LoadU(d, out + x0 + N);
    auto a2 = hn::LoadU(d, out + x0 + 2 * N), a3 = hn::LoadU(d, out + x0 + 3 * N);
    for (int i = 0; i < n; ++i) {
      const auto pv = hn::Set(d, p[i]);
      const uint8_t* vi = v + i * stride;
      a0 = hn::MulAdd(pv, Row::Load(d, vi, x0), a0);
      a1 = hn::MulAdd(pv, Row::Load(d, vi, x0 + N), a1);
      a2 = hn::MulAdd(pv, Row::Load(d, vi, x0 + 2 * N), a2);
      a3 = hn::MulAdd(pv, Row::Load(d, vi, x0 + 3 * N), a3);
    }
    hn::StoreU(a0, d, out + x0);
    hn::StoreU(a1, d, out + x0 + N);
    hn::StoreU(a2, d, out + x0 + 2 * N);
    hn::StoreU(a3, d, out + x0 + 3 * N);
  }
  for (; x0 < hd; x0 += N) {
    auto a = hn::LoadU(d, out + x0);
    for (int i = 0; i < n; ++i) a = hn::MulAdd(hn::Set(d, p[i]), Row::Load(d, v + i * stride, x0), a);
    hn::StoreU(a, d, out + x0);
  }
}

// The same for M queries at once: out[t][i] = scale * dot(q[t], key row i). Each key is
// loaded once for all M, so prefill reads the cached keys once per block of tokens instead of
// once per token. Requires hd % Lanes == 0.
template <class Row, int M>
void LogitsBlockM(const float* const* q, const uint8_t* HWY_RESTRICT k, size_t stride, int n, int hd,
                  float scale, float* const* out) {
  const hn::ScalableTag<float> d;
  const int N = static_cast<int>(hn::Lanes(d));
  for (int i = 0; i < n; ++i) {
    const uint8_t* ki = k + i * stride;
    hn::Vec<decltype(d)> acc[M];
    for (int t = 0; t < M; ++t) acc[t] = hn::Zero(d);
    for (int x = 0; x < hd; x += N) {
      const auto kv = Row::Load(d, ki, x);
      for (int t = 0; t < M; ++t) acc[t] = hn::MulAdd(hn::LoadU(d, q[t] + x), kv, acc[t]);
    }
    for (int t = 0; t < M; ++t) out[t][i] = hn::GetLane(hn::SumOfLanes(d, acc[t])) * scale;
  }
}

template <class Row>
void LogitsBlockT(const float* const* q, int m, const uint8_t* HWY_RESTRICT k, size_t stride, int n,
                  int hd, float scale, float* const* out) {
  const int N = static_cast<int>(hn::Lanes(hn::ScalableTag<float>()));
  if (hd % N != 0 || m == 1) {
    for (int t = 0; t < m; ++t) Logits<Row>(q[t], k, stride, n, hd, scale, out[t]);
    return;
  }
  switch (m) {
    case 2: return LogitsBlockM<Row, 2>(q, k, stride, n, hd, scale, out);
    case 3: return LogitsBlockM<Row, 3>(q, k, stride, n, hd, scale, out);
    default: return LogitsBlockM<Row, 4>(q, k, stride, n, hd, scale, out);
  }
}

// out[t] += sum_i p[t][i] * value row i for M rows at once: each value row is loaded once.
template <class Row, int M>
void AddScaledBlockM(const float* const* p, const uint8_t* HWY_RESTRICT v, size_t stride, int n, int hd,
                     float* const* out) {
  const hn::ScalableTag<float> d;
  const int N = static_cast<int>(hn::Lanes(d));
  for (int x0 = 0; x0 < hd; x0 += 2 * N) {
    const bool two = x0 + 2 * N <= hd;
    hn::Vec<decltype(d)> a[M], b[M];
    for (int t = 0; t < M; ++t) {
      a[t] = hn::LoadU(d, out[t] + x0);
      b[t] = two ? hn::LoadU(d, out[t] + x0 + N) : hn::Zero(d);
    }
    for (int i = 0; i < n; ++i) {
      const uint8_t* vi = v + i * stride;
      const auto v0 = Row::Load(d, vi, x0);
      const auto v1 = two ? Row::Load(d, vi, x0 + N) : hn::Zero(d);
      for (int t = 0; t < M; ++t) {
        const auto pv = hn::Set(d, p[t][i]);
        a[t] = hn::MulAdd(pv, v0, a[t]);
        b[t] = hn::MulAdd(pv, v1, b[t]);
      }
    }
    for (int t = 0; t < M; ++t) {
      hn::StoreU(a[t], d, out[t] + x0);
      if (two) hn::StoreU(b[t], d, out[t] + x0 + N);
    }
  }
}

template <class Row>
void AddScaledBlockT(const float* const* p, int m, const uint8_t* HWY_RESTRICT v, size_t stride, int n,
                     int hd, float* const* out) {
  const int N = static_cast<int>(hn::Lanes(hn::ScalableTag<float>()));
  if (hd % N != 0 || m == 1) {
    for (int t = 0; t < m; ++t) AddScaled<Row>(p[t], v, stride, n, hd, out[t]);
    return;
  }
  switch (m) {
    case 2: return AddScaledBlockM<Row, 2>(p, v, stride, n, hd, out);
    case 3: return AddScaledBlockM<Row, 3>(p, v, stride, n, hd, out);
    default: return AddScaledBlockM<Row, 4>(p, v, stride, n, hd, out);
  }
}

// The exported kernels: the row format is chosen once per call (per segment), outside the loops.
void LogitsBlock(KvType type, const float* const* q, int m, const uint8_t* k, size_t stride, int n,
                 int hd, float scale, float* const* out) {
  switch (type) {
    case KvType::kF16: return LogitsBlockT<F16Row>(q, m, k, stride, n, hd, scale, out);
    case KvType::kQ8_0: return LogitsBlockT<Q8_0Row>(q, m, k, stride, n, hd, scale, out);
    case KvType::kF32: break;
  }
  LogitsBlockT<F32Row>(q, m, k, stride, n, hd, scale, out);
}

void AddScaledBlock(KvType type, const float* const* p, int m, const uint8_t* v, size_t stride,
                    int n, int hd, float* const* out) {
  switch (type) {
    case KvType::kF16: return AddScaledBlockT<F16Row>(p, m, v, stride, n, hd, out);
    case KvType::kQ8_0: return AddScaledBlockT<Q8_0Row>(p, m, v, stride, n, hd, out);
    case KvType::kF32: break;
  }
  AddScaledBlockT<F32Row>(p, m, v, stride, n, hd, out);
}

// The chunk's own keys and values are f32, heads interleaved: `stride` floats apart.
void LogitsF32(const float* q, const float* k, size_t stride, int n, int hd, float scale,
               float* out) {
  Logits<F32Row>(q, reinterpret_cast<const uint8_t*>(k), stride * sizeof(float), n, hd, scale, out);
}

void AddScaledF32(const float* p, const float* v, size_t stride, int n, int hd, float* out) {
  AddScaled<F32Row>(p, reinterpret_cast<const uint8_t*>(v), stride * sizeof(float), n, hd, out);
}

float RowMax(const float* HWY_RESTRICT x, int n) {
  const hn::ScalableTag<float> d;
  const int N = static_cast<int>(hn::Lanes(d));
  float m = -HUGE_VALF;
  int i = 0;
  if (n >= N) {
    auto mv = hn::Set(d, -HUGE_VALF);
    for (; i + N <= n; i += N) mv = hn::Max(mv, hn::LoadU(d, x + i));
    m = hn::GetLane(hn::MaxOfLanes(d, mv));
  }
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

// x = exp(x - max), returns the sum. Masked entries (-inf) become 0.
float ExpRow(float* HWY_RESTRICT x, int n, float max) {
  const hn::ScalableTag<float> d;
  const int N = static_cast<int>(hn::Lanes(d));
  const auto mv = hn::Set(d, max);
  auto sv = hn::Zero(d);
  int i = 0;
  for (; i + N <= n; i += N) {
    const auto e = hn::Exp(d, hn::Sub(hn::LoadU(d, x + i), mv));
    hn::StoreU(e, d, x + i);
    sv = hn::Add(sv, e);
  }
  float s = hn::GetLane(hn::SumOfLanes(d, sv));
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    s += x[i];
  }
  return s;
}

}  // namespace HWY_NAMESPACE
}  // namespace kvc
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <algorithm>
#include <cmath>
#include <vector>

#include "base/error.h"
#include "ops/attention.h"

namespace kvc {

HWY_EXPORT(LogitsF32);
HWY_EXPORT(AddScaledF32);
HWY_EXPORT(LogitsBlock);
HWY_EXPORT(AddScaledBlock);
HWY_EXPORT(RowMax);
HWY_EXPORT(ExpRow);

namespace {

void check(const AttentionArgs& a) {
  if (a.n_tokens <= 0 || a.n_q_heads <= 0 || a.n_kv_heads <= 0 || a.head_dim <= 0 ||
      a.n_q_heads % a.n_kv_heads != 0)
    fail("attention: bad shape ({} tokens, {} q heads, {} kv heads, head_dim {})", a.n_tokens,
         a.n_q_heads, a.n_kv_heads, a.head_dim);
  if (!a.q || !a.k_chunk || !a.v_chunk || !a.out) fail("attention: missing q, chunk k/v or out");
  if (a.view && a.view->n_segments > 0 && a.view->n_heads != a.n_kv_heads)
    fail("attention: view has {} heads, expected {}", a.view->n_heads, a.n_kv_heads);
}

// Weight of query j of an n-token chunk in the EMA; beta = 1 is a plain sum.
std::vector<float> ema_weights(int n, float beta) {
  std::vector<float> w(n);
  for (int j = 0; j < n; ++j)
    w[j] = beta >= 1.0f ? 1.0f
                        : static_cast<float>((1.0 - beta) * std::pow(static_cast<double>(beta), n - 1 - j));
  return w;
}

float softcap(float x, float cap) { return cap * std::tanh(x / cap); }

void parallel(ThreadPool* pool, int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (pool && pool->size() > 1 && n > 1)
    pool->parallel_for(n, fn);
  else
    fn(0, n);
}

}  // namespace

void attention(const AttentionArgs& a) {
  check(a);
  const int n = a.n_tokens, nq = a.n_q_heads, nkv = a.n_kv_heads, hd = a.head_dim;
  const int group = nq / nkv;
  const int S = a.view ? a.view->n_segments : 0;
  const size_t chunk_stride = static_cast<size_t>(nkv) * hd;

  // Row layout per KV head: the segments one after the other, then the chunk's n keys.
  std::vector<int> seg_begin(static_cast<size_t>(nkv) * (S + 1));
  int L = 0;
  for (int g = 0; g < nkv; ++g) {
    int off = 0;
    for (int s = 0; s < S; ++s) {
      seg_begin[g * (S + 1) + s] = off;
      off += a.view->at(g, s).n;
    }
    seg_begin[g * (S + 1) + S] = off;
    L = std::max(L, off + n);
  }

  // Queries rotated once per (segment, token): slot S is the chunk itself (offset 0).
  // All heads share one sin/cos table when the segment's offset is the same for every KV head.
  // Scratch lives with the calling thread; workers reach it through these pointers.
  thread_local std::vector<float> qrot_buf, rows_buf;
  const size_t q_token = static_cast<size_t>(nq) * hd;
  qrot_buf.resize(static_cast<size_t>(S + 1) * n * q_token);
  float* const qrot = qrot_buf.data();
  parallel(a.pool, static_cast<int64_t>(S + 1) * n, [&](int64_t b, int64_t e) {
    for (int64_t item = b; item < e; ++item) {
      const int s = static_cast<int>(item / n), j = static_cast<int>(item % n);
      float* dst = qrot + item * q_token;
      const float* src = a.q + j * q_token;
      const int64_t qpos = a.q_pos0 + j;
      bool any = s == S, same = true;
      for (int g = 0; g < nkv && s < S; ++g) {
        any |= a.view->at(g, s).n > 0;
        same &= a.view->at(g, s).pos_offset == a.view->at(0, s).pos_offset;
      }
      if (!any) continue;
      std::copy(src, src + q_token, dst);
      if (!a.rope) continue;
      if (s == S || same) {
        a.rope->apply_heads(dst, nq, qpos - (s == S ? 0 : a.view->at(0, s).pos_offset));
      } else {
        for (int g = 0; g < nkv; ++g)
          a.rope->apply_heads(dst + static_cast<size_t>(g) * group * hd, group,
                              qpos - a.view->at(g, s).pos_offset);
      }
    }
  });

  const std::vector<float> w = a.want_mass ? ema_weights(n, a.beta) : std::vector<float>();
  if (a.want_mass && a.chunk_mass) std::fill(a.chunk_mass, a.chunk_mass + static_cast<size_t>(nkv) * n, 0.0f);

  // Tokens are processed in blocks so that the probability rows stay within ~16 MB.
  const size_t row_floats = static_cast<size_t>(nq) * L;
  const int block = static_cast<int>(std::clamp<size_t>((size_t{1} << 22) / row_floats, 1, n));
  rows_buf.resize(static_cast<size_t>(block) * row_floats);
  float* const rows = rows_buf.data();

  for (int j0 = 0; j0 < n; j0 += block) {
    if (a.cancel && a.cancel->load(std::memory_order_relaxed)) return;
    const int j1 = std::min(n, j0 + block);
    // Work items: up to kRows rows (token, query head) of one KV head that share its cached keys
    // and values, which are then read once for all of them: in prefill up to kRows consecutive
    // tokens of one query head; in decode (one token) up to kRows query heads of one group (GQA:
    // 3 share a KV head in SmolLM2, 4 in Gemma 3). Decode reads the cache at memory speed, so
    // one item per KV head beats splitting a group's heads over threads that would each read it
    // (Gemma's one KV head: 3.1x less CPU time at 2,112 slots, bench/cache_bench.cc). The
    // chunk's own keys differ per token (causal) and go row by row.
    constexpr int kRows = 4;
    const int head_block = j1 - j0 == 1 ? std::min(group, kRows) : 1;
    const int token_block = head_block > 1 ? 1 : kRows;
    const int head_blocks = (group + head_block - 1) / head_block;
    const int token_groups = (j1 - j0 + token_block - 1) / token_block;
    const int64_t items = static_cast<int64_t>(token_groups) * nkv * head_blocks;
    parallel(a.pool, items, [&](int64_t b, int64_t e) {
      for (int64_t item = b; item < e; ++item) {
        const int jb = j0 + static_cast<int>(item / (nkv * head_blocks)) * token_block;
        const int g = static_cast<int>(item / head_blocks % nkv);
        const int qh0 = g * group + static_cast<int>(item % head_blocks) * head_block;
        const int n_heads = std::min(head_block, (g + 1) * group - qh0);
        const int m = n_heads * std::min(token_block, j1 - jb);  // rows
        const int* begin = &seg_begin[g * (S + 1)];
        int tok[kRows], head[kRows];
        float* row[kRows];
        float* out[kRows];
        const float* qr[kRows];
        for (int r = 0; r < m; ++r) {
          tok[r] = jb + r / n_heads, head[r] = qh0 + r % n_heads;
          row[r] = rows + (static_cast<size_t>(tok[r] - j0) * nq + head[r]) * L;
          out[r] = a.out + tok[r] * q_token + head[r] * hd;
        }
        for (int s = 0; s < S; ++s) {
          const KvSegment& seg = a.view->at(g, s);
          if (seg.n == 0) continue;
          float* seg_row[kRows];
          for (int r = 0; r < m; ++r) {
            qr[r] = qrot + (static_cast<size_t>(s) * n + tok[r]) * q_token + head[r] * hd;
            seg_row[r] = row[r] + begin[s];
          }
          HWY_DYNAMIC_DISPATCH(LogitsBlock)(seg.k_type, qr, m, seg.k, kv_row_bytes(seg.k_type, hd),
                                            seg.n, hd, a.scale, seg_row);
          if (a.window > 0 && seg.pos)
            for (int r = 0; r < m; ++r)
              for (int i = 0; i < seg.n; ++i)
                if (a.q_pos0 + tok[r] - seg.pos[i] >= a.window) seg_row[r][i] = -HUGE_VALF;
        }
        // The chunk's keys [0, jb] are visible to every row of the item; the rest row by row.
        const int shared = jb + 1;
        float* dst[kRows];
        const float* qc[kRows];
        for (int r = 0; r < m; ++r) {
          qc[r] = qrot + (static_cast<size_t>(S) * n + tok[r]) * q_token + head[r] * hd;
          dst[r] = row[r] + begin[S];
        }
        HWY_DYNAMIC_DISPATCH(LogitsBlock)(KvType::kF32, qc, m,
                                          reinterpret_cast<const uint8_t*>(a.k_chunk + g * hd),
                                          chunk_stride * sizeof(float), shared, hd, a.scale, dst);
        float inv[kRows];
        for (int r = 0; r < m; ++r) {
          const int j = tok[r];
          const int n_keys = begin[S] + j + 1;
          HWY_DYNAMIC_DISPATCH(LogitsF32)(qc[r], a.k_chunk + shared * chunk_stride + g * hd, chunk_stride,
                                       j + 1 - shared, hd, a.scale, dst[r] + shared);
          if (a.window > 0)
            for (int k = 0; k <= j - a.window; ++k) dst[r][k] = -HUGE_VALF;
          if (a.softcap > 0.0f)
            for (int i = 0; i < n_keys; ++i)
              if (row[r][i] != -HUGE_VALF) row[r][i] = softcap(row[r][i], a.softcap);
          const float mx = HWY_DYNAMIC_DISPATCH(RowMax)(row[r], n_keys);
          inv[r] = 1.0f / HWY_DYNAMIC_DISPATCH(ExpRow)(row[r], n_keys, mx);
          std::fill(out[r], out[r] + hd, 0.0f);
        }
        const float* p[kRows];
        for (int s = 0; s < S; ++s) {
          const KvSegment& seg = a.view->at(g, s);
          if (seg.n == 0) continue;
          for (int r = 0; r < m; ++r) p[r] = row[r] + begin[s];
          HWY_DYNAMIC_DISPATCH(AddScaledBlock)(seg.v_type, p, m, seg.v, kv_row_bytes(seg.v_type, hd),
                                               seg.n, hd, out);
        }
        for (int r = 0; r < m; ++r) p[r] = dst[r];
        HWY_DYNAMIC_DISPATCH(AddScaledBlock)(KvType::kF32, p, m,
                                             reinterpret_cast<const uint8_t*>(a.v_chunk + g * hd),
                                             chunk_stride * sizeof(float), shared, hd, out);
        for (int r = 0; r < m; ++r) {
          const int j = tok[r];
          HWY_DYNAMIC_DISPATCH(AddScaledF32)(dst[r] + shared, a.v_chunk + shared * chunk_stride + g * hd,
                                          chunk_stride, j + 1 - shared, hd, out[r]);
          for (int x = 0; x < hd; ++x) out[r][x] *= inv[r];
          if (a.want_mass)
            for (int i = 0, n_keys = begin[S] + j + 1; i < n_keys; ++i) row[r][i] *= inv[r];
        }
      }
    });
    if (!a.want_mass) continue;

    // Reduce the block's probabilities into the slots: split over (KV head, run of 64 columns).
    constexpr int kRun = 64;
    const int runs = (L + kRun - 1) / kRun;
    parallel(a.pool, static_cast<int64_t>(nkv) * runs, [&](int64_t b, int64_t e) {
      for (int64_t item = b; item < e; ++item) {
        const int g = static_cast<int>(item / runs);
        const int* begin = &seg_begin[g * (S + 1)];
        const int c0 = static_cast<int>(item % runs) * kRun;
        const int c1 = std::min(begin[S] + n, c0 + kRun);
        // Loops run along the columns (contiguous in every probability row) so they vectorize;
        // the sums are taken in the same order as a column-by-column loop would.
        float total[kRun] = {};
        float r[kRun];
        for (int j = j0; j < j1; ++j) {
          const int c_end = std::min(c1, begin[S] + j + 1);  // causal: no later chunk key
          if (c_end <= c0) continue;
          const float* p = rows + (static_cast<size_t>(j - j0) * nq + g * group) * L;
          const int m = c_end - c0;
          for (int i = 0; i < m; ++i) r[i] = p[c0 + i];
          for (int h = 1; h < group; ++h) {
            const float* ph = p + static_cast<size_t>(h) * L + c0;
            if (a.mass_max)
              for (int i = 0; i < m; ++i) r[i] = std::max(r[i], ph[i]);
            else
              for (int i = 0; i < m; ++i) r[i] += ph[i];
          }
          const float wj = w[j];
          if (a.mass_max)
            for (int i = 0; i < m; ++i) total[i] += wj * r[i];
          else
            for (int i = 0; i < m; ++i) total[i] += wj * (r[i] / group);
        }
        // Into the cached slots a run per segment (begin[s + 1] ends segment s; empty ones are
        // skipped), then into the chunk's own tokens.
        const int cached_end = std::min(c1, begin[S]);
        for (int c = c0, s = 0; c < cached_end;) {
          while (begin[s + 1] <= c) ++s;
          const int end = std::min(cached_end, begin[s + 1]);
          if (float* mass = a.view->at(g, s).mass)
            for (int x = c; x < end; ++x) mass[x - begin[s]] += total[x - c0];
          c = end;
        }
        if (a.chunk_mass)
          for (int c = std::max(c0, begin[S]); c < c1; ++c)
            a.chunk_mass[static_cast<size_t>(g) * n + (c - begin[S])] += total[c - c0];
      }
    });
  }
}

void attention_reference(const AttentionArgs& a) {
  check(a);
  const int n = a.n_tokens, nq = a.n_q_heads, nkv = a.n_kv_heads, hd = a.head_dim;
  const int group = nq / nkv;
  const int S = a.view ? a.view->n_segments : 0;
  const std::vector<float> w = ema_weights(n, a.beta);
  if (a.want_mass && a.chunk_mass) std::fill(a.chunk_mass, a.chunk_mass + static_cast<size_t>(nkv) * n, 0.0f);

  // The cached keys and values decoded to f32 once, the way the storage codec defines them.
  std::vector<std::vector<float>> keys(static_cast<size_t>(nkv) * S), values_f32(keys.size());
  for (int g = 0; g < nkv; ++g)
    for (int s = 0; s < S; ++s) {
      const KvSegment& seg = a.view->at(g, s);
      std::vector<float>& k = keys[static_cast<size_t>(g) * S + s];
      std::vector<float>& v = values_f32[static_cast<size_t>(g) * S + s];
      k.resize(static_cast<size_t>(seg.n) * hd), v.resize(k.size());
      for (int i = 0; i < seg.n; ++i) {
        kv_decode_row(seg.k_type, seg.k + i * kv_row_bytes(seg.k_type, hd), hd, &k[static_cast<size_t>(i) * hd]);
        kv_decode_row(seg.v_type, seg.v + i * kv_row_bytes(seg.v_type, hd), hd, &v[static_cast<size_t>(i) * hd]);
      }
    }
  // Probabilities per [token][query head][key]; keys: every segment slot, then the chunk.
  std::vector<std::vector<std::vector<double>>> prob(n, std::vector<std::vector<double>>(nq));
  for (int j = 0; j < n; ++j) {
    const int64_t qpos = a.q_pos0 + j;
    for (int qh = 0; qh < nq; ++qh) {
      const int g = qh / group;
      const float* q = a.q + (static_cast<size_t>(j) * nq + qh) * hd;
      std::vector<double> logit;
      std::vector<const float*> values;
      auto add_key = [&](const float* qr, const float* k, const float* v, bool masked) {
        double dot = 0;
        for (int x = 0; x < hd; ++x) dot += static_cast<double>(qr[x]) * k[x];
        double l = dot * a.scale;
        if (a.softcap > 0.0f) l = a.softcap * std::tanh(l / a.softcap);
        logit.push_back(masked ? -INFINITY : l);
        values.push_back(v);
      };
      std::vector<float> qr(q, q + hd);
      for (int s = 0; s < S; ++s) {
        const KvSegment& seg = a.view->at(g, s);
        std::copy(q, q + hd, qr.begin());
        if (a.rope) a.rope->apply(qr.data(), qpos - seg.pos_offset);
        const float* k = keys[static_cast<size_t>(g) * S + s].data();
        const float* v = values_f32[static_cast<size_t>(g) * S + s].data();
        for (int i = 0; i < seg.n; ++i)
          add_key(qr.data(), k + static_cast<size_t>(i) * hd, v + static_cast<size_t>(i) * hd,
                  a.window > 0 && seg.pos && qpos - seg.pos[i] >= a.window);
      }
      std::copy(q, q + hd, qr.begin());
      if (a.rope) a.rope->apply(qr.data(), qpos);
      for (int k = 0; k <= j; ++k) {
        const size_t at = (static_cast<size_t>(k) * nkv + g) * hd;
        add_key(qr.data(), a.k_chunk + at, a.v_chunk + at, a.window > 0 && j - k >= a.window);
      }
      double m = -INFINITY, sum = 0;
      for (double l : logit) m = std::max(m, l);
      std::vector<double>& p = prob[j][qh];
      for (double l : logit) p.push_back(std::exp(l - m)), sum += p.back();
      std::vector<double> o(hd, 0.0);
      for (size_t i = 0; i < p.size(); ++i) {
        p[i] /= sum;
        for (int x = 0; x < hd; ++x) o[x] += p[i] * values[i][x];
      }
      float* out = a.out + (static_cast<size_t>(j) * nq + qh) * hd;
      for (int x = 0; x < hd; ++x) out[x] = static_cast<float>(o[x]);
    }
  }
  if (!a.want_mass) return;
  for (int g = 0; g < nkv; ++g) {
    for (int j = 0; j < n; ++j) {
      auto reduced = [&](size_t i) {
        double r = 0;
        for (int h = g * group; h < (g + 1) * group; ++h)
          r = a.mass_max ? std::max(r, prob[j][h][i]) : r + prob[j][h][i] / group;
        return static_cast<float>(w[j] * r);
      };
      size_t i = 0;
      for (int s = 0; s < S; ++s) {
        const KvSegment& seg = a.view->at(g, s);
        for (int k = 0; k < seg.n; ++k, ++i)
          if (seg.mass) seg.mass[k] += reduced(i);
      }
      for (int k = 0; k <= j; ++k, ++i)
        if (a.chunk_mass) a.chunk_mass[static_cast<size_t>(g) * n + k] += reduced(i);
    }
  }
}

}  // namespace kvc
#endif  // HWY_ONCE
