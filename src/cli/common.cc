#include "cli/common.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <optional>

#include <fmt/ranges.h>

#include <sys/resource.h>

#include "cli/strict_integers.h"
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
  app.add_option("--cascade-unit", flags.unit,
                 "what moves and competes in the cascade: token (the paper's) or span (a run of "
                 "tokens up to a separator or --unit-max tokens, digit runs kept whole)")
      ->check(CLI::IsMember({"token", "span"}));
  app.add_option("--unit-max", flags.unit_max, "longest span in tokens (--cascade-unit span)");
  app.add_option("--unit-score", flags.unit_score,
                 "a span's score from its tokens' scores, its final separator left out: sum, "
                 "mean or peak (the highest)")
      ->check(CLI::IsMember({"sum", "mean", "peak"}));
  app.add_option("--unit-share", flags.unit_share,
                 "whose scores decide a cascade competition: head (each KV head its own), layer "
                 "(the heads of a layer together) or model (every head of every layer: a unit "
                 "survives everywhere or nowhere)")
      ->check(CLI::IsMember({"head", "layer", "model"}));
  app.add_option("--share-reduce", flags.share_reduce,
                 "how a shared decision (--unit-share layer|model) combines the heads' attention "
                 "to a token: sum or max")
      ->check(CLI::IsMember({"sum", "max"}));
  app.add_option("--unit-compete", flags.unit_compete,
                 "whom a unit arriving at a closed sub-cache competes with: newest (the units "
                 "before it in the stream, the cascade's rule), lowest (the lowest-scored units "
                 "there), lowest-last (lowest in the last sub-cache only) or pool (lowest, and the "
                 "last sub-cache never drops a unit by age)")
      ->check(CLI::IsMember({"newest", "lowest", "lowest-last", "pool"}));
  app.add_flag("--value-norm", flags.value_norm,
               "weigh each token's score by the mean |v| of its value vector (cascade)");
  app.add_option("--cascade-sizes", flags.cascade_sizes,
                 "sub-cache sizes, newest first, e.g. 256,64,64,64,64 (sets --cache-size to their "
                 "sum and --cascades to their count)");
  app.add_option("--stride", flags.stride, "prefill chunk in tokens");
  app.add_option("--attention", flags.attention,
                 "attention of the global layers: dense (exact) or sparse (each query block "
                 "reads the sinks, the recent keys and the top chunks an estimate picks)")
      ->check(CLI::IsMember({"dense", "sparse"}));
  SparseAttentionConfig& s = flags.sparse;
  app.add_option("--sparse-sinks", s.sinks, "sparse: first keys always attended");
  app.add_option("--sparse-recent", s.recent, "sparse: last keys always attended");
  app.add_option("--sparse-top-chunks", s.top_chunks, "sparse: chunks of the keys between kept");
  app.add_option("--sparse-chunk", s.chunk, "sparse: keys per chunk");
  app.add_option("--sparse-refresh", s.refresh, "sparse: decode steps one selection serves");
  app.add_option("--sparse-min-keys", s.min_keys,
                 "sparse: a layer with fewer cached keys attends densely (exact)");
  // -ctk and -ctv (llama.cpp's short forms) are rewritten to these before parsing (main.cc).
  app.add_option("--cache-type-k", flags.type_k,
                 "how cached keys are stored: f32, f16 or q8_0 (-ctk)")
      ->check(CLI::IsMember({"f32", "f16", "q8_0"}));
  app.add_option("--cache-type-v", flags.type_v,
                 "how cached values are stored: f32, f16 or q8_0 (-ctv)")
      ->check(CLI::IsMember({"f32", "f16", "q8_0"}));
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

