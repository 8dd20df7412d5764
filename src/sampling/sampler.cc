#include "sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "base/error.h"

namespace kvc {

namespace {

// A strict total order (logit, then lower id) so that every partial sort is deterministic.
struct Better {
  template <typename C>
  bool operator()(const C& a, const C& b) const {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  }
};

// 53 random bits as a double in [0, 1): portable, unlike std::uniform_real_distribution.
double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

}  // namespace

Sampler::Sampler(const SamplingParams& params, int vocab_size)
    : params_(params), vocab_size_(vocab_size) {
  if (vocab_size <= 0) fail("sampler: vocabulary size must be positive, got {}", vocab_size);
  if (!std::isfinite(params.temperature)) fail("sampler: temperature must be finite");
  if (!(params.top_p > 0.0f)) fail("sampler: top-p must be in (0, 1], got {}", params.top_p);
  if (!(params.min_p >= 0.0f && params.min_p <= 1.0f))
    fail("sampler: min-p must be in [0, 1], got {}", params.min_p);
  if (!(params.repeat_penalty > 0.0f) || !std::isfinite(params.repeat_penalty))
    fail("sampler: repeat penalty must be positive, got {}", params.repeat_penalty);
  if (!std::isfinite(params.frequency_penalty) || !std::isfinite(params.presence_penalty))
    fail("sampler: frequency and presence penalties must be finite");
  if (params.repeat_last_n < -1)
    fail("sampler: repeat-last-n must be >= -1, got {}", params.repeat_last_n);
  for (int32_t id : params.banned)
    if (id < 0 || id >= vocab_size) fail("sampler: banned id {} is not in the vocabulary", id);
  candidates_.reserve(static_cast<size_t>(vocab_size));
  reseed(params.seed);
}

void Sampler::reseed(uint64_t seed) {
  if (seed == SamplingParams::kRandomSeed) {
    std::random_device device;
    seed = (static_cast<uint64_t>(device()) << 32) ^ device();
  }
  seed_ = seed;
  rng_.seed(seed_);
}

int32_t Sampler::sample(const float* logits, std::span<const int32_t> history) {
  const size_t vocab = static_cast<size_t>(vocab_size_);
  scratch_.resize(vocab);
  for (size_t i = 0; i < vocab; ++i) {
    // NaN would break the ordering every filter relies on; it never deserves to be picked.
    const float l = logits[i];
    scratch_[i] = std::isnan(l) ? -INFINITY : l;
  }
  apply_penalty(history);
  for (int32_t id : params_.banned) scratch_[static_cast<size_t>(id)] = -INFINITY;

  if (params_.temperature <= 0.0f) {
    size_t best = 0;  // strict '>' keeps the lowest id on a tie
    for (size_t i = 1; i < vocab; ++i)
      if (scratch_[i] > scratch_[best]) best = i;
    return static_cast<int32_t>(best);
  }

  const size_t k = params_.top_k > 0 ? static_cast<size_t>(params_.top_k) : vocab;
  if (k < vocab && k <= kHeapTopK) {
    select_top_k(k);
  } else {
    candidates_.resize(vocab);
    for (size_t i = 0; i < vocab; ++i) candidates_[i] = {static_cast<int32_t>(i), scratch_[i]};
    if (k < vocab) {
      const auto kth = candidates_.begin() + static_cast<std::ptrdiff_t>(k);
      std::nth_element(candidates_.begin(), kth, candidates_.end(), Better{});
      candidates_.resize(k);
    }
  }
  return draw(truncate_sorted());
}

void Sampler::select_top_k(size_t k) {
  // One pass with a k-entry heap whose top is the worst kept candidate: most logits fail a
  // single comparison against it, which beats copying and partitioning the whole vocabulary.
  candidates_.resize(k);
  for (size_t i = 0; i < k; ++i) candidates_[i] = {static_cast<int32_t>(i), scratch_[i]};
  std::make_heap(candidates_.begin(), candidates_.end(), Better{});
  const size_t vocab = scratch_.size();
  for (size_t i = k; i < vocab; ++i) {
    // Strict '>': on a tie the earlier (lower) id already kept wins, as Better says.
    if (scratch_[i] > candidates_.front().logit) {
      std::pop_heap(candidates_.begin(), candidates_.end(), Better{});
      candidates_.back() = {static_cast<int32_t>(i), scratch_[i]};
      std::push_heap(candidates_.begin(), candidates_.end(), Better{});
    }
  }
}

void Sampler::apply_penalty(std::span<const int32_t> history) {
  const bool repeat = params_.repeat_penalty != 1.0f;
  const bool openai = params_.frequency_penalty != 0.0f || params_.presence_penalty != 0.0f;
  if ((!repeat && !openai) || params_.repeat_last_n == 0 || history.empty()) return;
  size_t n = history.size();
  if (params_.repeat_last_n > 0) n = std::min(n, static_cast<size_t>(params_.repeat_last_n));
  // Each distinct token gets the repetition penalty once, however often it repeats (as
  // llama.cpp does); the frequency penalty counts the repeats.
  penalized_.assign(history.end() - static_cast<std::ptrdiff_t>(n), history.end());
  std::sort(penalized_.begin(), penalized_.end());
  counts_.clear();
  size_t distinct = 0;
  for (size_t i = 0; i < penalized_.size(); ++i) {
    if (i > 0 && penalized_[i] == penalized_[distinct - 1]) {
      ++counts_.back();
      continue;
    }
    penalized_[distinct++] = penalized_[i];
    counts_.push_back(1);
  }
  penalized_.resize(distinct);
  const float penalty = params_.repeat_penalty;
  for (size_t i = 0; i < distinct; ++i) {
    const int32_t id = penalized_[i];
    if (id < 0 || id >= vocab_size_) continue;  // not a token of this vocabulary
    float& l = scratch_[static_cast<size_t>(id)];
    if (repeat) l = l > 0.0f ? l / penalty : l * penalty;
    if (openai)
      l -= static_cast<float>(counts_[i]) * params_.frequency_penalty + params_.presence_penalty;
  }
}

size_t Sampler::truncate_sorted() {
  const auto begin = candidates_.begin();
  const size_t n = candidates_.size();
  float max_logit = -INFINITY;
  for (const Candidate& c : candidates_) max_logit = std::max(max_logit, c.logit);
  if (!std::isfinite(max_logit)) {
    // Every logit is -inf (or +inf somewhere): only the best ones can be meant.
    std::sort(begin, candidates_.end(), Better{});
    return 1;
  }

  // Top-p and min-p both keep a best-first prefix, and min-p's test (p >= min_p * p_max) does
  // not change when top-p renormalizes. So the chain's result is the shorter of the two
  // prefixes, and min-p can go first as a cheap O(n) partition that spares most of the sort.
  // Top-p still normalizes over every candidate that top-k left.
  double total = 0.0;
  const bool top_p_on = params_.top_p < 1.0f;
  if (top_p_on)
    for (const Candidate& c : candidates_) total += std::exp(double(c.logit) - max_logit);

  size_t kept = n;
  if (params_.min_p > 0.0f) {
    const float threshold = max_logit + std::log(params_.min_p);
    kept = static_cast<size_t>(
        std::partition(begin, candidates_.end(), [&](const Candidate& c) {
          return c.logit >= threshold;
        }) - begin);
  }
  const auto end = begin + static_cast<std::ptrdiff_t>(kept);

  if (!top_p_on) {
    // Order does not matter to the draw, only to its reproducibility, which a deterministic
    // partition already gives; sort when cheap so results do not hinge on std's internals.
    if (kept <= 4096) std::sort(begin, end, Better{});
    return kept;
  }

  // Sort only as far as the cumulative mass needs: a few dozen tokens usually suffice.
  const double target = double(params_.top_p) * total;
  double cum = 0.0;
  size_t sorted = 0;
  size_t chunk = 64;
  while (sorted < kept) {
    const size_t next = std::min(kept, sorted + chunk);
    std::partial_sort(begin + static_cast<std::ptrdiff_t>(sorted),
                      begin + static_cast<std::ptrdiff_t>(next), end, Better{});
    for (size_t i = sorted; i < next; ++i) {
      cum += std::exp(double(candidates_[i].logit) - max_logit);
      if (cum >= target) return i + 1;
    }
    sorted = next;
    chunk *= 2;
  }
  return kept;
}

int32_t Sampler::draw(size_t n) {
  if (n == 1) return candidates_[0].id;
  const double inv_t = 1.0 / params_.temperature;
  float max_logit = -INFINITY;
  for (size_t i = 0; i < n; ++i) max_logit = std::max(max_logit, candidates_[i].logit);
  probs_.resize(n);
  double total = 0.0;
  for (size_t i = 0; i < n; ++i) {
    probs_[i] = static_cast<float>(std::exp((double(candidates_[i].logit) - max_logit) * inv_t));
    total += probs_[i];
  }
  const double u = uniform01(rng_) * total;
  double cum = 0.0;
  for (size_t i = 0; i < n; ++i) {
    cum += probs_[i];
    if (u < cum) return candidates_[i].id;
  }
  // Rounding left u at the very top: take the last token with any mass.
  for (size_t i = n; i-- > 0;)
    if (probs_[i] > 0.0f) return candidates_[i].id;
  return candidates_[0].id;
}

}  // namespace kvc
