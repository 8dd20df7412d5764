// Which tokens a bounded cache still holds after a stream: the stream index of every live slot
// of every policy-governed layer and KV head. Feeds the "surviving token ages" histogram and the
// passkey's key-retention figure.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace kvc {

class Session;

struct CensusSlot {
  int layer = 0;
  int head = 0;
  int64_t index = 0;     // original stream index
  int64_t position = 0;  // cache position its key is rotated at
  float score = 0.0f;
};

struct CacheCensus {
  int64_t stream_length = 0;  // tokens fed (the age of a slot is stream_length - 1 - index)
  std::vector<CensusSlot> slots;
};

// The live slots of every global (non sliding-window) layer of the session's caches, now.
CacheCensus take_census(const Session& session);

// Fraction of the given stream indices that each policy-governed (layer, KV head) cache still
// holds, averaged over those caches: 1 when every one kept every token (or none was asked).
double fraction_kept(const Session& session, std::span<const int64_t> indices);

// Share of the policy-governed (layer, KV head) caches that hold every token of at least one of
// `copies` (the statements of a passkey): 1 when there is nothing to hold.
double fraction_intact(const Session& session, const std::vector<std::vector<int64_t>>& copies);

}  // namespace kvc
