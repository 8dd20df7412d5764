// Weight matrix times activations, threaded. The quant kernels do the arithmetic on one thread;
// this file quantizes the activations once and splits the rows of one or several matrices that
// read the same input (q/k/v, gate/up) over the pool in a single dispatch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "ops/thread_pool.h"
#include "quant/ggml_type.h"

namespace kvc {

// A 2-D weight in its file format: `rows` rows of `cols` elements, row_bytes apart.
struct WeightMatrix {
  GgmlType type = GgmlType::F32;
  const uint8_t* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  size_t row_bytes = 0;
};

// One product of a batch: out[t * ldo + r] = (w x_t)[r] for every token t of the input.
struct MatmulTask {
  const WeightMatrix* w = nullptr;
  float* out = nullptr;
  int64_t ldo = 0;
};

// Scratch for quantized activations, reused across calls (it only grows).
class ActivationScratch {
 public:
  void* reserve(size_t bytes);

 private:
  std::vector<uint8_t> bytes_;
};

// Runs every task on the same input x ([n_tokens][cols] floats). All tasks must have the same
// number of columns. Rows of all tasks are split over the pool's threads together.
void matmul(std::span<const MatmulTask> tasks, const float* x, int n_tokens, ThreadPool& pool,
            ActivationScratch& scratch);

// The scalar reference of the same product, for tests: dequantizes each row.
void matmul_reference(const WeightMatrix& w, const float* x, int n_tokens, float* out, int64_t ldo);

}  // namespace kvc
