// The tensors of a model, bound by name from the mapped GGUF file. Matrices stay in their file
// format (zero copy); small vectors (norms, biases) are converted to f32 when they are not.
#pragma once

#include <deque>
#include <vector>

#include "model/config.h"
#include "ops/matmul.h"

namespace kvc {

class GgufFile;

struct LayerWeights {
  const float* attn_norm = nullptr;
  WeightMatrix wq, wk, wv, wo;
  const float* bq = nullptr;  // Qwen 2 projection biases, else null
  const float* bk = nullptr;
  const float* bv = nullptr;
  const float* q_norm = nullptr;          // Gemma 3: per-head RMS norm of q and k
  const float* k_norm = nullptr;
  const float* post_attn_norm = nullptr;  // Gemma 3: norms after attention and after the FFN
  const float* post_ffn_norm = nullptr;
  const float* ffn_norm = nullptr;
  WeightMatrix gate, up, down;
};

struct ModelWeights {
  WeightMatrix token_embd;  // [vocab][n_embd]
  const float* output_norm = nullptr;
  WeightMatrix output;      // [vocab][n_embd]; token_embd when tied
  std::vector<LayerWeights> layers;
  std::deque<std::vector<float>> converted;  // owns vectors converted to f32

  size_t matrix_bytes() const;
  // Weight bytes one decode step reads: every layer's matrices, the output matrix and one row
  // of the embeddings (a tied output is read in full anyway). Norm and bias vectors, a few KB
  // per layer, are left out.
  size_t decode_read_bytes() const;
};

// Binds every tensor the architecture needs and checks its shape; throws kvc::Error naming
// the first missing or misshapen tensor.
ModelWeights bind_weights(const GgufFile& file, ModelConfig& config);

}  // namespace kvc
