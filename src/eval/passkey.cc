#include "eval/passkey.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "base/cancelled.h"
#include "base/error.h"
#include "engine/session.h"
#include "eval/cache_census.h"
#include "tokenizer/tokenizer.h"

namespace kvc {

namespace {

constexpr int kKeyDigits = 5;

// The landmark protocol's wording (Landmark Attention, reused by the paper's first submission).
constexpr const char* kLandmarkIntro =
    "There is an important info hidden inside a lot of irrelevant text. Find it and memorize "
    "it. I will quiz you about the important information there.";
constexpr std::array<const char*, 5> kFiller = {
    " The grass is green.", " The sky is blue.", " The sun is yellow.", " Here we go.",
    " There and back again."};

// splitmix64: a fixed, portable mixer, so draws do not depend on the standard library.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// A tiny deterministic generator over mix().
struct Draws {
  uint64_t state;
  uint64_t next() { return state = mix(state); }
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  std::string key() { return std::to_string(10000 + next() % 90000); }
};

void append(std::vector<int32_t>& out, const std::vector<int32_t>& ids) {
  out.insert(out.end(), ids.begin(), ids.end());
}

int32_t argmax(const float* x, int n) {
  return static_cast<int32_t>(std::max_element(x, x + n) - x);
}

int count_digits(const std::string& s) {
  return static_cast<int>(std::count_if(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }));
}

// The first n digits of a text, wherever they stand (the scorer reads nothing else).
std::string first_digits(const std::string& text, size_t n) {
  std::string digits;
  for (char c : text)
    if (c >= '0' && c <= '9' && digits.size() < n) digits += c;
  return digits;
}

// True once the text holds a word followed by something that is not a letter.
bool word_complete(const std::string& text) {
  const auto letter = [](char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; };
  const auto first = std::find_if(text.begin(), text.end(), letter);
  return std::find_if_not(first, text.end(), letter) != text.end();
}

bool is_numeric(const std::string& key) { return !key.empty() && count_digits(key) == static_cast<int>(key.size()); }

// Text of a needle: plain pieces, and statements of the key (each tokenized on its own so the
// key's token indices are known exactly).
struct Piece {
  std::string text;
  bool is_key = false;
};

// The wording of one task: what comes before the haystack, the needles, the question.
struct Wording {
  std::string intro;
  std::string question;
  std::string answer_lead;
  std::vector<Piece> needle;  // the asked needle
};

std::vector<Piece> paper_needle(const std::string& k) {
  // "HERE IS THE PASSKEY! The pass key is {k}. {k} is the pass key. **the pass key is {k}**
  // LOOK BEHIND FOR PASSKEY", twice, between markers (cascade/dataset/passkey.py).
  std::vector<Piece> line = {{"HERE IS THE PASSKEY! The pass key is"}, {" " + k, true}, {"."},
                             {" " + k, true}, {" is the pass key. **the pass key is"},
                             {" " + k, true}, {"** LOOK BEHIND FOR PASSKEY"}};
  std::vector<Piece> out = {{"\n=== NOW IMPORTANT INFORMATION STARTS ===\n"}};
  out.insert(out.end(), line.begin(), line.end());
  out.push_back({"\nREPEAT THE INFORMATION\n"});
  out.insert(out.end(), line.begin(), line.end());
  out.push_back({"\n=== IMPORTANT INFORMATION STOPS ===\n"});
  return out;
}

std::vector<Piece> keyed_needle(const std::string& kind, const std::string& word, const std::string& value) {
  // RULER's niah template: "One of the special magic {kind} for {key} is: {value}."
  return {{" One of the special magic " + kind + " for " + word + " is:"}, {" " + value, true}, {"."}};
}

Wording wording(const PasskeyTask& task, const std::string& key, const std::string& word) {
  Wording w;
  if (task.needle == Needle::MultiKey || task.needle == Needle::Word) {
    const std::string kind = task.needle == Needle::Word ? "words" : "numbers";
    const std::string one = task.needle == Needle::Word ? "word" : "number";
    w.intro = "Some special magic " + kind + " are hidden within the following text. Make sure to "
              "memorize it. I will quiz you about the " + kind + " afterwards.";
    w.question = " What is the special magic " + one + " for " + word + " mentioned in the provided text?";
    w.answer_lead = "The special magic " + one + " for " + word + " mentioned in the provided text is";
    w.needle = keyed_needle(kind, word, key);
    return w;
  }
  if (task.protocol == PasskeyProtocol::Paper) {
    w.intro = "There is a 5-digit pass key hidden in a lot of irrelevant text. Find the pass key "
              "and memorize it. You will have to repeat the pass key.";
    w.question = " So now, I will ask the question. What is the five digit pass key?";
    w.answer_lead = "I surely remember the five digit pass key. The pass key is $:";
    w.needle = paper_needle(key);
    return w;
  }
  w.intro = kLandmarkIntro;
  w.question = " What is the pass key?";
  w.answer_lead = "The pass key is";
  w.needle = {{" The pass key is"}, {" " + key, true}, {". Remember it."}, {" " + key, true},
              {" is the pass key."}};
  return w;
}

// A tokenized needle: its ids and, per statement of the key, the indices (from the needle's
// start) of the tokens that carry it.
struct NeedleTokens {
  std::vector<int32_t> ids;
  std::vector<std::vector<int64_t>> copies;
};

NeedleTokens tokenize_needle(const Tokenizer& tok, const std::vector<Piece>& pieces, bool numeric) {
  NeedleTokens n;
  for (const Piece& p : pieces) {
    const std::vector<int32_t> ids = tok.encode(p.text, false, false);
    if (p.is_key) {
      std::vector<int64_t> copy;
      for (size_t i = 0; i < ids.size(); ++i) {
        // A numeric key lives in its digit tokens (the space before it is not the key).
        const bool carries = !numeric || count_digits(tok.decode(std::vector<int32_t>{ids[i]})) > 0;
        if (carries) copy.push_back(static_cast<int64_t>(n.ids.size() + i));
      }
      n.copies.push_back(std::move(copy));
    }
    append(n.ids, ids);
  }
  return n;
}

// The haystack's pieces in order, as token lists: a needle may go before any of them.
std::vector<std::vector<int32_t>> haystack_pieces(const Tokenizer& tok, const PasskeyTask& task,
                                                  int64_t tokens, Draws& rng) {
  std::vector<std::vector<int32_t>> out;
  int64_t have = 0;
  const auto add = [&](const std::string& text) {
    out.push_back(tok.encode(text, false, false));
    have += static_cast<int64_t>(out.back().size());
  };
  switch (task.haystack) {
    case Haystack::Filler: {
      std::vector<std::vector<int32_t>> sentences;
      for (const char* s : kFiller) sentences.push_back(tok.encode(s, false, false));
      for (size_t i = 0; have < tokens; ++i) {
        out.push_back(sentences[i % sentences.size()]);
        have += static_cast<int64_t>(out.back().size());
      }
      break;
    }
    case Haystack::Words: {
      if (!task.words || task.words->empty()) fail("passkey: the words haystack needs a word list");
      while (have < tokens) add(" " + (*task.words)[rng.below(task.words->size())]);
      break;
    }
    case Haystack::Prose: {
      if (!task.prose || task.prose->empty()) fail("passkey: the prose haystack needs a text");
      const auto& words = *task.prose;
      for (size_t i = rng.below(words.size()); have < tokens; i = (i + 1) % words.size())
        add(" " + words[i]);
      break;
    }
  }
  return out;
}

// A dictionary word fit to be a key: lower-case letters only, 4 to 10 of them.
std::string key_word(const PasskeyTask& task, Draws& rng) {
  if (!task.words || task.words->empty()) fail("passkey: this needle needs a word list");
  for (int tries = 0; tries < 10000; ++tries) {
    const std::string& w = (*task.words)[rng.below(task.words->size())];
    if (w.size() >= 4 && w.size() <= 10 &&
        std::all_of(w.begin(), w.end(), [](char c) { return c >= 'a' && c <= 'z'; }))
      return w;
  }
  fail("passkey: the word list has no plain lower-case words");
}

}  // namespace

