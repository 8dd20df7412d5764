// Turns one row of logits into a token id, the way llama.cpp's default chain does:
// repetition penalty -> top-k -> top-p -> min-p -> temperature -> softmax -> seeded draw.
// The sampler knows nothing of the model or the cache: logits in, id out.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace kvc {

struct SamplingParams {
  float temperature = 0.8f;   // <= 0: greedy argmax
  int top_k = 40;             // <= 0: off
  float top_p = 0.95f;        // >= 1: off
  float min_p = 0.05f;        // <= 0: off
  float repeat_penalty = 1.0f;  // 1: off
  int repeat_last_n = 64;     // 0: off, -1: the whole history
  // OpenAI's penalties over the same last repeat_last_n tokens, as llama.cpp applies them: a
  // token seen c times loses c * frequency_penalty + presence_penalty from its logit. 0: off.
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  uint64_t seed = kRandomSeed;
  // Ids never drawn, whatever their logits (llama.cpp's --ignore-eos bans the end-of-generation
  // ids this way, so an endless stream cannot stop by chance).
  std::vector<int32_t> banned;

  // llama.cpp's "pick a random seed" value.
  static constexpr uint64_t kRandomSeed = 0xFFFFFFFF;
};

class Sampler {
 public:
  Sampler(const SamplingParams& params, int vocab_size);

  // Picks the next token. `logits` has vocab_size entries; `history` is the tokens so far
  // (prompt and generated), of which the last repeat_last_n are penalized.
  int32_t sample(const float* logits, std::span<const int32_t> history);

  // Restarts the random stream; kRandomSeed draws a fresh seed from the system.
  void reseed(uint64_t seed);

  const SamplingParams& params() const { return params_; }
  // The seed actually in use (resolved if kRandomSeed was asked for).
  uint64_t seed() const { return seed_; }

 private:
  struct Candidate {
    int32_t id;
    float logit;
  };

  // Top-k up to this size goes through a heap in one pass; larger k through nth_element.
  static constexpr size_t kHeapTopK = 1024;

  void apply_penalty(std::span<const int32_t> history);
  // Fills candidates_ with the k best of scratch_.
  void select_top_k(size_t k);
  // Sorts candidates_ best first, but only as far as the top-p cut needs; returns how many
  // leading candidates survive top-p and min-p.
  size_t truncate_sorted();
  int32_t draw(size_t n);

  SamplingParams params_;
  int vocab_size_;
  uint64_t seed_ = 0;
  std::mt19937_64 rng_;
  std::vector<float> scratch_;         // the logits after the penalty, indexed by id
  std::vector<Candidate> candidates_;  // reused between calls: no allocation per token
  std::vector<int32_t> penalized_;      // the distinct ids of the window, sorted
  std::vector<int32_t> counts_;         // occurrences of each, for the OpenAI penalties
  std::vector<float> probs_;
};

}  // namespace kvc
