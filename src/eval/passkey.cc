#include "eval/passkey.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <limits>

#include "base/error.h"
#include "engine/session.h"
#include "eval/cache_census.h"
#include "tokenizer/tokenizer.h"

namespace kvc {

namespace {

// The wording of the reference protocol (Landmark Attention, reused by the cascade paper).
constexpr const char* kIntro =
    "There is an important info hidden inside a lot of irrelevant text. Find it and memorize "
    "it. I will quiz you about the important information there.";
constexpr std::array<const char*, 5> kFiller = {
    " The grass is green.", " The sky is blue.", " The sun is yellow.", " Here we go.",
    " There and back again."};
constexpr const char* kQuestion = " What is the pass key?";
constexpr const char* kAnswerLead = "The pass key is";
constexpr int kKeyDigits = 5;

// splitmix64: a fixed, portable mixer, so draws do not depend on the standard library.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

void append(std::vector<int32_t>& out, const std::vector<int32_t>& ids) {
  out.insert(out.end(), ids.begin(), ids.end());
}

int32_t argmax(const float* x, int n) {
  return static_cast<int32_t>(std::max_element(x, x + n) - x);
}

int count_digits(const std::string& s) {
  return static_cast<int>(std::count_if(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }));
}

}  // namespace

ChatWrap chat_wrap_for(const Tokenizer& tokenizer) {
  if (tokenizer.find_token("<|im_start|>") >= 0)
    return {"<|im_start|>user\n", "<|im_end|>\n<|im_start|>assistant\n"};
  if (tokenizer.find_token("<start_of_turn>") >= 0)
    return {"<start_of_turn>user\n", "<end_of_turn>\n<start_of_turn>model\n"};
  fail("passkey: the vocabulary has no chat markers (<|im_start|> or <start_of_turn>); use the "
       "plain prompt format");
}

PasskeyPrompt build_passkey_prompt(const Tokenizer& tokenizer, int64_t length, double depth,
                                   const std::string& key, PasskeyFormat format) {
  const auto text = [&](const std::string& s) { return tokenizer.encode(s, false, false); };
  const auto markup = [&](const std::string& s) { return tokenizer.encode(s, false, true); };

  std::vector<int32_t> head;
  if (tokenizer.vocab().add_bos && tokenizer.bos() >= 0) head.push_back(tokenizer.bos());
  std::vector<int32_t> tail;
  if (format == PasskeyFormat::Chat) {
    const ChatWrap wrap = chat_wrap_for(tokenizer);
    append(head, markup(wrap.before));
    append(tail, text(kQuestion));
    append(tail, markup(wrap.after));
    append(tail, text(kAnswerLead));
  } else {
    append(tail, text(std::string(kQuestion) + " " + kAnswerLead));
  }
  append(head, text(kIntro));
  const std::vector<int32_t> key_ids =
      text(" The pass key is " + key + ". Remember it. " + key + " is the pass key.");

  const int64_t fixed = static_cast<int64_t>(head.size() + key_ids.size() + tail.size());
  const int64_t filler = length - fixed;
  if (filler < 16)
    fail("passkey: a prompt of {} tokens is too short (the fixed parts take {})", length, fixed);

  // Filler: the sentences in turn, the last one cut to make the length exact. Sentence starts
  // are the places the key may go, so it never splits a sentence.
  std::vector<std::vector<int32_t>> sentences;
  for (const char* s : kFiller) sentences.push_back(text(s));
  std::vector<int32_t> fill;
  std::vector<int64_t> starts;
  for (size_t i = 0; static_cast<int64_t>(fill.size()) < filler; ++i) {
    starts.push_back(static_cast<int64_t>(fill.size()));
    append(fill, sentences[i % sentences.size()]);
  }
  fill.resize(static_cast<size_t>(filler));
  starts.push_back(filler);
  const double target = std::clamp(depth, 0.0, 1.0) * static_cast<double>(filler);
  const int64_t at = *std::min_element(starts.begin(), starts.end(), [&](int64_t a, int64_t b) {
    return std::abs(static_cast<double>(a) - target) < std::abs(static_cast<double>(b) - target);
  });

  PasskeyPrompt p;
  p.key = key;
  p.tokens = head;
  p.tokens.insert(p.tokens.end(), fill.begin(), fill.begin() + at);
  p.key_begin = static_cast<int64_t>(p.tokens.size());
  append(p.tokens, key_ids);
  p.key_end = static_cast<int64_t>(p.tokens.size());
  for (int64_t t = p.key_begin; t < p.key_end; ++t)
    if (count_digits(tokenizer.decode(std::vector<int32_t>{p.tokens[static_cast<size_t>(t)]})) > 0)
      p.key_digits.push_back(t);
  p.tokens.insert(p.tokens.end(), fill.begin() + at, fill.end());
  append(p.tokens, tail);
  p.depth = static_cast<double>(p.key_begin) / static_cast<double>(p.tokens.size());
  return p;
}

