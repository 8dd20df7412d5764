// Sparse attention on the real SmolLM2 over real text (KJV): how much of dense attention's
// softmax mass the keys it attends hold, per layer, on decode steps 3K tokens deep, against the
// best any selection of as many keys could do (dense attention's own top keys). The figures are
// printed; the asserts only catch a broken selection (worse than keeping sinks and the window).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/session.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace kvc {
namespace {

namespace fs = std::filesystem;

const std::string kModel = std::string(KVC_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
const std::string kText = std::string(KVC_SOURCE_DIR) + "/data/kjv.txt";

struct Recall {
  std::vector<double> covered, best;  // per layer, mean over rows
};

// Streams `depth` tokens of KJV, then decodes `steps` tokens of it one at a time with sparse
// attention measuring its recall.
Recall measure(const Model& model, const std::vector<int32_t>& tokens, size_t depth, int steps,
               const SparseAttentionConfig& sparse) {
  SessionOptions o;
  o.threads = 2;
  o.cache.policy = "full";
  o.cache.context = static_cast<int64_t>(depth) + steps + 8;
  o.sparse_attention = true;
  o.sparse = sparse;
  o.sparse.measure_recall = true;
  Session session(model, o);
  session.feed(std::span(tokens).first(depth));
  for (int i = 0; i < steps; ++i) session.feed(std::span(tokens).subspan(depth + i, 1));
  Recall r;
  for (const SparseStats& st : session.sparse_layer_stats()) {
    if (st.recall_rows == 0) continue;
    r.covered.push_back(st.recall_covered / st.recall_rows);
    r.best.push_back(st.recall_best / st.recall_rows);
  }
  return r;
}

TEST(SparseRecall, SmolLM2OnKjv) {
  if (!fs::exists(kModel)) GTEST_SKIP() << kModel << " missing (scripts/fetch-model.sh)";
  if (!fs::exists(kText)) GTEST_SKIP() << kText << " missing (scripts/prepare-text.sh)";
  const auto model = Model::load(kModel);
  std::ifstream in(kText, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  const std::vector<int32_t> tokens = model->tokenizer().encode(text.str().substr(0, 60000), true, false);
  constexpr size_t kDepth = 3072;
  constexpr int kSteps = 16;
  ASSERT_GE(tokens.size(), kDepth + kSteps);

  SparseAttentionConfig sparse;  // the defaults
  sparse.min_keys = 1024;
  // The same budget without a selection: sinks and a window as wide as sinks + chunks + recent.
  SparseAttentionConfig window = sparse;
  window.recent = sparse.recent + sparse.top_chunks * sparse.chunk;
  window.top_chunks = 1;
  window.chunk = 1;
  const Recall got = measure(*model, tokens, kDepth, kSteps, sparse);
  const Recall win = measure(*model, tokens, kDepth, kSteps, window);
  ASSERT_EQ(got.covered.size(), 30u);
  ASSERT_EQ(win.covered.size(), 30u);
  double mean = 0, mean_best = 0, mean_win = 0;
  std::printf("layer  covered  best(same count)  window(same count)\n");
  for (size_t l = 0; l < got.covered.size(); ++l) {
    std::printf("%5zu  %7.4f  %16.4f  %18.4f\n", l, got.covered[l], got.best[l], win.covered[l]);
    mean += got.covered[l] / 30, mean_best += got.best[l] / 30, mean_win += win.covered[l] / 30;
    EXPECT_LE(got.covered[l], got.best[l] + 1e-9) << "layer " << l;
  }
  std::printf("mean   %7.4f  %16.4f  %18.4f\n", mean, mean_best, mean_win);
  RecordProperty("mean_covered", std::to_string(mean));
  RecordProperty("mean_best", std::to_string(mean_best));
  RecordProperty("mean_window", std::to_string(mean_win));
  EXPECT_GT(mean, mean_win) << "the selection covers less than a plain window of its size";
}

}  // namespace
}  // namespace kvc
