// Passkey retrieval: a key hidden at a chosen depth of a long haystack, the question at the end,
// greedy decoding. Two protocols:
//   paper     the Cascading KV Cache paper's final code: a haystack of random dictionary words,
//             a needle that states the key six times between loud markers, the question and an
//             answer prefix; 50 greedy tokens, the first 5 digits scored.
//   landmark  the older one (Landmark Attention, the paper's first submission): repeated filler
//             sentences, the key stated twice.
// Needles beyond the 5-digit passkey (RULER's niah): four keyed numbers of which one is asked
// (multikey), or a keyed word, so that a policy which merely hoards digits cannot win.
// Each sample records whether the answer matched exactly, its digits, and how much of the key
// the caches still held when the question began, so a failure splits into forgetting
// (retention), not answering in form (format) and misreading (reading).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace kvc {

class Session;
class Tokenizer;

// Plain: base-style completion of "... What is the pass key? The pass key is".
// Chat: the text up to the question is the user turn; the answer prefix opens the reply.
enum class PasskeyFormat { Plain, Chat };
enum class PasskeyProtocol { Paper, Landmark };
enum class Haystack { Words, Filler, Prose };
enum class Needle { Passkey, MultiKey, Word };

// What the prompts look like; the same task for every sample of a run.
struct PasskeyTask {
  PasskeyProtocol protocol = PasskeyProtocol::Paper;
  PasskeyFormat format = PasskeyFormat::Chat;
  Haystack haystack = Haystack::Words;
  Needle needle = Needle::Passkey;
  // Dictionary words (the words haystack, and the keys of multikey and word needles).
  std::shared_ptr<const std::vector<std::string>> words;
  // Prose split at white space (the prose haystack); a prompt reads it from a random place.
  std::shared_ptr<const std::vector<std::string>> prose;
};

// One word a line (Debian's wamerican: /usr/share/dict/words). Throws kvc::Error if unreadable.
std::shared_ptr<const std::vector<std::string>> load_word_list(const std::string& path);
// A text file's words (white-space separated, punctuation kept). Throws kvc::Error if unreadable
// or shorter than 1,000 words.
std::shared_ptr<const std::vector<std::string>> load_prose(const std::string& path);

struct PasskeyPrompt {
  std::vector<int32_t> tokens;
  std::string key;         // the answer: 5 digits, or a word
  int64_t key_begin = 0;   // token index where the asked needle starts
  int64_t key_end = 0;     // and one past where it ends
  std::vector<int64_t> key_digits;  // token indices of the asked key, every copy (digit tokens)
  std::vector<std::vector<int64_t>> key_copies;  // the same, one list per statement of the key
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

// The key, depth and randomness of one sample depend only on (seed, length, bin, index), so
// every policy and every subset of lengths sees the same prompts.
struct PasskeyDraw {
  std::string key;
  double depth = 0.0;
  uint64_t stream = 0;  // seeds the haystack and the other needles of this sample
};
PasskeyDraw draw_passkey(uint64_t seed, int64_t length, int bin, int bins, int index);

// Builds a prompt of exactly `length` tokens with the asked needle starting at about
// draw.depth of the haystack. For the word needle draw.key is replaced by a drawn word. Throws
// kvc::Error if `length` is too short to hold the fixed parts and some haystack.
PasskeyPrompt build_passkey_prompt(const Tokenizer& tokenizer, const PasskeyTask& task,
                                   int64_t length, const PasskeyDraw& draw);
// The landmark protocol with the filler haystack (the earlier signature).
PasskeyPrompt build_passkey_prompt(const Tokenizer& tokenizer, int64_t length, double depth,
                                   const std::string& key, PasskeyFormat format);

// Fraction of the key's 5 digits that the answer's first 5 digits match, position by position
// (" 12345." against "12345" -> 1.0; "12945" -> 0.8; no digits -> 0).
double passkey_score(const std::string& answer, const std::string& key);
// Whether the answer gives the key: its first 5 digits for a numeric key, its first word
// (letters only, case ignored) for a word.
bool passkey_exact(const std::string& answer, const std::string& key);

struct PasskeyOptions {
  std::vector<int64_t> lengths = {2048};
  int samples = 4;  // per length and depth bin
  int bins = 5;
  uint64_t seed = 1;
  int max_new_tokens = 50;
  PasskeyTask task;
  // Pin each prompt's key tokens in an `oracle` cache (window + pins, the same memory) instead
  // of the session's policy: can the model read a retained key at compressed positions?
  bool oracle = false;
  // With the oracle: pin only the first this many statements of the key (0: all of them), to
  // tell whether one retained copy is enough to read.
  int oracle_copies = 0;
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
  double score = 0.0;  // digits right, by position (passkey_score)
  // Fraction of the key's tokens (every statement) the policy-governed caches still held when
  // the question had been read, mean over layers and KV heads.
  double key_kept = 0.0;
  double seconds = 0.0;
  int index = 0;          // sample index within (length, bin): pairs samples across runs
  bool exact = false;     // passkey_exact
  int digits = 0;         // digits in the answer (format: at least 5 for a numeric key)
  double key_intact = 0.0;  // share of those caches holding at least one whole statement
};

// Retention split: a sample whose every policy-governed cache held a whole statement of the key.
inline bool retained(const PasskeySample& s) { return s.key_intact >= 1.0; }
// Format: the answer had the key's form (5 digits, or a word for a word key).
bool well_formed(const PasskeySample& s);

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

// Runs every (length, bin, sample) with a fresh stream each (session.reset()).
PasskeyResult run_passkey(Session& session, const PasskeyOptions& options);

}  // namespace kvc
