#include "cli/common.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <sys/resource.h>

#include "ops/usable_cpus.h"

namespace kvc::cli {

void add_model_flags(CLI::App& app, ModelFlags& flags) {
  flags.threads = usable_cpus();
  app.add_option("-m,--model", flags.model, "GGUF model file");
  app.add_option("-t,--threads", flags.threads, "threads (default: the CPUs this process may use)");
}

void add_cache_flags(CLI::App& app, CacheFlags& flags) {
  app.add_option("-c,--ctx-size", flags.ctx_size, "context capacity of --cache full");
  app.add_option("--cache", flags.policy, "KV cache policy")
      ->check(CLI::IsMember({"full", "window", "cascade", "h2o"}));
  app.add_option("--sinks", flags.sinks, "attention-sink slots kept forever (bounded policies)");
  app.add_option("--cache-size", flags.cache_size, "cache slots besides the sinks (bounded policies)");
  app.add_option("--cascades", flags.cascades, "sub-caches of the cascade");
  app.add_option("--beta", flags.beta, "EMA decay of the attention scores (cascade, h2o)");
  app.add_option("--head-reduction", flags.head_reduction,
                 "how the query heads of a group combine their attention")
      ->check(CLI::IsMember({"max", "mean"}));
  app.add_option("--cascade-select", flags.select,
                 "who wins a closed sub-cache's slot: score (the method) or newest (no score "
                 "selection, the paper's ablation)")
      ->check(CLI::IsMember({"score", "newest"}));
  app.add_option("--stride", flags.stride, "prefill chunk in tokens");
}

void add_sampling_flags(CLI::App& app, SamplingFlags& flags) {
  SamplingParams& p = flags.params;
  app.add_option("--temp", p.temperature, "temperature (0: greedy)");
  app.add_option("--top-k", p.top_k, "top-k sampling (0: off)");
  app.add_option("--top-p", p.top_p, "top-p sampling (1: off)");
  app.add_option("--min-p", p.min_p, "min-p sampling (0: off)");
  app.add_option("--repeat-penalty", p.repeat_penalty, "repetition penalty (1: off)");
  app.add_option("--repeat-last-n", p.repeat_last_n,
                 "tokens the penalty looks back over (0: off, -1: all)");
  app.add_option("--seed", flags.seed, "random seed (-1: random)");
}

void add_prompt_flags(CLI::App& app, PromptFlags& flags) {
  auto* prompt = app.add_option("-p,--prompt", flags.prompt, "prompt text");
  auto* file = app.add_option("-f,--file", flags.file, "read the prompt from a file");
  prompt->excludes(file);
  app.add_option("-n,--n-predict", flags.n_predict,
                 "tokens to generate (-1: until end of generation)");
}

void validate(const ModelFlags& flags) {
  if (flags.threads < 1) usage_error("--threads must be at least 1, got {}", flags.threads);
}

void validate(const CacheFlags& f) {
  if (f.ctx_size < 1) usage_error("--ctx-size must be at least 1, got {}", f.ctx_size);
  if (f.stride < 1) usage_error("--stride must be at least 1, got {}", f.stride);
  if (f.policy == "full") return;  // the rest only shapes the bounded policies
  if (f.sinks < 0) usage_error("--sinks must be >= 0, got {}", f.sinks);
  if (f.cache_size < 1) usage_error("--cache-size must be at least 1, got {}", f.cache_size);
  if (f.policy == "cascade") {
    if (f.cascades < 1) usage_error("--cascades must be at least 1, got {}", f.cascades);
    if (f.cache_size % f.cascades != 0)
      usage_error("--cache-size ({}) must be a multiple of --cascades ({}): each cascade holds "
                  "cache-size / cascades slots",
                  f.cache_size, f.cascades);
  }
  if (!(f.beta > 0.0f && f.beta <= 1.0f)) usage_error("--beta must be in (0, 1], got {}", f.beta);
}

void validate(SamplingFlags& flags) {
  const SamplingParams& p = flags.params;
  if (!(p.temperature >= 0.0f) || !std::isfinite(p.temperature))
    usage_error("--temp must be >= 0, got {}", p.temperature);
  if (p.top_k < 0) usage_error("--top-k must be >= 0, got {}", p.top_k);
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) usage_error("--top-p must be in (0, 1], got {}", p.top_p);
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) usage_error("--min-p must be in [0, 1], got {}", p.min_p);
  if (!(p.repeat_penalty > 0.0f) || !std::isfinite(p.repeat_penalty))
    usage_error("--repeat-penalty must be > 0, got {}", p.repeat_penalty);
  if (p.repeat_last_n < -1) usage_error("--repeat-last-n must be >= -1, got {}", p.repeat_last_n);
  if (flags.seed < -1) usage_error("--seed must be >= 0, or -1 for random, got {}", flags.seed);
  flags.params.seed =
      flags.seed == -1 ? SamplingParams::kRandomSeed : static_cast<uint64_t>(flags.seed);
}

