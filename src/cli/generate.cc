// kvcascade generate: one prompt in, streamed text out (or one JSON object with --json).
#include <chrono>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "base/cancelled.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "engine/generation.h"
#include "eval/interrupt.h"

namespace kvc::cli {

namespace {

struct GenerateFlags {
  ModelFlags model;
  CacheFlags cache;
  SamplingFlags sampling;
  PromptFlags prompt;
  bool json = false;
  int64_t report_every = 0;
  bool ignore_eos = false;
};

int run_generate(GenerateFlags& f) {
  validate(f.model);
  validate(f.cache);
  validate(f.sampling);
  validate(f.prompt);
  if (f.report_every < 0) usage_error("--report-every must be >= 0, got {}", f.report_every);
  const std::string text = read_prompt(f.prompt);

  const auto model = load_model(f.model.model);
  const Tokenizer& tokenizer = model->tokenizer();
  std::vector<int32_t> history = tokenizer.encode(text, /*add_special=*/true, /*parse_special=*/true);
  if (history.empty()) fail("the prompt is empty and the vocabulary adds no BOS token: give -p or -f");

  if (f.ignore_eos) f.sampling.params.banned = tokenizer.eog_ids();
  Session session(*model, session_options(f.model, f.cache));
  Sampler sampler(f.sampling.params, session.vocab_size());
  const CacheConfig& cache = session.options().cache;
  if (!session_fits(session, static_cast<int64_t>(history.size())))
    fail("the prompt has {} tokens, more than --ctx-size {} allows with --cache full",
         history.size(), cache.context);

  // Ctrl-C or SIGTERM ends the run early with what it has: the stats line, or the JSON object.
  ScopedInterrupt interrupt;
  session.set_cancel(interrupt.flag());  // a long prompt stops inside its prefill
  const auto t0 = std::chrono::steady_clock::now();
  bool prefilled = true;
  try {
    session.feed(history);
  } catch (const Cancelled&) {
    prefilled = false;
  }
  session.set_cancel(nullptr);  // from here the token loop polls the flag between tokens
  const double prefill_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const int64_t n_prompt = static_cast<int64_t>(history.size());

  const auto stream = [&](std::string_view piece) {
    if (f.json) return;  // stdout carries the JSON object alone
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  };
  // A report per --report-every tokens: the rate over the last stretch and the peak memory, so
  // a long stream shows whether either moves.
  nlohmann::json reports = nlohmann::json::array();
  StreamOptions so;
  so.keep = f.json;  // the JSON carries the text; a plain stream keeps nothing, memory stays flat
  so.report_every = f.report_every;
  so.cancel = interrupt.flag();
  double last_s = 0.0;
  so.on_report = [&](int64_t n, double s) {
    const double rate = per_second(f.report_every, s - last_s);
    last_s = s;
    const size_t rss = peak_rss_bytes();
    reports.push_back({{"generated", n}, {"seconds", s}, {"tokens_per_s", rate}, {"peak_rss_bytes", rss}});
    std::fprintf(stderr, "\n[stream] %lld tokens generated | %.1f t/s over the last %lld | peak RSS %s\n",
                 static_cast<long long>(n), rate, static_cast<long long>(f.report_every),
                 format_bytes(rss).c_str());
  };
  Generation g;
  g.stop = "interrupted";
  if (prefilled)
    g = generate(session, sampler, tokenizer, history, f.prompt.n_predict, /*feed_last=*/false,
                 stream, so);
  const int64_t n_gen = g.n_generated;
  const int code = g.stop == "interrupted" ? 130 : 0;

  if (f.json) {
    nlohmann::json out = {
        {"text", g.text},
        {"tokens", g.tokens},
        {"prompt_tokens", n_prompt},
        {"n_generated", n_gen},
        {"stop", g.stop},
        {"prompt_seconds", prefill_s},
        {"gen_seconds", g.seconds},
        {"prompt_tokens_per_s", per_second(n_prompt, prefill_s)},
        {"gen_tokens_per_s", per_second(n_gen, g.seconds)},
        {"seed", sampler.seed()},
        {"threads", f.model.threads},
        {"cache", cache_json(cache, f.cache.stride)},
        {"kv_bytes", session.kv_bytes()},
        {"peak_rss_bytes", peak_rss_bytes()},
        {"reports", reports},
    };
    print_json(out, -1);
    return code;
  }
  std::printf("\n");
  std::fflush(stdout);
  std::fprintf(stderr,
               "prompt: %lld tokens in %.1f ms (%.1f t/s) | generation: %lld tokens in %.1f ms "
               "(%.1f t/s, stop: %s) | cache: %s, %s KV | peak RSS %s | seed %llu\n",
               static_cast<long long>(n_prompt), prefill_s * 1e3, per_second(n_prompt, prefill_s),
               static_cast<long long>(n_gen), g.seconds * 1e3, per_second(n_gen, g.seconds),
               g.stop.c_str(), cache.policy.c_str(), format_bytes(session.kv_bytes()).c_str(),
               format_bytes(peak_rss_bytes()).c_str(), static_cast<unsigned long long>(sampler.seed()));
  return code;
}

}  // namespace

Command add_generate(CLI::App& root) {
  auto flags = std::make_shared<GenerateFlags>();
  CLI::App* app = root.add_subcommand("generate", "generate text from a prompt");
  add_model_flags(*app, flags->model);
  add_cache_flags(*app, flags->cache);
  add_sampling_flags(*app, flags->sampling);
  add_prompt_flags(*app, flags->prompt);
  app->add_flag("--json", flags->json, "print one JSON object with the text, ids and timings");
  app->add_option("--report-every", flags->report_every,
                  "every N generated tokens, report the rate and peak memory on stderr (0: off)");
  app->add_flag("--ignore-eos", flags->ignore_eos,
                "never sample an end-of-generation token: only -n ends the stream");
  return {app, [flags] { return run_generate(*flags); }};
}

}  // namespace kvc::cli