std::shared_ptr<const std::vector<std::string>> load_word_list(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail("cannot read the word list '{}' (Debian's wamerican package installs /usr/share/dict/words)", path);
  auto words = std::make_shared<std::vector<std::string>>();
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) words->push_back(line);
  }
  if (words->size() < 100) fail("the word list '{}' has only {} words", path, words->size());
  return words;
}

std::shared_ptr<const std::vector<std::string>> load_prose(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read the prose haystack '{}'", path);
  auto words = std::make_shared<std::vector<std::string>>();
  for (std::string w; in >> w;) words->push_back(w);
  if (words->size() < 1000) fail("the prose haystack '{}' has only {} words", path, words->size());
  return words;
}

ChatWrap chat_wrap_for(const Tokenizer& tokenizer) {
  if (tokenizer.find_token("<|im_start|>") >= 0)
    return {"<|im_start|>user\n", "<|im_end|>\n<|im_start|>assistant\n"};
  if (tokenizer.find_token("<start_of_turn>") >= 0)
    return {"<start_of_turn>user\n", "<end_of_turn>\n<start_of_turn>model\n"};
  fail("passkey: the vocabulary has no chat markers (<|im_start|> or <start_of_turn>); use the "
       "plain prompt format");
}

PasskeyPrompt build_passkey_prompt(const Tokenizer& tokenizer, const PasskeyTask& task,
                                   int64_t length, const PasskeyDraw& draw) {
  const auto text = [&](const std::string& s) { return tokenizer.encode(s, false, false); };
  const auto markup = [&](const std::string& s) { return tokenizer.encode(s, false, true); };
  Draws rng{draw.stream};

  const bool keyed = task.needle == Needle::MultiKey || task.needle == Needle::Word;
  const std::string word = keyed ? key_word(task, rng) : "";
  const std::string key = task.needle == Needle::Word ? key_word(task, rng) : draw.key;
  const Wording w = wording(task, key, word);
  const bool numeric = task.needle != Needle::Word;

  std::vector<int32_t> head;
  if (tokenizer.vocab().add_bos && tokenizer.bos() >= 0) head.push_back(tokenizer.bos());
  std::vector<int32_t> tail;
  const bool newline = task.protocol == PasskeyProtocol::Paper || keyed;
  if (task.format == PasskeyFormat::Chat) {
    const ChatWrap wrap = chat_wrap_for(tokenizer);
    append(head, markup(wrap.before));
    append(tail, text((newline ? "\n" : "") + w.question.substr(newline ? 1 : 0)));
    append(tail, markup(wrap.after));
    append(tail, text(w.answer_lead));
  } else {
    append(tail, text((newline ? "\n" : "") + w.question.substr(newline ? 1 : 0) + " " + w.answer_lead));
  }
  append(head, text(w.intro + (newline ? "\n" : "")));

  // The needles: the asked one, and for multikey three more with other words and keys.
  struct Placed {
    NeedleTokens tokens;
    double depth;
    bool asked;
  };
  std::vector<Placed> needles = {{tokenize_needle(tokenizer, w.needle, numeric), draw.depth, true}};
  if (task.needle == Needle::MultiKey)
    for (int i = 0; i < 3; ++i) {
      std::string other = key_word(task, rng);
      while (other == word) other = key_word(task, rng);
      needles.push_back({tokenize_needle(tokenizer, keyed_needle("numbers", other, rng.key()), true),
                         rng.unit(), false});
    }
  int64_t needle_tokens = 0;
  for (const Placed& p : needles) needle_tokens += static_cast<int64_t>(p.tokens.ids.size());

  const int64_t fixed = static_cast<int64_t>(head.size() + tail.size()) + needle_tokens;
  const int64_t filler = length - fixed;
  if (filler < 16)
    fail("passkey: a prompt of {} tokens is too short (the fixed parts take {})", length, fixed);

  // The haystack, its last piece cut to make the length exact. Piece starts are the places a
  // needle may go, so it never splits a word or sentence.
  std::vector<int32_t> hay;
  std::vector<int64_t> starts;
  for (const auto& piece : haystack_pieces(tokenizer, task, filler, rng)) {
    starts.push_back(static_cast<int64_t>(hay.size()));
    append(hay, piece);
  }
  hay.resize(static_cast<size_t>(filler));
  starts.push_back(filler);
  const auto nearest_start = [&](double depth) {
    const double target = std::clamp(depth, 0.0, 1.0) * static_cast<double>(filler);
    return *std::min_element(starts.begin(), starts.end(), [&](int64_t a, int64_t b) {
      return std::abs(static_cast<double>(a) - target) < std::abs(static_cast<double>(b) - target);
    });
  };
  std::vector<std::pair<int64_t, size_t>> order;  // haystack offset, needle
  for (size_t i = 0; i < needles.size(); ++i) order.push_back({nearest_start(needles[i].depth), i});
  std::stable_sort(order.begin(), order.end());

  PasskeyPrompt p;
  p.key = key;
  p.tokens = head;
  int64_t at = 0;
  for (const auto& [offset, i] : order) {
    p.tokens.insert(p.tokens.end(), hay.begin() + at, hay.begin() + offset);
    at = offset;
    const int64_t begin = static_cast<int64_t>(p.tokens.size());
    append(p.tokens, needles[i].tokens.ids);
    if (!needles[i].asked) continue;
    p.key_begin = begin;
    p.key_end = static_cast<int64_t>(p.tokens.size());
    for (const auto& copy : needles[i].tokens.copies) {
      std::vector<int64_t> abs;
      for (int64_t t : copy) abs.push_back(begin + t);
      p.key_digits.insert(p.key_digits.end(), abs.begin(), abs.end());
      p.key_copies.push_back(std::move(abs));
    }
  }
  p.tokens.insert(p.tokens.end(), hay.begin() + at, hay.end());
  append(p.tokens, tail);
  p.depth = static_cast<double>(p.key_begin) / static_cast<double>(p.tokens.size());
  return p;
}