std::vector<int> parse_cascade_sizes(const std::string& list) {
  std::vector<int> sizes;
  if (list.empty()) return sizes;
  for (int64_t w : parse_token_counts("--cascade-sizes", list)) {
    if (w > kMaxCacheSlots) usage_error("--cascade-sizes: {} is too large a sub-cache", w);
    sizes.push_back(static_cast<int>(w));
  }
  if (sizes.size() > static_cast<size_t>(kMaxCascades))
    usage_error("--cascade-sizes: at most {} sub-caches, got {}", kMaxCascades, sizes.size());
  return sizes;
}

void validate(const CacheFlags& f) {
  if (f.stride < 1) usage_error("--stride must be at least 1, got {}", f.stride);
  CacheFieldNames flags;
  flags.policy = "--cache";
  flags.sinks = "--sinks";
  flags.size = f.cache_size_name;
  flags.cascades = "--cascades";
  flags.beta = "--beta";
  flags.context = "--ctx-size";
  flags.unit = "--cascade-unit";
  flags.unit_max = "--unit-max";
  flags.unit_score = "--unit-score";
  flags.unit_share = "--unit-share";
  flags.share_reduce = "--share-reduce";
  flags.unit_compete = "--unit-compete";
  flags.level_sizes = "--cascade-sizes";
  flags.type_k = "--cache-type-k";
  flags.type_v = "--cache-type-v";
  if (const std::string error = cache_config_error(cache_config(f), flags); !error.empty())
    usage_error("{}", error);
  if (f.attention == "sparse")
    if (const std::string error = sparse_config_error(f.sparse); !error.empty())
      usage_error("{}", error);
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
  // Only a path that is truly absent is "not found"; any other failure (a symlink loop, no
  // permission) is the loader's to name.
  if (!std::filesystem::exists(path, ec) && !ec) {
    if (path == kDefaultModel)
      fail("model file '{}' not found: run scripts/fetch-model.sh to download it, or pass -m FILE",
           path);
    fail("model file '{}' not found (scripts/fetch-model.sh downloads the default models)", path);
  }
  if (std::filesystem::is_directory(path, ec)) fail("'{}' is a directory, not a GGUF file", path);
  return Model::load(path);
}

CacheConfig cache_config(const CacheFlags& f) {
  CacheConfig c;
  c.policy = f.policy;
  c.sinks = f.sinks;
  c.size = f.cache_size;
  c.cascades = f.cascades;
  c.beta = f.beta;
  c.head_reduction_max = f.head_reduction == "max";
  c.select_by_score = f.select == "score";
  c.unit = f.unit;
  c.unit_max = f.unit_max;
  c.unit_score = f.unit_score;
  c.unit_share = f.unit_share;
  c.share_reduce = f.share_reduce;
  c.unit_compete = f.unit_compete;
  c.value_norm_weight = f.value_norm;
  c.level_sizes = parse_cascade_sizes(f.cascade_sizes);
  if (!c.level_sizes.empty()) {  // --cascade-sizes sets the size and the count
    c.cascades = static_cast<int>(c.level_sizes.size());
    c.size = 0;
    for (int w : c.level_sizes) c.size += w;
  }
  c.context = f.ctx_size;
  c.type_k = f.type_k;
  c.type_v = f.type_v;
  return c;
}

SessionOptions session_options(const ModelFlags& model, const CacheFlags& cache) {
  SessionOptions o;
  o.threads = model.threads;
  o.stride = cache.stride;
  o.cache = cache_config(cache);
  o.sparse_attention = cache.attention == "sparse";
  o.sparse = cache.sparse;
  return o;
}

std::string read_text_file(const std::string& path, const std::string& what) {
  std::error_code ec;
  // An ifstream opens a directory and reads it as empty: say what it is instead.
  if (std::filesystem::is_directory(path, ec)) fail("{} '{}' is a directory", what, path);
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read {} '{}'", what, path);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) fail("error reading {} '{}'", what, path);
  return text.str();
}

std::string read_prompt(const PromptFlags& flags) {
  if (flags.file.empty()) return flags.prompt;
  return read_text_file(flags.file, "prompt file");
}

