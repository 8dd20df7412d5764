// Sparse attention with an estimated mask (issue 13; shared/docs/sparse-attention.md): a query
// block attends exactly, with an online softmax, to the view's first `sinks` keys, its last
// `recent` keys, the chunk's own keys (causal, as dense attention) and the `top_chunks` chunks
// of the keys in between that chunk_selection.h picks for it. Decode reuses a selection for
// `refresh` steps; a prefill chunk picks one per block of kSparseQueryBlock queries. Below
// `min_keys` cached keys the layer runs dense attention, which is exact.
//
// Masses: the keys attended get theirs as dense attention computes them, every other key none
// (a scoring policy sees them as unimportant).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ops/attention.h"
#include "ops/chunk_selection.h"

namespace kvc {

struct SparseAttentionConfig {
  // The defaults attend 64 + 768 + 96 x 8 = 1,600 cached keys. Chunks of 8 rather than 32:
  // SmolLM2's heads attend to scattered single keys, and on KJV 3K deep 32-key chunks covered
  // less softmax mass than a plain window of the same size (tests/integration/
  // sparse_recall_test.cc; figures in docs/benchmarks.md).
  int sinks = 64;        // first keys of the view, always attended
  int recent = 768;      // last keys of the view, always attended
  int top_chunks = 96;   // chunks of the middle keys the selection keeps
  int chunk = 8;         // keys per chunk
  int refresh = 16;      // decode steps one selection serves (refresh 1 vs 8: recall 0.917 vs 0.914)
  int min_keys = 2048;   // fewer cached keys than this (in every KV head): dense attention
  // Diagnostics (tests, reports): on every sparse decode step also compute dense attention's
  // probabilities and record the mass the attended keys cover (SparseStats::recall_*). Costs
  // a dense pass; off in normal runs.
  bool measure_recall = false;
};

// Empty when `config` is usable, else what is wrong (naming the CLI's flags).
std::string sparse_config_error(const SparseAttentionConfig& config);

// Queries of a prefill chunk that share one selection, and the stride at which they are sampled
// to score it (every 8th and the block's last): scoring with all 64 cost as much as dense
// attention over the cache.
inline constexpr int kSparseQueryBlock = 64;
inline constexpr int kSparseQueryStride = 8;

// What sparse attention did, summed over calls: for the benchmarks and the recall report.
struct SparseStats {
  int64_t dense_calls = 0;     // calls that ran dense attention (below min_keys)
  int64_t sparse_calls = 0;
  int64_t selections = 0;      // (KV head, query block) selections made
  int64_t keys_scored = 0;     // key rows the selections read
  int64_t keys_attended = 0;   // cached key rows attended, per (KV head, query block)
  int64_t keys_cached = 0;     // cached key rows dense attention would have read, likewise
  // With measure_recall, summed over decode (step, query head) rows: the softmax mass of dense
  // attention that the attended keys hold, and that the same number of its top keys holds (the
  // best any selection of that size could do).
  double recall_covered = 0;
  double recall_best = 0;
  int64_t recall_rows = 0;
};

// One layer's decode selection, kept between steps. It stays valid while the view only grows at
// its end (the full cache; a policy that moves or evicts keys changes its segments' pointers or
// offsets, and the selection is made afresh).
struct SparseSelection {
  struct Head {
    std::vector<KeyRange> chunks;  // the kept chunks
    int tail_begin = 0;            // first row (in view order) of the always-attended tail
  };
  std::vector<Head> heads;
  bool valid = false;
  int uses = 0;                        // decode steps served so far
  std::vector<KvSegment> made_on;      // the view it was made on (pointers, offsets, sizes)
  SparseStats stats;
  void invalidate() { valid = false; }
};

// The fast kernel: dense attention (attention()) below `min_keys` or for a sliding-window layer,
// else the sparse path. `selection` is the layer's state, updated.
void sparse_attention(const AttentionArgs& args, const SparseAttentionConfig& config,
                      SparseSelection& selection);
// Plain loops in double, for tests: the same selection (scored by score_chunks_reference), then
// attention over the same keys. Never falls back to dense attention itself.
void sparse_attention_reference(const AttentionArgs& args, const SparseAttentionConfig& config,
                                SparseSelection& selection);

}  // namespace kvc
