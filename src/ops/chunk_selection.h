// Which chunks of a KV head's cached keys a block of queries should attend: a hierarchical top-k
// in the spirit of HiP / InfiniteHiP (shared/docs/sparse-attention.md §3), written from their
// descriptions. Every candidate chunk is scored cheaply by a few sampled keys; the better half
// survives to a stage that samples twice as many keys, until `keep` chunks remain.
// A chunk's score estimates the softmax mass it holds (what attention over the chosen keys loses
// is the mass left out): log(size / samples * sum over sampled keys of exp(logit)), for each query
// row, then the max over the block's rows (GQA: every query head of the group), so a chunk any
// one query wants survives. Scoring by the best sampled logit instead (HiP's representative key)
// covered less mass than a plain window of the same size on SmolLM2 (docs/benchmarks.md).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "cache/kv_cache.h"

namespace kvc {

// Slots [begin, end) of segment `seg` of one KV head.
struct KeyRange {
  int seg = 0;
  int begin = 0;
  int end = 0;
  int size() const { return end - begin; }
};

// The query rows that score a KV head's keys: rows[s * n_rows + r] is row r rotated for segment
// s (the segments' positions differ; see cache/kv_cache.h).
struct ChunkQueries {
  const KvView* view = nullptr;
  int head = 0;  // KV head
  int head_dim = 0;
  int n_rows = 0;
  const float* const* rows = nullptr;
  float scale = 1.0f;  // logit = scale * dot(row, key)
};

// scores[c] = max over the rows r of log(size / n * sum over n = min(samples, size) evenly
// spaced keys i of chunks[c] of exp(scale * dot(row r, key i))).
void score_chunks(const ChunkQueries& q, std::span<const KeyRange> chunks, int samples,
                  float* scores);
// The same in plain loops (double sums), for tests.
void score_chunks_reference(const ChunkQueries& q, std::span<const KeyRange> chunks, int samples,
                            float* scores);

// The sample keys of a chunk: slot of sample i of `count` in a chunk of `size` keys.
inline int sample_slot(const KeyRange& c, int i, int count) {
  return c.begin + static_cast<int>((2 * static_cast<int64_t>(i) + 1) * c.size() / (2 * count));
}

// Keys sampled per chunk in the first stage; each later stage doubles it.
inline constexpr int kFirstStageSamples = 2;

// The `keep` best of `candidates` by the staged halving above, sorted by (segment, slot). All of
// them when there are no more than `keep`. `reference` scores with score_chunks_reference.
// keys_scored, if given, grows by the key rows the stages read.
std::vector<KeyRange> select_chunks(const ChunkQueries& q, std::vector<KeyRange> candidates,
                                    int keep, bool reference = false,
                                    int64_t* keys_scored = nullptr);

}  // namespace kvc
