// kvcascade passkey: passkey retrieval by prompt length x key depth, for one cache policy:
// exact match with its interval, digits right, and the split of failures into retention,
// format and reading. Ctrl-C prints the table over the samples done so far.
#include <atomic>
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/output.h"
#include "eval/passkey.h"
#include "eval/passkey_stats.h"
#include "eval/interrupt.h"
#include "eval/progress_bar.h"

namespace kvc::cli {

namespace {

struct PasskeyFlags {
  ModelFlags model;
  CacheFlags cache;
  std::string lengths = "2048,4096";
  int samples = 4;
  int64_t seed = 1;
  int max_new = 50;
  std::string protocol = "paper";
  std::string haystack;  // default: words (paper) or filler (landmark)
  std::string needle = "passkey";
  std::string words = "/usr/share/dict/words";
  std::string format;    // default: chat (paper) or plain (landmark)
  bool oracle = false;
  int oracle_copies = 0;
  std::string csv;
  bool json = false;
  bool progress = false;
  bool quick = false;
};

std::string bin_label(int b, int bins) {
  return fmt::format("{:.0f}-{:.0f}%", 100.0 * b / bins, 100.0 * (b + 1) / bins);
}

void write_csv(const std::string& path, const PasskeyResult& r, const std::vector<int64_t>& lengths,
               int bins) {
  std::string out = "length,bin,depth_lo,depth_hi,samples,accuracy\n";
  for (int64_t len : lengths)
    for (int b = 0; b < bins; ++b) {
      int n = 0;
      for (const auto& s : r.samples) n += s.length == len && s.bin == b;
      if (n == 0) continue;
      out += fmt::format("{},{},{:.2f},{:.2f},{},{:.4f}\n", len, b, double(b) / bins,
                         double(b + 1) / bins, n, r.accuracy(len, b));
    }
  write_output_file("--csv", path, out);
}

// A length must hold the prompt's fixed parts: a flag error, found before any sample runs.
// The shortest decides (the fixed parts do not grow with the length).
void check_lengths_fit(const Tokenizer& tokenizer, int64_t shortest, const PasskeyOptions& po) {
  const PasskeyDraw draw = draw_passkey(po.seed, shortest, 0, po.bins, 0);
  try {
    build_passkey_prompt(tokenizer, po.task, shortest, draw);
  } catch (const Error& e) {
    usage_error("--lengths: {}", e.what());
  }
}

// The prompts' shape from the flags; fills in the protocol's defaults.
PasskeyTask make_task(PasskeyFlags& f) {
  PasskeyTask t;
  const bool paper = f.protocol == "paper";
  t.protocol = paper ? PasskeyProtocol::Paper : PasskeyProtocol::Landmark;
  if (f.format.empty()) f.format = paper ? "chat" : "plain";
  t.format = f.format == "chat" ? PasskeyFormat::Chat : PasskeyFormat::Plain;
  if (f.haystack.empty()) f.haystack = paper ? "words" : "filler";
  t.needle = f.needle == "multikey" ? Needle::MultiKey : f.needle == "word" ? Needle::Word : Needle::Passkey;
  if (f.haystack == "words") {
    t.haystack = Haystack::Words;
  } else if (f.haystack == "filler") {
    t.haystack = Haystack::Filler;
  } else if (f.haystack.rfind("prose:", 0) == 0 && f.haystack.size() > 6) {
    t.haystack = Haystack::Prose;
    t.prose = load_prose(f.haystack.substr(6));
  } else {
    usage_error("--haystack must be words, filler or prose:FILE, got '{}'", f.haystack);
  }
  if (t.haystack == Haystack::Words || t.needle != Needle::Passkey) t.words = load_word_list(f.words);
  return t;
}

int run_passkey_cmd(PasskeyFlags& f, bool ctx_given) {
  validate(f.model);
  validate(f.cache);
  if (f.samples < 1) usage_error("--samples must be at least 1, got {}", f.samples);
  if (f.seed < 0) usage_error("--seed must be >= 0, got {}", f.seed);
  if (f.max_new < 1) usage_error("--max-new must be at least 1, got {}", f.max_new);
  const std::vector<int64_t> lengths = parse_token_counts("--lengths", f.lengths);
  const int64_t longest = *std::max_element(lengths.begin(), lengths.end());
  const PasskeyTask task = make_task(f);
  if (f.oracle && f.cache.policy != "window")
    usage_error("--oracle replaces the window: give --cache window (the oracle keeps its memory)");
  if (f.oracle_copies < 0) usage_error("--oracle-copies must be >= 0, got {}", f.oracle_copies);
  if (f.oracle_copies > 0 && !f.oracle) usage_error("--oracle-copies needs --oracle");
  if (!f.csv.empty()) check_output_file("--csv", f.csv);

  const auto model = load_model(f.model.model);
  SessionOptions options = session_options(f.model, f.cache);
  const int64_t need = longest + f.max_new;
  if (options.cache.policy == "full" && !ctx_given) options.cache.context = need;
  if (options.cache.policy == "full" && options.cache.context < need)
    fail("--cache full with --ctx-size {} cannot hold a {}-token prompt and its answer",
         options.cache.context, longest);
  if (options.cache.policy == "full" && longest > model->config().context_length)
    std::fprintf(stderr, "warning: prompts of %lld tokens exceed the model's trained context of %lld\n",
                 static_cast<long long>(longest), static_cast<long long>(model->config().context_length));
  Session session(*model, options);

  PasskeyOptions po;
  po.lengths = lengths;
  po.samples = f.samples;
  po.seed = static_cast<uint64_t>(f.seed);
  po.max_new_tokens = f.max_new;
  po.task = task;
  po.oracle = f.oracle;
  po.oracle_copies = f.oracle_copies;
  check_lengths_fit(model->tokenizer(), *std::min_element(lengths.begin(), lengths.end()), po);
  std::fprintf(stderr,
               "passkey: %s | lengths %s | %d samples x %d depth bins | %s protocol, %s haystack, "
               "%s needle, %s prompt | %s, %s KV | %s attention | stride %d | seed %lld\n",
               model->config().name.c_str(), f.lengths.c_str(), f.samples, po.bins,
               f.protocol.c_str(), f.haystack.c_str(), f.needle.c_str(), f.format.c_str(),
               f.oracle ? "oracle: the key's tokens pinned, the rest a window"
                        : describe_cache(options.cache).c_str(),
               format_bytes(session.kv_bytes()).c_str(), describe_attention(options).c_str(),
               options.stride, static_cast<long long>(f.seed));

  ScopedInterrupt interrupt;
  ProgressBar bar("samples", f.progress || ProgressBar::stderr_is_tty());
  po.cancel = interrupt.flag();
  session.set_cancel(interrupt.flag());  // a long prompt stops inside, too
  po.progress = [&](int64_t done, int64_t total) { bar.update(done, total); };
  const PasskeyResult r = run_passkey(session, po);
  bar.finish();
  if (r.cancelled)
    std::fprintf(stderr, "interrupted: partial results over %zu samples\n", r.samples.size());
  // The CSV is written after the results are printed: a failing file loses nothing but itself.
  const auto finish = [&] {
    if (!f.csv.empty()) write_csv(f.csv, r, lengths, po.bins);
    return r.cancelled ? 130 : 0;
  };

  if (f.json) {
    nlohmann::json samples = nlohmann::json::array();
    for (const auto& s : r.samples)
      samples.push_back({{"length", s.length}, {"bin", s.bin}, {"index", s.index},
                         {"depth", s.depth}, {"key", s.key}, {"answer", s.answer},
                         {"score", s.score}, {"exact", s.exact}, {"digits", s.digits},
                         {"key_kept", s.key_kept}, {"key_intact", s.key_intact},
                         {"seconds", s.seconds}});
    nlohmann::json table = nlohmann::json::array();
    for (int64_t len : lengths) {
      nlohmann::json row = nlohmann::json::array();
      for (int b = 0; b < po.bins; ++b) {
        const double a = r.accuracy(len, b);
        row.push_back(std::isnan(a) ? nlohmann::json(nullptr) : nlohmann::json(a));
      }
      const double m = r.accuracy(len), kept = r.key_kept(len);
      const auto number = [](double x) { return std::isnan(x) ? nlohmann::json(nullptr) : nlohmann::json(x); };
      const PasskeySummary sum = summarize(r.samples, len);
      table.push_back({{"length", len}, {"by_bin", row}, {"accuracy", number(m)},
                       {"key_kept", number(kept)}, {"n", sum.n}, {"exact", sum.exact},
                       {"exact_ci", {sum.exact_ci.lo, sum.exact_ci.hi}},
                       {"digits_ci", {sum.digits_ci.lo, sum.digits_ci.hi}},
                       {"key_intact", sum.intact}, {"retained", sum.retained},
                       {"well_formed", sum.formed}, {"read", sum.read}});
    }
    nlohmann::json out = {
        {"model", model->config().name},
        {"model_file", f.model.model},
        {"format", f.format},
        {"protocol", f.protocol},
        {"haystack", f.haystack},
        {"needle", f.needle},
        {"oracle", f.oracle},
        {"oracle_copies", f.oracle_copies},
        {"seed", f.seed},
        {"samples_per_bin", f.samples},
        {"bins", po.bins},
        {"cancelled", r.cancelled},
        {"threads", f.model.threads},
        {"cache", cache_json(options.cache, options.stride)},
        {"attention", describe_attention(options)},
        {"kv_bytes", session.kv_bytes()},
        {"table", table},
        {"samples", samples},
    };
    print_json(out, 2);
    return finish();
  }

  std::printf("%-8s", "length");
  for (int b = 0; b < po.bins; ++b) std::printf(" %8s", bin_label(b, po.bins).c_str());
  std::printf(" %5s %17s %17s %6s %6s %9s %9s %9s\n", "n", "exact [95% CI]", "digits [95% CI]",
              "kept", "intact", "retained", "formed", "read");
  for (int64_t len : lengths) {
    std::printf("%-8lld", static_cast<long long>(len));
    for (int b = 0; b < po.bins; ++b) {
      const double a = r.accuracy(len, b);
      if (std::isnan(a)) std::printf(" %8s", "-");
      else std::printf(" %8.2f", a);
    }
    const PasskeySummary sm = summarize(r.samples, len);
    if (sm.n == 0) {
      std::printf(" %5d\n", 0);
      continue;
    }
    std::printf(" %5lld %5.2f [%.2f,%.2f] %5.2f [%.2f,%.2f] %6.2f %6.2f %9s %9s %9s\n",
                static_cast<long long>(sm.n), sm.exact, sm.exact_ci.lo, sm.exact_ci.hi, sm.digits,
                sm.digits_ci.lo, sm.digits_ci.hi, sm.kept, sm.intact,
                fmt::format("{}/{}", sm.retained, sm.n).c_str(),
                fmt::format("{}/{}", sm.formed, sm.n).c_str(),
                fmt::format("{}/{}", sm.read, sm.retained).c_str());
  }
  std::fprintf(stderr,
               "by bin: digits right; exact: whole key (Wilson interval); digits: bootstrap over "
               "prompts; kept: share of the key's tokens the caches held at the question; intact: "
               "share of caches holding a whole statement; retained: prompts where every cache "
               "did; formed: answers of the key's form; read: retained prompts answered exactly\n");
  double secs = 0;
  for (const auto& s : r.samples) secs += s.seconds;
  std::fprintf(stderr, "%zu samples in %s%s\n", r.samples.size(), format_duration(secs).c_str(),
               r.cancelled ? ", interrupted" : "");
  return finish();
}

}  // namespace

Command add_passkey(CLI::App& root) {
  auto flags = std::make_shared<PasskeyFlags>();
  CLI::App* app = root.add_subcommand(
      "passkey", "passkey retrieval accuracy by prompt length and key depth");
  add_model_flags(*app, flags->model);
  add_cache_flags(*app, flags->cache);
  app->add_option("--lengths", flags->lengths, "prompt lengths in tokens, comma-separated (4k = 4096)");
  app->add_option("--samples", flags->samples, "samples per length and depth bin");
  app->add_option("--seed", flags->seed, "seed of the keys and depths");
  app->add_option("--max-new", flags->max_new, "tokens to decode for the answer (at most)");
  app->add_option("--protocol", flags->protocol,
                  "paper (the cascade paper's final code: word haystack, six-copy needle) or "
                  "landmark (repeated filler, the key twice)")
      ->check(CLI::IsMember({"paper", "landmark"}));
  app->add_option("--haystack", flags->haystack,
                  "words (random dictionary words), filler (repeated sentences) or prose:FILE "
                  "(a text read from a random place); default: the protocol's");
  app->add_option("--needle", flags->needle,
                  "passkey (a 5-digit key), multikey (four keyed numbers, one asked) or word (a "
                  "keyed word)")
      ->check(CLI::IsMember({"passkey", "multikey", "word"}));
  app->add_option("--words", flags->words, "word list for the words haystack and keyed needles");
  app->add_option("--format", flags->format,
                  "prompt: plain (base-style completion) or chat (user turn, the reply opened with "
                  "the answer prefix); default: chat (paper) or plain (landmark)")
      ->check(CLI::IsMember({"plain", "chat"}));
  app->add_flag("--oracle", flags->oracle,
                "pin each prompt's key tokens like sinks and keep the rest a window, at the same "
                "memory (with --cache window): can the model read a retained key?");
  app->add_option("--oracle-copies", flags->oracle_copies,
                  "with --oracle: pin only the first N statements of the key (0: all)");
  app->add_option("--csv", flags->csv, "write the accuracy table as CSV to FILE");
  app->add_flag("--json", flags->json, "print one JSON object (table and every sample)");
  app->add_flag("--progress", flags->progress, "progress bar even when stderr is not a terminal");
  app->add_flag("--quick", flags->quick,
                "a short run (lengths 1024, 2 samples per bin, cache 64 + 256) that finishes in "
                "minutes on two cores; explicit flags still win");
  return {app, [flags, app] {
            PasskeyFlags& f = *flags;
            if (f.quick) {
              if (app->count("--lengths") == 0) f.lengths = "1024";
              if (app->count("--samples") == 0) f.samples = 2;
              if (app->count("--cache-size") == 0) {
                f.cache.cache_size = 256;
                f.cache.cache_size_name = "--quick's cache size";
              }
            }
            return run_passkey_cmd(f, app->count("--ctx-size") > 0);
          }};
}

}  // namespace kvc::cli
