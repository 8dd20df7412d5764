// Chunk scoring: the selection's one kernel. Each sampled key row is read once and dotted with
// every query row of the block (kv_row-inl.h), so a stage costs its sampled keys, not keys x rows
// of memory traffic.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/chunk_selection.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/chunk_selection.h"
#include "ops/kv_row-inl.h"

HWY_BEFORE_NAMESPACE();
namespace kvc {
namespace HWY_NAMESPACE {

void ScoreChunks(const ChunkQueries& q, const KeyRange* chunks, int n_chunks, int samples,
                 float* scores) {
  constexpr int kMaxRows = 64;  // rows dotted per pass; a bigger block goes in several
  // logits[i * n_rows + r]: sample i, row r
  std::vector<float> logits(static_cast<size_t>(std::max(1, samples)) * q.n_rows);
  for (int c = 0; c < n_chunks; ++c) {
    const KeyRange& chunk = chunks[c];
    const KvSegment& seg = q.view->at(q.head, chunk.seg);
    const float* const* rows = q.rows + static_cast<size_t>(chunk.seg) * q.n_rows;
    const int count = std::min(samples, chunk.size());
    for (int i = 0; i < count; ++i) {
      const uint8_t* key = seg.k + static_cast<size_t>(sample_slot(chunk, i, count)) *
                                       kv_row_bytes(seg.k_type, q.head_dim);
      for (int r0 = 0; r0 < q.n_rows; r0 += kMaxRows)
        KeyRowDots(seg.k_type, rows + r0, std::min(kMaxRows, q.n_rows - r0), key, q.head_dim,
                   logits.data() + static_cast<size_t>(i) * q.n_rows + r0);
    }
    float best = -HUGE_VALF;
    for (int r = 0; r < q.n_rows; ++r) {
      float mx = -HUGE_VALF;
      for (int i = 0; i < count; ++i) mx = std::max(mx, q.scale * logits[static_cast<size_t>(i) * q.n_rows + r]);
      float sum = 0.0f;
      for (int i = 0; i < count; ++i) sum += std::exp(q.scale * logits[static_cast<size_t>(i) * q.n_rows + r] - mx);
      best = std::max(best, mx + std::log(sum));
    }
    scores[c] = best + std::log(static_cast<float>(chunk.size()) / static_cast<float>(count));
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace kvc
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kvc {

HWY_EXPORT(ScoreChunks);

void score_chunks(const ChunkQueries& q, std::span<const KeyRange> chunks, int samples,
                  float* scores) {
  HWY_DYNAMIC_DISPATCH(ScoreChunks)(q, chunks.data(), static_cast<int>(chunks.size()), samples,
                                    scores);
}

void score_chunks_reference(const ChunkQueries& q, std::span<const KeyRange> chunks, int samples,
                            float* scores) {
  for (size_t c = 0; c < chunks.size(); ++c) {
    const KeyRange& chunk = chunks[c];
    const KvSegment& seg = q.view->at(q.head, chunk.seg);
    const int count = std::min(samples, chunk.size());
    std::vector<float> key_row;
    double best = -INFINITY;
    for (int r = 0; r < q.n_rows; ++r) {
      const float* row = q.rows[static_cast<size_t>(chunk.seg) * q.n_rows + r];
      double sum = 0;
      for (int i = 0; i < count; ++i) {
        const float* key =
            kv_decoded_row(seg.k_type, seg.k, sample_slot(chunk, i, count), q.head_dim, key_row);
        double dot = 0;
        for (int x = 0; x < q.head_dim; ++x) dot += static_cast<double>(row[x]) * key[x];
        sum += std::exp(q.scale * dot);
      }
      best = std::max(best, std::log(sum * chunk.size() / count));
    }
    scores[c] = static_cast<float>(best);
  }
}

std::vector<KeyRange> select_chunks(const ChunkQueries& q, std::vector<KeyRange> candidates,
                                    int keep, bool reference, int64_t* keys_scored) {
  struct Scored {
    float score;
    KeyRange chunk;
  };
  if (keep <= 0) return {};
  std::vector<Scored> live;
  live.reserve(candidates.size());
  for (const KeyRange& c : candidates) live.push_back({-HUGE_VALF, c});
  std::vector<KeyRange> chunks;
  std::vector<float> scores;
  int samples = kFirstStageSamples;
  while (static_cast<int>(live.size()) > keep) {
    chunks.clear();
    for (const Scored& s : live) chunks.push_back(s.chunk);
    scores.resize(chunks.size());
    if (reference)
      score_chunks_reference(q, chunks, samples, scores.data());
    else
      score_chunks(q, chunks, samples, scores.data());
    for (size_t c = 0; c < live.size(); ++c) {
      live[c].score = scores[c];  // more samples, a better estimate: it replaces the last one
      if (keys_scored) *keys_scored += std::min(samples, chunks[c].size());
    }
    const size_t survivors = std::max<size_t>(keep, (live.size() + 1) / 2);
    // Ties go to the earlier chunk, so the fast and the reference scorer agree on exact ties.
    auto better = [](const Scored& x, const Scored& y) {
      if (x.score != y.score) return x.score > y.score;
      return x.chunk.seg != y.chunk.seg ? x.chunk.seg < y.chunk.seg : x.chunk.begin < y.chunk.begin;
    };
    std::nth_element(live.begin(), live.begin() + static_cast<std::ptrdiff_t>(survivors) - 1,
                     live.end(), better);
    live.resize(survivors);
    samples *= 2;
  }
  std::vector<KeyRange> kept;
  kept.reserve(live.size());
  for (const Scored& s : live) kept.push_back(s.chunk);
  std::sort(kept.begin(), kept.end(), [](const KeyRange& x, const KeyRange& y) {
    return x.seg != y.seg ? x.seg < y.seg : x.begin < y.begin;
  });
  return kept;
}

}  // namespace kvc
#endif  // HWY_ONCE
