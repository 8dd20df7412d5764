// Hyper-parameters of a model, read from GGUF metadata. Plain data: the forward pass reads it,
// `info` prints it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ops/rope.h"

namespace kvc {

class GgufFile;

enum class Arch { Llama, Qwen2, Gemma3 };

struct ModelConfig {
  Arch arch = Arch::Llama;
  std::string arch_name;      // as the file says: llama, mistral, qwen2, gemma3
  std::string name;           // general.name
  int n_layers = 0;
  int n_embd = 0;
  int n_ff = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;           // key/query/value head size
  int vocab_size = 0;
  int64_t context_length = 0; // trained context
  float rms_eps = 1e-5f;
  float attn_scale = 0.0f;    // multiplies q.k
  float embd_scale = 1.0f;    // multiplies token embeddings (Gemma: sqrt(n_embd))
  float final_softcap = 0.0f; // final logit soft-capping (0 = off)
  bool tied_embeddings = false;

  // RoPE: dimensions rotated, style, base per layer kind, scaling.
  int rope_dims = 0;
  RopeStyle rope_style = RopeStyle::Norm;
  double rope_base = 10000.0;
  double rope_base_local = 10000.0;  // sliding-window layers (Gemma 3)
  RopeScaling rope_scaling;

  // Sliding-window attention: layers marked local see only the last `sliding_window` tokens.
  int sliding_window = 0;
  std::vector<bool> layer_is_local;  // n_layers entries

  int n_local_layers() const;
  // KV bytes per token held by the global (policy-governed) layers, f32 keys and values.
  size_t kv_bytes_per_token_global() const;
};

// Reads and checks the hyper-parameters; throws kvc::Error naming what is missing or unsupported.
ModelConfig read_config(const GgufFile& file);

const char* arch_label(Arch arch);

}  // namespace kvc
