// kvcascade generate: one prompt in, streamed text out (or one JSON object with --json).
#include <chrono>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/generation.h"

namespace kvc::cli {

namespace {

struct GenerateFlags {
  ModelFlags model;
  CacheFlags cache;
  SamplingFlags sampling;
  PromptFlags prompt;
  bool json = false;
};

int run_generate(GenerateFlags& f) {
  validate(f.model);
  validate(f.cache);
  validate(f.sampling);
  validate(f.prompt);
  const std::string text = read_prompt(f.prompt);

  const auto model = load_model(f.model.model);
  const Tokenizer& tokenizer = model->tokenizer();
  std::vector<int32_t> history = tokenizer.encode(text, /*add_special=*/true, /*parse_special=*/true);
  if (history.empty()) fail("the prompt is empty and the vocabulary adds no BOS token: give -p or -f");

  Session session(*model, session_options(f.model, f.cache));
  Sampler sampler(f.sampling.params, session.vocab_size());
  const CacheConfig& cache = session.options().cache;
  if (cache.policy == "full" && static_cast<int64_t>(history.size()) > cache.context)
    fail("the prompt has {} tokens, more than --ctx-size {} allows with --cache full",
         history.size(), cache.context);

  const auto t0 = std::chrono::steady_clock::now();
  session.feed(history);
  const double prefill_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const int64_t n_prompt = static_cast<int64_t>(history.size());

  const auto stream = [&](std::string_view piece) {
    if (f.json) return;  // stdout carries the JSON object alone
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  };
  const Generation g =
      generate(session, sampler, tokenizer, history, f.prompt.n_predict, /*feed_last=*/false, stream);
  const int64_t n_gen = static_cast<int64_t>(g.tokens.size());

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
        {"cache",
         {{"policy", cache.policy},
          {"sinks", cache.sinks},
          {"size", cache.size},
          {"cascades", cache.cascades},
          {"beta", as_written(cache.beta)},
          {"head_reduction", cache.head_reduction_max ? "max" : "mean"},
          {"context", cache.context},
          {"stride", f.cache.stride}}},
        {"kv_bytes", session.kv_bytes()},
    };
    std::printf("%s\n", out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return 0;
  }
  std::printf("\n");
  std::fflush(stdout);
  std::fprintf(stderr,
               "prompt: %lld tokens in %.1f ms (%.1f t/s) | generation: %lld tokens in %.1f ms "
               "(%.1f t/s, stop: %s) | cache: %s, %s KV | seed %llu\n",
               static_cast<long long>(n_prompt), prefill_s * 1e3, per_second(n_prompt, prefill_s),
               static_cast<long long>(n_gen), g.seconds * 1e3, per_second(n_gen, g.seconds),
               g.stop.c_str(), cache.policy.c_str(), format_bytes(session.kv_bytes()).c_str(),
               static_cast<unsigned long long>(sampler.seed()));
  return 0;
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
  return {app, [flags] { return run_generate(*flags); }};
}

}  // namespace kvc::cli