std::string describe_attention(const SessionOptions& o) {
  if (!o.sparse_attention) return "dense";
  const SparseAttentionConfig& s = o.sparse;
  return fmt::format("sparse (sinks {} + recent {} + top {} chunks of {}, refresh {}, dense below {} keys)",
                     s.sinks, s.recent, s.top_chunks, s.chunk, s.refresh, s.min_keys);
}

// "keys f16, values q8_0"
std::string describe_storage(const CacheConfig& c) {
  return fmt::format("keys {}, values {}", c.type_k, c.type_v);
}

std::string describe_cache(const CacheConfig& c) {
  return fmt::format("{}, {}", describe_policy(c), describe_storage(c));
}

std::string describe_policy(const CacheConfig& c) {
  if (c.policy == "full") return fmt::format("full (context {})", c.context);
  if (c.policy == "window") return fmt::format("window (sinks {} + {} slots)", c.sinks, c.size);
  const char* reduction = c.head_reduction_max ? "max" : "mean";
  if (c.policy == "cascade") {
    std::string levels = fmt::format("{} cascades", c.cascades);
    if (!c.level_sizes.empty()) levels = fmt::format("cascades of {}", fmt::join(c.level_sizes, ","));
    std::string unit;
    if (c.unit == "span")
      unit = fmt::format(", span units of up to {} tokens scored by {}", c.unit_max, c.unit_score);
    else if (c.unit_score != "sum")
      unit = fmt::format(", scored by {}", c.unit_score);
    if (c.unit_share != "head")
      unit += fmt::format(", decided per {} by the {} of its heads", c.unit_share, c.share_reduce);
    if (c.unit_compete != "newest")
      unit += fmt::format(", arrivals compete with the {} units", c.unit_compete);
    return fmt::format("cascade (sinks {} + {} slots in {}, beta {}, head reduction {}{}{}{})",
                       c.sinks, c.size, levels, c.beta, reduction, unit,
                       c.value_norm_weight ? ", value-norm weighted" : "",
                       c.select_by_score ? "" : ", no score selection");
  }
  if (c.policy == "oracle")
    return fmt::format("oracle (sinks {} + {} pinned key tokens + a window, {} slots)", c.sinks,
                       c.pinned.size(), c.size);
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
          {"unit", c.unit},
          {"unit_max", c.unit_max},
          {"unit_score", c.unit_score},
          {"unit_share", c.unit_share},
          {"share_reduce", c.share_reduce},
          {"unit_compete", c.unit_compete},
          {"value_norm", c.value_norm_weight},
          {"level_sizes", c.level_sizes},
          {"context", c.context},
          {"type_k", c.type_k},
          {"type_v", c.type_v},
          {"stride", stride}};
}

std::vector<int64_t> parse_token_counts(const std::string& flag, const std::string& s) {
  std::vector<int64_t> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    const size_t comma = std::min(s.find(',', pos), s.size());
    const std::string written = s.substr(pos, comma - pos);
    std::string_view digits = written;
    int64_t unit = 1;
    if (!digits.empty() && (digits.back() == 'k' || digits.back() == 'K')) {
      unit = 1024;
      digits.remove_suffix(1);
    }
    const std::optional<int64_t> v = parse_decimal(digits);
    if (!v || *v < 1)
      usage_error("{}: '{}' is not a positive token count (e.g. 2048,4k,8k)", flag, written);
    if (*v > kMaxTokenCount / unit)
      usage_error("{}: '{}' is more than {} tokens", flag, written, kMaxTokenCount);
    out.push_back(*v * unit);
    pos = comma + 1;
  }
  return out;
}

void validate_token_count(const std::string& flag, int64_t n, int64_t min) {
  if (n < min || n > kMaxTokenCount)
    usage_error("{} must be in {}..{}, got {}", flag, min, kMaxTokenCount, n);
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
