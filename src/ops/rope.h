// Rotary position embedding. A Rope holds the per-pair frequencies of one layer (scaling already
// folded in) and rotates one head vector by a position. Rotations compose by adding positions,
// which is what lets the cache store keys rotated at virtual positions and move them by a delta.
#pragma once

#include <cstdint>
#include <vector>

#include "cache/kv_cache.h"

namespace kvc {

enum class RopeStyle {
  Norm,  // pairs (x[2i], x[2i+1]): Llama family in GGUF
  Neox,  // pairs (x[i], x[i + n_dims/2]): Gemma, Qwen 2, ...
};

// How a model stretches its positions. GGUF carries Llama 3's scaling as a per-pair tensor of
// frequency divisors (rope_freqs.weight); linear scaling divides every frequency.
struct RopeScaling {
  float linear_factor = 1.0f;
  std::vector<float> freq_factors;  // empty, or n_dims / 2 divisors
};

class Rope : public KeyRotator {
 public:
  Rope() = default;
  Rope(RopeStyle style, int head_dim, int n_dims, double base, const RopeScaling& scaling = {});

  // Rotates one head vector (head_dim floats) to position pos. Dimensions past n_dims stay.
  void apply(float* x, int64_t pos) const { apply_heads(x, 1, pos); }
  // Rotates n_heads consecutive head vectors to the same position (one sin/cos table for all).
  void apply_heads(float* x, int n_heads, int64_t pos) const;
  // KeyRotator: the same rotation, by a position delta.
  void rotate(float* key, int64_t delta) const override { apply(key, delta); }
  // KeyRotator: [n][n_dims / 2] (cos, sin) pairs, as apply computes them, and their use.
  std::vector<float> position_table(int64_t n) const override;
  void rotate_to(float* key, int64_t pos, const std::vector<float>& table) const override;

  int head_dim() const { return head_dim_; }
  int n_dims() const { return n_dims_; }
  RopeStyle style() const { return style_; }
  const std::vector<double>& inv_freq() const { return inv_freq_; }

 private:
  RopeStyle style_ = RopeStyle::Norm;
  int head_dim_ = 0;
  int n_dims_ = 0;
  std::vector<double> inv_freq_;  // n_dims / 2 angular frequencies (radians per position)
};

}  // namespace kvc
