// kvcascade perplexity: streams a text through the model with one cache policy and reports the
// perplexity over the whole stream and per position bucket. Ctrl-C prints what was scored so far.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/output.h"
#include "eval/cache_census.h"
#include "eval/perplexity.h"
#include "eval/interrupt.h"
#include "eval/progress_bar.h"

namespace kvc::cli {

namespace {

struct PerplexityFlags {
  ModelFlags model;
  CacheFlags cache;
  std::string file;
  int64_t max_tokens = 0;  // 0: the whole text
  int64_t bucket = 4096;
  bool json = false;
  bool progress = false;
  bool quick = false;
  std::string slots_out;
};

// The slots as text: "layer head index position age score", one a line.
std::string slots_text(const CacheCensus& census) {
  std::ostringstream out;
  out << "# stream_length " << census.stream_length << "\n# layer head index position age score\n";
  for (const auto& s : census.slots)
    out << s.layer << ' ' << s.head << ' ' << s.index << ' ' << s.position << ' '
        << census.stream_length - 1 - s.index << ' ' << s.score << '\n';
  return out.str();
}

int run_perplexity(PerplexityFlags& f, bool ctx_given) {
  validate(f.model);
  validate(f.cache);
  if (f.max_tokens < 0 || f.max_tokens == 1)
    usage_error("--max-tokens must be 0 (the whole text) or at least 2 (the first token is "
                "only read, each later one is scored), got {}",
                f.max_tokens);
  if (f.bucket < 1) usage_error("--bucket must be at least 1, got {}", f.bucket);
  if (!f.slots_out.empty()) check_output_file("--slots-out", f.slots_out);
  const std::string text = read_text_file(f.file, "text file");

  const auto model = load_model(f.model.model);
  std::vector<int32_t> tokens = model->tokenizer().encode(text, /*add_special=*/true,
                                                          /*parse_special=*/false);
  if (f.max_tokens > 0 && static_cast<int64_t>(tokens.size()) > f.max_tokens)
    tokens.resize(static_cast<size_t>(f.max_tokens));
  if (tokens.size() < 2) fail("'{}' gives {} tokens; perplexity needs at least 2", f.file, tokens.size());

  SessionOptions options = session_options(f.model, f.cache);
  const int64_t n = static_cast<int64_t>(tokens.size());
  // The full cache must hold the whole stream; size it to the text unless -c says otherwise.
  if (options.cache.policy == "full" && !ctx_given) options.cache.context = n;
  if (options.cache.policy == "full" && options.cache.context < n)
    fail("--cache full with --ctx-size {} cannot hold the {} tokens of the text (raise -c, lower "
         "--max-tokens, or use a bounded --cache)",
         options.cache.context, n);
  if (options.cache.policy == "full" && n > model->config().context_length)
    std::fprintf(stderr, "warning: %lld tokens exceed the model's trained context of %lld\n",
                 static_cast<long long>(n), static_cast<long long>(model->config().context_length));

  Session session(*model, options);
  std::fprintf(stderr,
               "perplexity: %s | %lld tokens of '%s' | %s, %s KV | %s attention | stride %d | %d "
               "threads\n",
               model->config().name.c_str(), static_cast<long long>(n), f.file.c_str(),
               describe_cache(options.cache).c_str(), format_bytes(session.kv_bytes()).c_str(),
               describe_attention(options).c_str(),
               options.stride, f.model.threads);

  ScopedInterrupt interrupt;
  ProgressBar bar("tok", f.progress || ProgressBar::stderr_is_tty());
  PerplexityOptions po;
  po.bucket = f.bucket;
  po.cancel = interrupt.flag();
  session.set_cancel(interrupt.flag());  // a long stride stops inside, too
  po.progress = [&](int64_t done, int64_t total) { bar.update(done, total); };
  const PerplexityResult r = streaming_perplexity(session, tokens, po);
  bar.finish();

  // The caches as the stream left them: which tokens survived. Written after the results are
  // printed, so a failing file loses nothing but itself.
  const auto write_slots = [&] {
    if (!f.slots_out.empty() && !r.cancelled)
      write_output_file("--slots-out", f.slots_out, slots_text(take_census(session)));
  };
  if (r.cancelled) std::fprintf(stderr, "interrupted: partial results over %lld of %lld tokens\n",
                                static_cast<long long>(r.tokens_fed), static_cast<long long>(n));

  if (f.json) {
    nlohmann::json buckets = nlohmann::json::array();
    for (const auto& b : r.buckets)
      buckets.push_back({{"begin", b.begin}, {"end", b.end}, {"count", b.sum.count},
                         {"nll", b.sum.mean()}, {"ppl", b.sum.ppl()}});
    nlohmann::json out = {
        {"model", model->config().name},
        {"model_file", f.model.model},
        {"text_file", f.file},
        {"tokens", n},
        {"tokens_fed", r.tokens_fed},
        {"scored", r.total.count},
        {"nll", r.total.mean()},
        {"ppl", r.total.ppl()},
        {"seconds", r.seconds},
        {"tokens_per_s", r.tokens_per_second()},
        {"cancelled", r.cancelled},
        {"threads", f.model.threads},
        {"cache", cache_json(options.cache, options.stride)},
        {"attention", describe_attention(options)},
        {"kv_bytes", session.kv_bytes()},
        {"bucket", f.bucket},
        {"buckets", buckets},
    };
    print_json(out, 2);
    write_slots();
    return r.cancelled ? 130 : 0;
  }
  std::printf("%-17s %8s %10s\n", "tokens", "scored", "ppl");
  for (const auto& b : r.buckets)
    std::printf("%7lld-%-9lld %8lld %10.4f\n", static_cast<long long>(b.begin),
                static_cast<long long>(std::min(b.end, n)), static_cast<long long>(b.sum.count),
                b.sum.ppl());
  std::printf("%-17s %8lld %10.4f\n", "all", static_cast<long long>(r.total.count), r.total.ppl());
  std::fprintf(stderr, "%lld tokens in %s (%.1f t/s)%s\n", static_cast<long long>(r.tokens_fed),
               format_duration(r.seconds).c_str(), r.tokens_per_second(),
               r.cancelled ? ", interrupted" : "");
  write_slots();
  return r.cancelled ? 130 : 0;
}

}  // namespace

Command add_perplexity(CLI::App& root) {
  auto flags = std::make_shared<PerplexityFlags>();
  CLI::App* app = root.add_subcommand(
      "perplexity", "streaming perplexity of a text, overall and per position bucket");
  add_model_flags(*app, flags->model);
  add_cache_flags(*app, flags->cache);
  app->add_option("-f,--file", flags->file, "UTF-8 text to score (e.g. data/kjv.txt)")->required();
  app->add_option("--max-tokens", flags->max_tokens, "score only the first N tokens (0: all)");
  app->add_option("--bucket", flags->bucket, "position bucket width in tokens");
  app->add_flag("--json", flags->json, "print one JSON object");
  app->add_flag("--progress", flags->progress, "progress bar even when stderr is not a terminal");
  app->add_flag("--quick", flags->quick,
                "a short run (the first 4096 tokens, 1024-token buckets, cache 64 + 512) that "
                "finishes in minutes on two cores; explicit flags still win");
  app->add_option("--slots-out", flags->slots_out,
                  "after the run, stream the text once more and write the slots the cache keeps "
                  "(layer head index position age score) to FILE");
  return {app, [flags, app] {
            PerplexityFlags& f = *flags;
            if (f.quick) {
              if (app->count("--max-tokens") == 0) f.max_tokens = 4096;
              if (app->count("--bucket") == 0) f.bucket = 1024;
              if (app->count("--cache-size") == 0) {
                f.cache.cache_size = 512;
                f.cache.cache_size_name = "--quick's cache size";
              }
            }
            return run_perplexity(f, app->count("--ctx-size") > 0);
          }};
}

}  // namespace kvc::cli
