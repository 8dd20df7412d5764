// kvcascade passkey: passkey retrieval accuracy by prompt length x key depth, for one cache
// policy. Ctrl-C prints the table over the samples done so far.
#include <atomic>
#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/output.h"
#include "eval/passkey.h"
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
  int max_new = 8;
  std::string format = "plain";
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
    build_passkey_prompt(tokenizer, shortest, draw.depth, draw.key, po.format);
  } catch (const Error& e) {
    usage_error("--lengths: {}", e.what());
  }
}

int run_passkey_cmd(PasskeyFlags& f, bool ctx_given) {
  validate(f.model);
  validate(f.cache);
  if (f.samples < 1) usage_error("--samples must be at least 1, got {}", f.samples);
  if (f.seed < 0) usage_error("--seed must be >= 0, got {}", f.seed);
  if (f.max_new < 1) usage_error("--max-new must be at least 1, got {}", f.max_new);
  const std::vector<int64_t> lengths = parse_token_counts("--lengths", f.lengths);
  const int64_t longest = *std::max_element(lengths.begin(), lengths.end());
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
  po.format = f.format == "plain" ? PasskeyFormat::Plain : PasskeyFormat::Chat;
  check_lengths_fit(model->tokenizer(), *std::min_element(lengths.begin(), lengths.end()), po);
  std::fprintf(stderr,
               "passkey: %s | lengths %s | %d samples x %d depth bins | %s prompt | %s, %s KV | "
               "stride %d | seed %lld\n",
               model->config().name.c_str(), f.lengths.c_str(), f.samples, po.bins,
               f.format.c_str(), describe_cache(options.cache).c_str(),
               format_bytes(session.kv_bytes()).c_str(), options.stride,
               static_cast<long long>(f.seed));

  ScopedInterrupt interrupt;
  ProgressBar bar("samples", f.progress || ProgressBar::stderr_is_tty());
  po.cancel = interrupt.flag();
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
      samples.push_back({{"length", s.length}, {"bin", s.bin}, {"depth", s.depth},
                         {"key", s.key}, {"answer", s.answer}, {"score", s.score},
                         {"key_kept", s.key_kept},
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
      table.push_back({{"length", len}, {"by_bin", row}, {"accuracy", number(m)},
                       {"key_kept", number(kept)}});
    }
    nlohmann::json out = {
        {"model", model->config().name},
        {"model_file", f.model.model},
        {"format", f.format},
        {"seed", f.seed},
        {"samples_per_bin", f.samples},
        {"bins", po.bins},
        {"cancelled", r.cancelled},
        {"threads", f.model.threads},
        {"cache", cache_json(options.cache, options.stride)},
        {"kv_bytes", session.kv_bytes()},
        {"table", table},
        {"samples", samples},
    };
    print_json(out, 2);
    return finish();
  }

  std::printf("%-8s", "length");
  for (int b = 0; b < po.bins; ++b) std::printf(" %8s", bin_label(b, po.bins).c_str());
  std::printf(" %8s %8s\n", "mean", "kept");
  for (int64_t len : lengths) {
    std::printf("%-8lld", static_cast<long long>(len));
    for (int b = 0; b < po.bins; ++b) {
      const double a = r.accuracy(len, b);
      if (std::isnan(a)) std::printf(" %8s", "-");
      else std::printf(" %8.2f", a);
    }
    for (const double x : {r.accuracy(len), r.key_kept(len)}) {
      if (std::isnan(x)) std::printf(" %8s", "-");
      else std::printf(" %8.2f", x);
    }
    std::printf("\n");
  }
  std::fprintf(stderr, "kept: the share of the key's digit tokens the policy's caches still held when "
                       "the question had been read\n");
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
  app->add_option("--max-new", flags->max_new, "tokens to decode for the answer");
  app->add_option("--format", flags->format,
                  "prompt: plain (base-style completion, the reference protocol) or chat (user turn, reply opened with 'The pass key is')")
      ->check(CLI::IsMember({"plain", "chat"}));
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
