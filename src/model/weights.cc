#include "model/weights.h"

#include <cmath>

#include <fmt/format.h>

#include "base/error.h"
#include "gguf/gguf_file.h"
#include "quant/quant.h"

namespace kvc {

size_t ModelWeights::matrix_bytes() const {
  size_t total = token_embd.rows * token_embd.row_bytes;
  if (output.data != token_embd.data) total += output.rows * output.row_bytes;
  for (const LayerWeights& l : layers)
    for (const WeightMatrix* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.gate, &l.up, &l.down})
      total += m->rows * m->row_bytes;
  return total;
}

size_t ModelWeights::decode_read_bytes() const {
  size_t total = output.rows * output.row_bytes + token_embd.row_bytes;
  for (const LayerWeights& l : layers)
    for (const WeightMatrix* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.gate, &l.up, &l.down})
      total += m->rows * m->row_bytes;
  return total;
}

namespace {

class Binder {
 public:
  Binder(const GgufFile& file, ModelWeights& w) : file_(file), w_(w) {}

  WeightMatrix matrix(const std::string& name, int64_t cols, int64_t rows) {
    const GgufTensor& t = file_.require_tensor(name);
    if (t.dims.size() != 2 || t.dims[0] != cols || t.dims[1] != rows)
      fail("tensor '{}' has shape {}, expected [{}, {}]", name, shape(t), cols, rows);
    WeightMatrix m;
    m.type = t.type;
    m.data = t.data;
    m.rows = rows;
    m.cols = cols;
    m.row_bytes = quant::row_bytes(t.type, cols);
    return m;
  }

  const float* vector(const std::string& name, int64_t n, bool required = true) {
    const GgufTensor* t = file_.tensor(name);
    if (!t) {
      if (required) fail("missing tensor '{}'", name);
      return nullptr;
    }
    if (t->n_elements != n) fail("tensor '{}' has {} elements, expected {}", name, t->n_elements, n);
    const float* v = nullptr;
    if (t->type == GgmlType::F32 && reinterpret_cast<uintptr_t>(t->data) % alignof(float) == 0) {
      v = reinterpret_cast<const float*>(t->data);
    } else {
      std::vector<float>& out = w_.converted.emplace_back(n);
      quant::dequantize_row(t->type, t->data, out.data(), n);
      v = out.data();
    }
    // Norms and biases are small: checking them costs nothing, and one NaN in them makes every
    // logit NaN.
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(v[i])) fail("tensor '{}' holds {} at element {}", name, v[i], i);
    return v;
  }

 private:
  static std::string shape(const GgufTensor& t) {
    return fmt::format("[{}]", fmt::join(t.dims, ", "));
  }
  const GgufFile& file_;
  ModelWeights& w_;
};

}  // namespace

ModelWeights bind_weights(const GgufFile& file, ModelConfig& c) {
  ModelWeights w;
  Binder b(file, w);
  const int64_t q_dim = static_cast<int64_t>(c.n_heads) * c.head_dim;
  const int64_t kv_dim = static_cast<int64_t>(c.n_kv_heads) * c.head_dim;

  w.token_embd = b.matrix("token_embd.weight", c.n_embd, c.vocab_size);
  w.output_norm = b.vector("output_norm.weight", c.n_embd);
  w.output = c.tied_embeddings ? w.token_embd : b.matrix("output.weight", c.n_embd, c.vocab_size);

  if (const GgufTensor* f = file.tensor("rope_freqs.weight")) {
    if (f->n_elements != c.rope_dims / 2)
      fail("rope_freqs.weight has {} elements, expected {}", f->n_elements, c.rope_dims / 2);
    const float* factors = b.vector("rope_freqs.weight", c.rope_dims / 2);
    for (int i = 0; i < c.rope_dims / 2; ++i)  // frequencies are divided by them
      if (!(factors[i] > 0)) fail("rope_freqs.weight holds {} at element {}", factors[i], i);
    c.rope_scaling.freq_factors.assign(factors, factors + c.rope_dims / 2);
  }

  w.layers.resize(c.n_layers);
  for (int l = 0; l < c.n_layers; ++l) {
    LayerWeights& L = w.layers[l];
    auto name = [l](const char* what) { return fmt::format("blk.{}.{}", l, what); };
    L.attn_norm = b.vector(name("attn_norm.weight"), c.n_embd);
    L.wq = b.matrix(name("attn_q.weight"), c.n_embd, q_dim);
    L.wk = b.matrix(name("attn_k.weight"), c.n_embd, kv_dim);
    L.wv = b.matrix(name("attn_v.weight"), c.n_embd, kv_dim);
    L.wo = b.matrix(name("attn_output.weight"), q_dim, c.n_embd);
    L.ffn_norm = b.vector(name("ffn_norm.weight"), c.n_embd);
    L.gate = b.matrix(name("ffn_gate.weight"), c.n_embd, c.n_ff);
    L.up = b.matrix(name("ffn_up.weight"), c.n_embd, c.n_ff);
    L.down = b.matrix(name("ffn_down.weight"), c.n_ff, c.n_embd);
    if (c.arch == Arch::Qwen2 || file.tensor(name("attn_q.bias"))) {
      L.bq = b.vector(name("attn_q.bias"), q_dim);
      L.bk = b.vector(name("attn_k.bias"), kv_dim);
      L.bv = b.vector(name("attn_v.bias"), kv_dim);
    }
    if (c.arch == Arch::Gemma3) {
      L.q_norm = b.vector(name("attn_q_norm.weight"), c.head_dim);
      L.k_norm = b.vector(name("attn_k_norm.weight"), c.head_dim);
      L.post_attn_norm = b.vector(name("post_attention_norm.weight"), c.n_embd);
      L.post_ffn_norm = b.vector(name("post_ffw_norm.weight"), c.n_embd);
    }
  }
  return w;
}

}  // namespace kvc
