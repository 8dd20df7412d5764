// Tiny synthetic models of the Llama family (llama, mistral, qwen2) as GGUF files, with random
// weights from a fixed seed, for testing the loader and the forward pass against a reference.
// The builder also returns the weights as the file holds them (after quantization), so a test
// can recompute the model with plain loops.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "quant/ggml_type.h"
#include "support/gguf_writer.h"

namespace kvc::test {

struct TinyModelSpec {
  std::string arch = "llama";  // written as general.architecture and as the key prefix
  int n_layers = 2;
  int n_embd = 32;
  int n_heads = 4;
  int n_kv_heads = 2;
  int head_dim = 8;
  int n_ff = 64;
  int vocab = 300;  // 256 byte tokens + merges
  float rms_eps = 1e-5f;
  double rope_base = 10000.0;
  std::string rope_scaling_type;  // empty: no scaling keys
  float rope_scaling_factor = 1.0f;
  std::vector<float> rope_freqs;  // empty: no rope_freqs.weight (Llama 3 divisors otherwise)
  bool qkv_bias = false;          // Qwen 2
  bool tied = false;              // no output.weight: the embedding doubles as output matrix
  GgmlType weight_type = GgmlType::F32;  // for the matrices; norms and biases stay F32
  uint64_t seed = 1;

  // Deliberate breakage, for loader error tests.
  std::string omit_tensor;     // this tensor is not written
  std::string misshape_tensor; // this matrix is written with its row count plus one
  std::string nan_tensor;      // this tensor's first value is written as NaN
};

struct TinyLayer {
  std::vector<float> attn_norm, wq, wk, wv, wo, bq, bk, bv, ffn_norm, gate, up, down;
};

// Row-major [rows][cols] matrices, as the file holds them (dequantized when quantized).
struct TinyWeights {
  std::vector<float> token_embd, output_norm, output;  // output empty when tied
  std::vector<TinyLayer> layers;
};

// Draws the weights for `spec` from its seed.
TinyWeights make_tiny_weights(const TinyModelSpec& spec);

// The metadata, tokenizer (gpt2 byte-level BPE) and tensors of the model. The quantized
// matrices of `w` are replaced by their dequantized values, which is what the file holds.
GgufWriter tiny_model_writer(const TinyModelSpec& spec, TinyWeights& w);

// A file name in the test temp dir that no other test (or concurrent ctest process) uses: the
// stem plus the running test's suite, name and pid. ctest runs tests in parallel, and rewriting a
// file that another test has mapped kills that test with SIGBUS.
std::string unique_temp_path(const std::string& stem);

// Draws the weights, writes the file and returns the weights it holds.
TinyWeights write_tiny_model(const std::string& path, const TinyModelSpec& spec);

}  // namespace kvc::test