PasskeyPrompt build_passkey_prompt(const Tokenizer& tokenizer, int64_t length, double depth,
                                   const std::string& key, PasskeyFormat format) {
  PasskeyTask task;
  task.protocol = PasskeyProtocol::Landmark;
  task.haystack = Haystack::Filler;
  task.format = format;
  PasskeyDraw draw;
  draw.key = key;
  draw.depth = depth;
  return build_passkey_prompt(tokenizer, task, length, draw);
}

double passkey_score(const std::string& answer, const std::string& key) {
  const std::string digits = first_digits(answer, kKeyDigits);
  int right = 0;
  for (size_t i = 0; i < digits.size() && i < key.size(); ++i) right += digits[i] == key[i];
  return static_cast<double>(right) / kKeyDigits;
}

bool passkey_exact(const std::string& answer, const std::string& key) {
  if (is_numeric(key)) return first_digits(answer, key.size()) == key;
  std::string word;
  size_t i = 0;
  while (i < answer.size() && !std::isalpha(static_cast<unsigned char>(answer[i]))) ++i;
  for (; i < answer.size() && std::isalpha(static_cast<unsigned char>(answer[i])); ++i)
    word += static_cast<char>(std::tolower(static_cast<unsigned char>(answer[i])));
  return word == key;
}

