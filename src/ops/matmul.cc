#include "ops/matmul.h"

#include <algorithm>

#include "base/error.h"
#include "quant/quant.h"
#include "quant/reference.h"

namespace kvc {

void* ActivationScratch::reserve(size_t bytes) {
  // 64 bytes of slack keep SIMD loads that read a little past the end inside the buffer.
  if (bytes_.size() < bytes + 64) bytes_.resize(bytes + 64);
  return bytes_.data();
}

namespace {

// Rows are handed out in tiles of this many so the kernels' row blocking stays whole.
constexpr int64_t kRowTile = 8;

}  // namespace

void matmul(std::span<const MatmulTask> tasks, const float* x, int n_tokens, ThreadPool& pool,
            ActivationScratch& scratch) {
  if (tasks.empty() || n_tokens <= 0) return;
  const int64_t cols = tasks[0].w->cols;

  // Quantize the input once per activation format the tasks need (at most two in practice).
  GgmlType act_types[4];
  size_t act_offsets[4];
  int n_act = 0;
  size_t total = 0;
  std::vector<int> task_act(tasks.size());
  for (size_t i = 0; i < tasks.size(); ++i) {
    if (tasks[i].w->cols != cols) fail("matmul: tasks disagree on the input length");
    const GgmlType at = quant::activation_type(tasks[i].w->type);
    int found = -1;
    for (int a = 0; a < n_act; ++a)
      if (act_types[a] == at) found = a;
    if (found < 0) {
      if (n_act == 4) fail("matmul: too many activation formats in one call");
      found = n_act++;
      act_types[found] = at;
      act_offsets[found] = total;
      total += quant::row_bytes(at, cols) * n_tokens;
    }
    task_act[i] = found;
  }
  uint8_t* act = static_cast<uint8_t*>(scratch.reserve(total));
  for (int a = 0; a < n_act; ++a) {
    const size_t rb = quant::row_bytes(act_types[a], cols);
    // Any weight type with this activation format will do to name the conversion.
    GgmlType w_type = GgmlType::F32;
    for (size_t i = 0; i < tasks.size(); ++i)
      if (task_act[i] == a) w_type = tasks[i].w->type;
    uint8_t* dst = act + act_offsets[a];
    pool.parallel_for(n_tokens, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t)
        quant::quantize_activation(w_type, x + t * cols, dst + t * rb, cols);
    }, 16);
  }

  // Split the concatenated row space of all tasks in tiles over the threads.
  int64_t total_tiles = 0;
  std::vector<int64_t> first_tile(tasks.size() + 1);
  for (size_t i = 0; i < tasks.size(); ++i) {
    first_tile[i] = total_tiles;
    total_tiles += (tasks[i].w->rows + kRowTile - 1) / kRowTile;
  }
  first_tile[tasks.size()] = total_tiles;

  pool.parallel_for(total_tiles, [&](int64_t tile0, int64_t tile1) {
    for (size_t i = 0; i < tasks.size(); ++i) {
      const int64_t a = std::max(tile0, first_tile[i]);
      const int64_t b = std::min(tile1, first_tile[i + 1]);
      if (a >= b) continue;
      const WeightMatrix& w = *tasks[i].w;
      const int64_t r0 = (a - first_tile[i]) * kRowTile;
      const int64_t r1 = std::min(w.rows, (b - first_tile[i]) * kRowTile);
      const GgmlType at = act_types[task_act[i]];
      quant::matmul(w.type, w.data, w.row_bytes, r0, r1, act + act_offsets[task_act[i]],
                    quant::row_bytes(at, cols), n_tokens, cols, tasks[i].out, tasks[i].ldo);
    }
  });
}

void matmul_reference(const WeightMatrix& w, const float* x, int n_tokens, float* out,
                      int64_t ldo) {
  std::vector<float> row(w.cols);
  for (int64_t r = 0; r < w.rows; ++r) {
    quant::ref::dequantize_row(w.type, w.data + r * w.row_bytes, row.data(), w.cols);
    for (int t = 0; t < n_tokens; ++t) {
      double sum = 0;
      for (int64_t c = 0; c < w.cols; ++c) sum += static_cast<double>(row[c]) * x[t * w.cols + c];
      out[t * ldo + r] = static_cast<float>(sum);
    }
  }
}

}  // namespace kvc
