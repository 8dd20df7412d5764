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

// Bounds far above any real model. Counts and sizes stay below 2^24, so the product of two fits
// in int64 and a tensor row in int; positions (context, window) stay below 2^30, inside int
// with room to add.
constexpr int64_t kMaxSize = int64_t{1} << 24;
constexpr int64_t kMaxPositions = int64_t{1} << 30;

int int_in(const std::string& key, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi) fail("{} = {} is out of range ({} to {})", key, v, lo, hi);
  return static_cast<int>(v);
}

int positive_int(const GgufFile& f, const std::string& key) {
  return int_in(key, f.get_int(key), 1, kMaxSize);
}

// A float that must be finite and above `lo` (and at most `hi`): NaN, Inf, zero or a negative
// epsilon or RoPE base would load fine and then produce nothing but garbage.
double finite_above(const std::string& key, double v, double lo, double hi, const char* what) {
  if (!(std::isfinite(v) && v > lo && v <= hi))
    fail("{} = {} is not a usable {} (must be finite, > {} and <= {})", key, v, what, lo, hi);
  return v;
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
  if (f.find_int(a + ".attention.key_length")) {
    c.head_dim = positive_int(f, a + ".attention.key_length");
  } else {
    if (c.n_embd % c.n_heads != 0)
      fail("embedding length {} does not split into {} heads", c.n_embd, c.n_heads);
    c.head_dim = c.n_embd / c.n_heads;
  }
  if (static_cast<int64_t>(c.n_heads) * c.head_dim > kMaxSize)
    fail("{} heads of {} dimensions are too many", c.n_heads, c.head_dim);
  if (const auto vlen = f.find_int(a + ".attention.value_length"); vlen && *vlen != c.head_dim)
    fail("key length {} != value length {} is not supported", c.head_dim, *vlen);
  c.context_length = int_in(a + ".context_length", f.find_int(a + ".context_length").value_or(4096),
                            1, kMaxPositions);
  const std::string eps_key = a + ".attention.layer_norm_rms_epsilon";
  c.rms_eps = static_cast<float>(f.get_float(eps_key));
  finite_above(eps_key, c.rms_eps, 0.0, 1.0, "RMS norm epsilon");  // checked as the float used

  c.rope_dims = f.find_int(a + ".rope.dimension_count")
                    ? positive_int(f, a + ".rope.dimension_count")
                    : c.head_dim;
  if (c.rope_dims > c.head_dim || c.rope_dims % 2 != 0)
    fail("rope dimension count {} does not fit head size {}", c.rope_dims, c.head_dim);
  // A base <= 1 gives frequencies >= 1 (or NaN): every position looks alike.
  c.rope_base = finite_above(a + ".rope.freq_base",
                             f.find_float(a + ".rope.freq_base").value_or(10000.0), 1.0, 1e30,
                             "RoPE base");
  c.rope_base_local = finite_above(a + ".rope.freq_base_swa",
                                   f.find_float(a + ".rope.freq_base_swa").value_or(10000.0), 1.0,
                                   1e30, "RoPE base");
  if (const auto type = f.find_string(a + ".rope.scaling.type"); type && *type != "none") {
    if (*type != "linear")
      fail("RoPE scaling '{}' is not supported (supported: none, linear)", *type);
    const std::string key = a + ".rope.scaling.factor";
    c.rope_scaling.linear_factor = static_cast<float>(f.get_float(key));
    finite_above(key, c.rope_scaling.linear_factor, 0.0, 1e6, "RoPE scaling factor");
  }
  c.rope_style = c.arch == Arch::Llama ? RopeStyle::Norm : RopeStyle::Neox;

  c.layer_is_local.assign(c.n_layers, false);
  if (c.arch == Arch::Gemma3) {
    // Five local (sliding-window) layers to one global, as Gemma 3 is trained.
    // A window is a number of positions: at least 1 and no longer than the context (a longer
    // one only allocates memory that no position can use).
    const std::string window_key = a + ".attention.sliding_window";
    if (const auto w = f.find_int(window_key))
      c.sliding_window = int_in(window_key, *w, 1, c.context_length);
    if (c.sliding_window > 0)
      for (int l = 0; l < c.n_layers; ++l) c.layer_is_local[l] = (l % 6) < 5;
    c.embd_scale = std::sqrt(static_cast<float>(c.n_embd));
    const std::string cap_key = a + ".final_logit_softcapping";
    c.final_softcap = static_cast<float>(f.find_float(cap_key).value_or(0.0));
    if (c.final_softcap != 0.0f) finite_above(cap_key, c.final_softcap, 0.0, 1e30, "soft-cap");
  }
  c.attn_scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));

  const GgufTensor& embd = f.require_tensor("token_embd.weight");
  if (embd.dims.size() != 2 || embd.dims[0] != c.n_embd)
    fail("token_embd.weight has the wrong shape for embedding length {}", c.n_embd);
  c.vocab_size = int_in("the row count of token_embd.weight", embd.dims[1], 1, kMaxSize);
  c.tied_embeddings = f.tensor("output.weight") == nullptr;
  return c;
}

}  // namespace kvc
