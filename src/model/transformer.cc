#include "model/transformer.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "base/cancelled.h"
#include "base/error.h"
#include "ops/attention.h"
#include "ops/elementwise.h"
#include "quant/quant.h"

namespace kvc {

void ForwardScratch::reserve(const ModelConfig& c, int n) {
  if (n <= capacity) return;
  capacity = n;
  const size_t q_dim = static_cast<size_t>(c.n_heads) * c.head_dim;
  const size_t kv_dim = static_cast<size_t>(c.n_kv_heads) * c.head_dim;
  x.resize(n * c.n_embd);
  xb.resize(n * std::max<size_t>(c.n_embd, q_dim));
  q.resize(n * q_dim);
  k.resize(n * kv_dim);
  v.resize(n * kv_dim);
  att.resize(n * q_dim);
  ffn_gate.resize(static_cast<size_t>(n) * c.n_ff);
  ffn_up.resize(static_cast<size_t>(n) * c.n_ff);
  chunk_mass.resize(static_cast<size_t>(n) * c.n_kv_heads);
}

Transformer::Transformer(const ModelConfig& config, const ModelWeights& weights)
    : config_(config), weights_(weights) {
  ropes_.reserve(config.n_layers);
  for (int l = 0; l < config.n_layers; ++l) {
    const bool local = config.layer_is_local[l];
    ropes_.emplace_back(config.rope_style, config.head_dim, config.rope_dims,
                        local ? config.rope_base_local : config.rope_base,
                        local ? RopeScaling{} : config.rope_scaling);
  }
}

std::vector<std::unique_ptr<LayerKvCache>> Transformer::make_caches(
    const CacheConfig& policy) const {
  const KvShape shape{config_.n_kv_heads, config_.head_dim};
  // The policy's layers are built together (they may share state), the local ones apart.
  std::vector<const KeyRotator*> global_rotators;
  for (int l = 0; l < config_.n_layers; ++l)
    if (!config_.layer_is_local[l]) global_rotators.push_back(&ropes_[l]);
  auto global = make_layer_caches(policy, shape, global_rotators);
  std::vector<std::unique_ptr<LayerKvCache>> caches;
  for (int l = 0, g = 0; l < config_.n_layers; ++l) {
    if (config_.layer_is_local[l])
      caches.push_back(
          make_native_window_cache(config_.sliding_window, with_storage(shape, policy), ropes_[l]));
    else
      caches.push_back(std::move(global[static_cast<size_t>(g++)]));
  }
  return caches;
}

uint64_t Transformer::kv_bytes(const CacheConfig& policy) const {
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  const KvShape shape = with_storage(KvShape{config_.n_kv_heads, config_.head_dim}, policy);
  const uint64_t per_slot = static_cast<uint64_t>(config_.n_kv_heads) *
                            (kv_row_bytes(shape.k_type, shape.head_dim) +
                             kv_row_bytes(shape.v_type, shape.head_dim));
  uint64_t total = 0;
  for (int l = 0; l < config_.n_layers; ++l) {
    const int64_t slots = config_.layer_is_local[l] ? config_.sliding_window : cache_slots(policy);
    uint64_t layer = 0;
    if (__builtin_mul_overflow(per_slot, static_cast<uint64_t>(std::max<int64_t>(slots, 0)), &layer) ||
        __builtin_add_overflow(total, layer, &total))
      return kMax;
  }
  return total;
}

void Transformer::forward(std::span<const int32_t> tokens, std::span<LayerKvCache* const> caches,
                          const CacheConfig& policy, ThreadPool& pool, ForwardScratch& s,
                          const std::atomic<bool>* cancel,
                          const SparseAttentionConfig* sparse) const {
  const ModelConfig& c = config_;
  const int n = static_cast<int>(tokens.size());
  if (n == 0) return;
  if (static_cast<int>(caches.size()) != c.n_layers) fail("forward: one cache per layer needed");
  for (int32_t id : tokens)
    if (id < 0 || id >= c.vocab_size) fail("token id {} is outside the vocabulary ({})", id, c.vocab_size);
  s.reserve(c, n);

  // Embeddings: dequantize the token's row, scale (Gemma).
  const WeightMatrix& e = weights_.token_embd;
  pool.parallel_for(n, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      float* x = s.x.data() + t * c.n_embd;
      quant::dequantize_row(e.type, e.data + tokens[t] * e.row_bytes, x, c.n_embd);
      if (c.embd_scale != 1.0f) scale_inplace(x, c.embd_scale, c.n_embd);
    }
  });

  const KvShape stored = with_storage(KvShape{c.n_kv_heads, c.head_dim}, policy);
  for (int l = 0; l < c.n_layers; ++l) {
    if (cancelled(cancel)) throw Cancelled();
    attention_block(l, tokens, *caches[l], policy, stored, pool, s, cancel, sparse);
    ffn_block(l, n, pool, s);
  }

  for (int t = 0; t < n; ++t) {
    float* x = s.x.data() + t * c.n_embd;
    rmsnorm(x, weights_.output_norm, x, c.n_embd, c.rms_eps);
  }
}

