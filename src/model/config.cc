#include "model/config.h"

#include <cmath>

#include "base/error.h"
#include "gguf/gguf_file.h"

namespace kvc {

int ModelConfig::n_local_layers() const {
  int n = 0;
  for (bool local : layer_is_local) n += local;
  return n;
}

size_t ModelConfig::kv_bytes_per_token_global() const {
  return static_cast<size_t>(n_layers - n_local_layers()) * n_kv_heads * head_dim * 2 *
         sizeof(float);
}

const char* arch_label(Arch arch) {
  switch (arch) {
    case Arch::Llama: return "llama";
    case Arch::Qwen2: return "qwen2";
    case Arch::Gemma3: return "gemma3";
  }
  return "?";
}

namespace {

int positive_int(const GgufFile& f, const std::string& key) {
  const int64_t v = f.get_int(key);
  if (v <= 0 || v > (1 << 24)) fail("{} = {} is out of range", key, v);
  return static_cast<int>(v);
}

}  // namespace

ModelConfig read_config(const GgufFile& f) {
  ModelConfig c;
  c.arch_name = f.get_string("general.architecture");
  const std::string& a = c.arch_name;
  if (a == "llama" || a == "mistral") {
    c.arch = Arch::Llama;
  } else if (a == "qwen2") {
    c.arch = Arch::Qwen2;
  } else if (a == "gemma3") {
    c.arch = Arch::Gemma3;
  } else {
    fail("architecture '{}' is not supported (supported: llama, mistral, qwen2, gemma3)", a);
  }
  c.name = f.find_string("general.name").value_or(a);

  c.n_layers = positive_int(f, a + ".block_count");
  c.n_embd = positive_int(f, a + ".embedding_length");
  c.n_ff = positive_int(f, a + ".feed_forward_length");
  c.n_heads = positive_int(f, a + ".attention.head_count");
  c.n_kv_heads = f.find_int(a + ".attention.head_count_kv") ? positive_int(f, a + ".attention.head_count_kv")
                                                           : c.n_heads;
  if (c.n_heads % c.n_kv_heads != 0)
    fail("{} query heads cannot be grouped over {} KV heads", c.n_heads, c.n_kv_heads);
  c.head_dim = f.find_int(a + ".attention.key_length") ? positive_int(f, a + ".attention.key_length")
                                                        : c.n_embd / c.n_heads;
  if (const auto vlen = f.find_int(a + ".attention.value_length"); vlen && *vlen != c.head_dim)
    fail("key length {} != value length {} is not supported", c.head_dim, *vlen);
  c.context_length = f.find_int(a + ".context_length").value_or(4096);
  c.rms_eps = static_cast<float>(f.get_float(a + ".attention.layer_norm_rms_epsilon"));

  c.rope_dims = f.find_int(a + ".rope.dimension_count")
                    ? positive_int(f, a + ".rope.dimension_count")
                    : c.head_dim;
  if (c.rope_dims > c.head_dim || c.rope_dims % 2 != 0)
    fail("rope dimension count {} does not fit head size {}", c.rope_dims, c.head_dim);
  c.rope_base = f.find_float(a + ".rope.freq_base").value_or(10000.0);
  c.rope_base_local = f.find_float(a + ".rope.freq_base_swa").value_or(10000.0);
  if (const auto type = f.find_string(a + ".rope.scaling.type"); type && *type != "none") {
    if (*type != "linear")
      fail("RoPE scaling '{}' is not supported (supported: none, linear)", *type);
    c.rope_scaling.linear_factor = static_cast<float>(f.get_float(a + ".rope.scaling.factor"));
    if (!(c.rope_scaling.linear_factor > 0)) fail("rope scaling factor must be positive");
  }
  c.rope_style = c.arch == Arch::Llama ? RopeStyle::Norm : RopeStyle::Neox;

  c.layer_is_local.assign(c.n_layers, false);
  if (c.arch == Arch::Gemma3) {
    // Five local (sliding-window) layers to one global, as Gemma 3 is trained.
    c.sliding_window = static_cast<int>(f.find_int(a + ".attention.sliding_window").value_or(0));
    if (c.sliding_window > 0)
      for (int l = 0; l < c.n_layers; ++l) c.layer_is_local[l] = (l % 6) < 5;
    c.embd_scale = std::sqrt(static_cast<float>(c.n_embd));
    c.final_softcap = static_cast<float>(f.find_float(a + ".final_logit_softcapping").value_or(0.0));
  }
  c.attn_scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));

  const GgufTensor& embd = f.require_tensor("token_embd.weight");
  if (embd.dims.size() != 2 || embd.dims[0] != c.n_embd)
    fail("token_embd.weight has the wrong shape for embedding length {}", c.n_embd);
  c.vocab_size = static_cast<int>(embd.dims[1]);
  c.tied_embeddings = f.tensor("output.weight") == nullptr;
  return c;
}

}  // namespace kvc