void validate(const PromptFlags& flags) {
  if (flags.n_predict < -1) usage_error("--n-predict must be >= -1, got {}", flags.n_predict);
}

std::unique_ptr<Model> load_model(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    if (path == kDefaultModel)
      fail("model file '{}' not found: run scripts/fetch-model.sh to download it, or pass -m FILE",
           path);
    fail("model file '{}' not found (scripts/fetch-model.sh downloads the default models)", path);
  }
  if (std::filesystem::is_directory(path, ec)) fail("'{}' is a directory, not a GGUF file", path);
  return Model::load(path);
}

SessionOptions session_options(const ModelFlags& model, const CacheFlags& cache) {
  SessionOptions o;
  o.threads = model.threads;
  o.stride = cache.stride;
  o.cache.policy = cache.policy;
  o.cache.sinks = cache.sinks;
  o.cache.size = cache.cache_size;
  o.cache.cascades = cache.cascades;
  o.cache.beta = cache.beta;
  o.cache.head_reduction_max = cache.head_reduction == "max";
  o.cache.select_by_score = cache.select == "score";
  o.cache.context = cache.ctx_size;
  return o;
}

std::string read_prompt(const PromptFlags& flags) {
  if (flags.file.empty()) return flags.prompt;
  std::ifstream in(flags.file, std::ios::binary);
  if (!in) fail("cannot read prompt file '{}'", flags.file);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

size_t kv_cache_bytes(const ModelConfig& config, const CacheConfig& cache) {
  const size_t per_slot = static_cast<size_t>(config.n_kv_heads) * config.head_dim * 2 * sizeof(float);
  const int64_t global_slots = cache.policy == "full" ? cache.context : cache.sinks + cache.size;
  size_t total = 0;
  for (int l = 0; l < config.n_layers; ++l) {
    const bool local = l < static_cast<int>(config.layer_is_local.size()) && config.layer_is_local[l];
    total += per_slot * static_cast<size_t>(local ? config.sliding_window : global_slots);
  }
  return total;
}

std::string describe_cache(const CacheConfig& c) {
  if (c.policy == "full") return fmt::format("full (context {})", c.context);
  if (c.policy == "window") return fmt::format("window (sinks {} + {} slots)", c.sinks, c.size);
  const char* reduction = c.head_reduction_max ? "max" : "mean";
  if (c.policy == "cascade")
    return fmt::format("cascade (sinks {} + {} slots in {} cascades, beta {}, head reduction {}{})",
                       c.sinks, c.size, c.cascades, c.beta, reduction,
                       c.select_by_score ? "" : ", no score selection");
  return fmt::format("{} (sinks {} + {} slots, beta {}, head reduction {})", c.policy, c.sinks,
                     c.size, c.beta, reduction);
}

nlohmann::json cache_json(const CacheConfig& c, int stride) {
  return {{"policy", c.policy},
          {"sinks", c.sinks},
          {"size", c.size},
          {"cascades", c.cascades},
          {"beta", as_written(c.beta)},
          {"head_reduction", c.head_reduction_max ? "max" : "mean"},
          {"select", c.select_by_score ? "score" : "newest"},
          {"context", c.context},
          {"stride", stride}};
}

std::vector<int64_t> parse_token_counts(const std::string& flag, const std::string& s) {
  std::vector<int64_t> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    const size_t comma = std::min(s.find(',', pos), s.size());
    std::string item = s.substr(pos, comma - pos);
    int64_t mult = 1;
    if (!item.empty() && (item.back() == 'k' || item.back() == 'K')) {
      mult = 1024;
      item.pop_back();
    }
    size_t used = 0;
    int64_t v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size() || v < 1)
      usage_error("{}: '{}' is not a positive token count (e.g. 2048,4k,8k)", flag,
                  s.substr(pos, comma - pos));
    out.push_back(v * mult);
    pos = comma + 1;
  }
  return out;
}

size_t peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<size_t>(u.ru_maxrss) * 1024;
}

double as_written(float x) { return std::stod(fmt::format("{}", x)); }

std::string format_bytes(size_t bytes) {
  const double b = static_cast<double>(bytes);
  if (b >= 1024.0 * 1024 * 1024) return fmt::format("{:.2f} GiB", b / (1024.0 * 1024 * 1024));
  if (b >= 1024.0 * 1024) return fmt::format("{:.2f} MiB", b / (1024.0 * 1024));
  if (b >= 1024.0) return fmt::format("{:.2f} KiB", b / 1024.0);
  return fmt::format("{} B", bytes);
}

}  // namespace kvc::cli