void Transformer::attention_block(int l, std::span<const int32_t> tokens, LayerKvCache& cache,
                                  const CacheConfig& policy, const KvShape& stored,
                                  ThreadPool& pool, ForwardScratch& s,
                                  const std::atomic<bool>* cancel,
                                  const SparseAttentionConfig* sparse) const {
  const ModelConfig& c = config_;
  const int n = static_cast<int>(tokens.size());
  const LayerWeights& L = weights_.layers[l];
  const int hd = c.head_dim;
  const int q_dim = c.n_heads * hd;
  const int kv_dim = c.n_kv_heads * hd;

  for (int t = 0; t < n; ++t)
    rmsnorm(&s.x[t * c.n_embd], L.attn_norm, &s.xb[t * c.n_embd], c.n_embd, c.rms_eps);

  const MatmulTask qkv[] = {{&L.wq, s.q.data(), q_dim},
                            {&L.wk, s.k.data(), kv_dim},
                            {&L.wv, s.v.data(), kv_dim}};
  matmul(qkv, s.xb.data(), n, pool, s.act);

  const int64_t pos0 = cache.next_position();
  const Rope& rope = ropes_[l];
  for (int t = 0; t < n; ++t) {
    float* q = &s.q[t * q_dim];
    float* k = &s.k[t * kv_dim];
    float* v = &s.v[t * kv_dim];
    if (L.bq) {
      add_inplace(q, L.bq, q_dim);
      add_inplace(k, L.bk, kv_dim);
      add_inplace(v, L.bv, kv_dim);
    }
    if (L.q_norm) {
      for (int h = 0; h < c.n_heads; ++h) rmsnorm(q + h * hd, L.q_norm, q + h * hd, hd, c.rms_eps);
      for (int h = 0; h < c.n_kv_heads; ++h) rmsnorm(k + h * hd, L.k_norm, k + h * hd, hd, c.rms_eps);
    }
    // Keys are rotated here, at their position in the cache; queries are rotated by attention,
    // once per cache segment (see cache/kv_cache.h).
    rope.apply_heads(k, c.n_kv_heads, pos0 + t);
  }
  // The chunk attends to its own keys and values as the cache stores them (llama.cpp writes the
  // cache first and reads it back): with f16 or q8_0 storage the stride then changes nothing.
  kv_round_rows(stored.k_type, s.k.data(), static_cast<int64_t>(n) * c.n_kv_heads, hd);
  kv_round_rows(stored.v_type, s.v.data(), static_cast<int64_t>(n) * c.n_kv_heads, hd);

  cache.view(s.view);
  AttentionArgs a;
  a.n_tokens = n;
  a.n_q_heads = c.n_heads;
  a.n_kv_heads = c.n_kv_heads;
  a.head_dim = hd;
  a.q = s.q.data();
  a.q_pos0 = pos0;
  a.rope = &rope;
  a.k_chunk = s.k.data();
  a.v_chunk = s.v.data();
  a.view = &s.view;
  a.scale = c.attn_scale;
  a.window = c.layer_is_local[l] ? c.sliding_window : 0;
  a.want_mass = cache.wants_mass();
  a.beta = cache.beta();
  a.mass_max = policy.head_reduction_max;
  a.chunk_mass = s.chunk_mass.data();
  a.out = s.att.data();
  a.pool = &pool;
  a.cancel = cancel;
  if (sparse && !c.layer_is_local[l]) {
    if (s.sparse.size() != static_cast<size_t>(c.n_layers)) s.sparse.resize(c.n_layers);
    sparse_attention(a, *sparse, s.sparse[l]);
  } else {
    attention(a);
  }
  if (cancelled(cancel)) throw Cancelled();  // unfinished attention must not enter the cache
  cache.commit(s.k.data(), s.v.data(), n, a.want_mass ? s.chunk_mass.data() : nullptr,
               tokens.data());

  const MatmulTask out[] = {{&L.wo, s.xb.data(), c.n_embd}};
  matmul(out, s.att.data(), n, pool, s.act);
  for (int t = 0; t < n; ++t) {
    float* o = &s.xb[t * c.n_embd];
    if (L.post_attn_norm) rmsnorm(o, L.post_attn_norm, o, c.n_embd, c.rms_eps);
    add_inplace(&s.x[t * c.n_embd], o, c.n_embd);
  }
}

void Transformer::ffn_block(int l, int n, ThreadPool& pool, ForwardScratch& s) const {
  const ModelConfig& c = config_;
  const LayerWeights& L = weights_.layers[l];
  for (int t = 0; t < n; ++t)
    rmsnorm(&s.x[t * c.n_embd], L.ffn_norm, &s.xb[t * c.n_embd], c.n_embd, c.rms_eps);
  const MatmulTask gate_up[] = {{&L.gate, s.ffn_gate.data(), c.n_ff},
                                {&L.up, s.ffn_up.data(), c.n_ff}};
  matmul(gate_up, s.xb.data(), n, pool, s.act);
  pool.parallel_for(static_cast<int64_t>(n) * c.n_ff, [&](int64_t i0, int64_t i1) {
    if (c.arch == Arch::Gemma3)
      geglu(&s.ffn_gate[i0], &s.ffn_up[i0], i1 - i0);
    else
      swiglu(&s.ffn_gate[i0], &s.ffn_up[i0], i1 - i0);
  }, 4096);
  const MatmulTask down[] = {{&L.down, s.xb.data(), c.n_embd}};
  matmul(down, s.ffn_gate.data(), n, pool, s.act);
  for (int t = 0; t < n; ++t) {
    float* o = &s.xb[t * c.n_embd];
    if (L.post_ffn_norm) rmsnorm(o, L.post_ffn_norm, o, c.n_embd, c.rms_eps);
    add_inplace(&s.x[t * c.n_embd], o, c.n_embd);
  }
}

void Transformer::logits(const ForwardScratch& s, int t0, int n, float* out, ThreadPool& pool,
                         ActivationScratch& act) const {
  const MatmulTask task[] = {{&weights_.output, out, config_.vocab_size}};
  matmul(task, s.x.data() + static_cast<size_t>(t0) * config_.n_embd, n, pool, act);
  if (config_.final_softcap > 0) {
    const float cap = config_.final_softcap;
    for (int64_t i = 0; i < static_cast<int64_t>(n) * config_.vocab_size; ++i)
      out[i] = cap * std::tanh(out[i] / cap);
  }
}

}  // namespace kvc