double passkey_score(const std::string& answer, const std::string& key) {
  std::string digits;
  for (char c : answer)
    if (c >= '0' && c <= '9' && digits.size() < static_cast<size_t>(kKeyDigits)) digits += c;
  int right = 0;
  for (size_t i = 0; i < digits.size() && i < key.size(); ++i) right += digits[i] == key[i];
  return static_cast<double>(right) / kKeyDigits;
}

PasskeyDraw draw_passkey(uint64_t seed, int64_t length, int bin, int bins, int index) {
  uint64_t state = mix(seed);
  state = mix(state ^ static_cast<uint64_t>(length));
  state = mix(state ^ static_cast<uint64_t>(bin));
  state = mix(state ^ static_cast<uint64_t>(index));
  PasskeyDraw d;
  d.key = std::to_string(10000 + state % 90000);
  const double u = static_cast<double>(mix(state) >> 11) * 0x1.0p-53;  // [0, 1)
  d.depth = (bin + u) / bins;
  return d;
}

namespace {

// Mean of field(s) over the samples at `length` (and in `bin`, unless bin < 0); NaN if none.
template <typename Field>
double mean_at(const std::vector<PasskeySample>& samples, int64_t length, int bin, Field field) {
  double sum = 0.0;
  int n = 0;
  for (const auto& s : samples)
    if (s.length == length && (bin < 0 || s.bin == bin)) sum += field(s), ++n;
  return n > 0 ? sum / n : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace

double PasskeyResult::accuracy(int64_t length, int bin) const {
  return mean_at(samples, length, bin, [](const PasskeySample& s) { return s.score; });
}

double PasskeyResult::accuracy(int64_t length) const { return accuracy(length, -1); }

double PasskeyResult::key_kept(int64_t length) const {
  return mean_at(samples, length, -1, [](const PasskeySample& s) { return s.key_kept; });
}

PasskeyResult run_passkey(Session& session, const PasskeyOptions& options) {
  if (options.samples < 1) fail("--samples must be at least 1, got {}", options.samples);
  if (options.bins < 1) fail("passkey: bins must be at least 1, got {}", options.bins);
  if (options.max_new_tokens < 1)
    fail("passkey: max_new_tokens must be at least 1, got {}", options.max_new_tokens);
  const Tokenizer& tok = session.model().tokenizer();
  const int vocab = session.vocab_size();
  PasskeyResult result;
  const int64_t total =
      static_cast<int64_t>(options.lengths.size()) * options.bins * options.samples;
  int64_t done = 0;
  for (int64_t length : options.lengths) {
    for (int bin = 0; bin < options.bins; ++bin) {
      for (int i = 0; i < options.samples; ++i) {
        if (options.cancel && options.cancel->load()) {
          result.cancelled = true;
          return result;
        }
        const auto start = std::chrono::steady_clock::now();
        const PasskeyDraw draw = draw_passkey(options.seed, length, bin, options.bins, i);
        const PasskeyPrompt prompt =
            build_passkey_prompt(tok, length, draw.depth, draw.key, options.format);
        session.reset();
        session.feed(prompt.tokens);
        const double key_kept = fraction_kept(session, prompt.key_digits);
        std::vector<int32_t> out;
        std::string answer;
        for (int t = 0; t < options.max_new_tokens; ++t) {
          const int32_t id = argmax(session.logits(), vocab);
          if (tok.is_eog(id)) break;
          out.push_back(id);
          answer = tok.decode(out);
          // Five digits are all the score reads; more tokens would only cost time.
          if (count_digits(answer) >= kKeyDigits || t + 1 == options.max_new_tokens) break;
          const int32_t next[1] = {id};
          session.feed(next);
        }
        PasskeySample s;
        s.length = length;
        s.bin = bin;
        s.depth = prompt.depth;
        s.key = draw.key;
        s.answer = answer;
        s.score = passkey_score(answer, draw.key);
        s.key_kept = key_kept;
        s.seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        result.samples.push_back(std::move(s));
        ++done;
        if (options.progress) options.progress(done, total);
      }
    }
  }
  return result;
}

}  // namespace kvc