bool well_formed(const PasskeySample& s) {
  if (is_numeric(s.key)) return s.digits >= static_cast<int>(s.key.size());
  return std::any_of(s.answer.begin(), s.answer.end(), [](char c) { return std::isalpha(static_cast<unsigned char>(c)); });
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
  d.stream = mix(state ^ 0x5eedull);
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
  const CacheConfig policy = session.options().cache;
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
        try {
          const PasskeyPrompt prompt = build_passkey_prompt(tok, options.task, length, draw);
          if (options.oracle) {
            CacheConfig pinned = policy;
            pinned.policy = "oracle";
            pinned.pinned.clear();
            const size_t copies = options.oracle_copies > 0
                                      ? std::min(prompt.key_copies.size(), static_cast<size_t>(options.oracle_copies))
                                      : prompt.key_copies.size();
            for (size_t c = 0; c < copies; ++c)
              pinned.pinned.insert(pinned.pinned.end(), prompt.key_copies[c].begin(),
                                   prompt.key_copies[c].end());
            session.reconfigure(pinned);
          } else {
            session.reset();
          }
          session.feed(prompt.tokens);
          const double key_kept = fraction_kept(session, prompt.key_digits);
          const double key_intact = fraction_intact(session, prompt.key_copies);
          std::vector<int32_t> out;
          std::string answer;
          const bool numeric = is_numeric(prompt.key);
          for (int t = 0; t < options.max_new_tokens; ++t) {
            const int32_t id = argmax(session.logits(), vocab);
            if (tok.is_eog(id)) break;
            out.push_back(id);
            answer = tok.decode(out);
            // Five digits (or a word and what follows it) are all the score reads.
            if (numeric && count_digits(answer) >= kKeyDigits) break;
            if (!numeric && word_complete(answer)) break;
            if (t + 1 == options.max_new_tokens) break;
            const int32_t next[1] = {id};
            session.feed(next);
          }
          PasskeySample s;
          s.length = length;
          s.bin = bin;
          s.index = i;
          s.depth = prompt.depth;
          s.key = prompt.key;
          s.answer = answer;
          s.score = numeric ? passkey_score(answer, prompt.key) : passkey_exact(answer, prompt.key);
          s.exact = passkey_exact(answer, prompt.key);
          s.digits = count_digits(answer);
          s.key_kept = key_kept;
          s.key_intact = key_intact;
          s.seconds =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          result.samples.push_back(std::move(s));
        } catch (const Cancelled&) {  // the session's cancel flag stopped a feed mid-sample
          result.cancelled = true;
          if (options.oracle) session.reconfigure(policy);
          return result;
        }
        ++done;
        if (options.progress) options.progress(done, total);
      }
    }
  }
  if (options.oracle) session.reconfigure(policy);
  return result;
}

}  // namespace kvc
