// The roofline's weight term: what one decode step reads of the weights, tied or not.
#include <gtest/gtest.h>

#include "model/weights.h"

namespace kvc {
namespace {

WeightMatrix matrix(int64_t rows, size_t row_bytes) {
  WeightMatrix m;
  m.rows = rows, m.row_bytes = row_bytes;
  return m;
}

ModelWeights two_layers() {
  ModelWeights w;
  w.layers.resize(2);
  for (LayerWeights& l : w.layers) {
    l.wq = matrix(8, 100), l.wk = matrix(4, 100), l.wv = matrix(4, 100), l.wo = matrix(8, 100);
    l.gate = matrix(16, 100), l.up = matrix(16, 100), l.down = matrix(8, 200);
  }
  return w;
}

constexpr size_t kLayer = (8 + 4 + 4 + 8 + 16 + 16) * 100 + 8 * 200;

TEST(DecodeReadBytes, TiedOutputIsReadOnceAndTheEmbeddingRowBeside) {
  static const uint8_t table[1] = {};
  ModelWeights w = two_layers();
  w.token_embd = matrix(1000, 50);
  w.token_embd.data = table;
  w.output = w.token_embd;
  EXPECT_EQ(w.decode_read_bytes(), 2 * kLayer + 1000 * 50 + 50);
  // The whole file holds the table once; a step reads it once plus one row.
  EXPECT_EQ(w.matrix_bytes(), 2 * kLayer + 1000 * 50);
}

TEST(DecodeReadBytes, UntiedOutputReadsOnlyOneEmbeddingRow) {
  static const uint8_t embd[1] = {}, out[1] = {};
  ModelWeights w = two_layers();
  w.token_embd = matrix(1000, 50);
  w.token_embd.data = embd;
  w.output = matrix(1000, 70);
  w.output.data = out;
  EXPECT_EQ(w.decode_read_bytes(), 2 * kLayer + 1000 * 70 + 50);
}

}  // namespace
}  // namespace kvc
