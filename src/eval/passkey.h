// Passkey retrieval, the reference protocol (Landmark Attention; the Cascading KV Cache paper):
// a 5-digit key stated once inside repeated filler text, at a depth drawn in one of five bins,
// the question at the end, greedy decoding, and the fraction of the first 5 digits right.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace kvc {

class Session;
class Tokenizer;

// Plain: base-style completion of "... What is the pass key? The pass key is".
// Chat: the text up to the question is the user turn; "The pass key is" opens the reply.
enum class PasskeyFormat { Plain, Chat };

struct PasskeyPrompt {
  std::vector<int32_t> tokens;
  std::string key;         // 5 digits
  int64_t key_begin = 0;   // token index where the key sentence starts
  int64_t key_end = 0;     // and one past where it ends
  std::vector<int64_t> key_digits;  // token indices in the key sentence that carry its digits
  double depth = 0.0;      // key_begin / tokens.size()
};

// The text around a user turn, up to where the assistant's reply begins.
struct ChatWrap {
  std::string before;
  std::string after;
};
// ChatML (<|im_start|>, SmolLM2) or Gemma turns (<start_of_turn>), whichever the vocabulary
// has; throws kvc::Error if it has neither.
ChatWrap chat_wrap_for(const Tokenizer& tokenizer);

// Builds a prompt of exactly `length` tokens with the key sentence starting at about `depth`
// (0..1) of the filler. Throws kvc::Error if `length` is too short to hold the fixed parts and
// some filler.
PasskeyPrompt build_passkey_prompt(const Tokenizer& tokenizer, int64_t length, double depth,
                                   const std::string& key, PasskeyFormat format);

// Fraction of the key's 5 digits that the answer's first 5 digits match, position by position
// (" 12345." against "12345" -> 1.0; "12945" -> 0.8; no digits -> 0).
double passkey_score(const std::string& answer, const std::string& key);

struct PasskeyOptions {
  std::vector<int64_t> lengths = {2048};
  int samples = 4;  // per length and depth bin
  int bins = 5;
  uint64_t seed = 1;
  int max_new_tokens = 8;
  PasskeyFormat format = PasskeyFormat::Plain;
  // Called after each sample with samples done and the total.
  std::function<void(int64_t done, int64_t total)> progress;
  // Checked between samples; when set the run stops and returns what it has.
  const std::atomic<bool>* cancel = nullptr;
};

struct PasskeySample {
  int64_t length = 0;
  int bin = 0;
  double depth = 0.0;  // where the key really landed (fraction of the prompt)
  std::string key;
  std::string answer;  // decoded greedy continuation
  double score = 0.0;
  // Fraction of the key's digit tokens (both statements) the policy-governed caches still held
  // when the question had been read, mean over layers and KV heads: retention, not retrieval.
  double key_kept = 0.0;
  double seconds = 0.0;
};

struct PasskeyResult {
  std::vector<PasskeySample> samples;
  bool cancelled = false;
  // Mean score of the samples at `length` in `bin`; NaN if there are none.
  double accuracy(int64_t length, int bin) const;
  // Mean over every bin at `length`.
  double accuracy(int64_t length) const;
  // Mean key_kept of the samples at `length`; NaN if there are none.
  double key_kept(int64_t length) const;
};

// The key and depth of one sample depend only on (seed, length, bin, index), so every policy
// and every subset of lengths sees the same prompts.
struct PasskeyDraw {
  std::string key;
  double depth = 0.0;
};
PasskeyDraw draw_passkey(uint64_t seed, int64_t length, int bin, int bins, int index);

// Runs every (length, bin, sample) with a fresh stream each (session.reset()).
PasskeyResult run_passkey(Session& session, const PasskeyOptions& options);

}  // namespace kvc
