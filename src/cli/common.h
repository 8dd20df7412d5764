// What the model-running subcommands share: flags for the model, threads and cache policy,
// sampling and prompt, their validation, and small output helpers.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "engine/session.h"
#include "model/model.h"
#include "sampling/sampler.h"

namespace kvc::cli {

// A flag value that parses but makes no sense: main() prints it and exits 2, like a bad flag.
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& what) : Error(what) {}
};

template <typename... Args>
[[noreturn]] void usage_error(fmt::format_string<Args...> format, Args&&... args) {
  throw UsageError(fmt::format(format, std::forward<Args>(args)...));
}

// A subcommand: its CLI11 node, and what to run when the user picked it. run() returns the
// process exit code and throws kvc::Error on failure.
struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

inline constexpr const char* kDefaultModel = "models/SmolLM2-135M-Instruct.Q4_1.gguf";

struct ModelFlags {
  std::string model = kDefaultModel;
  int threads = 0;  // set to the core count when the flags are added
};

struct CacheFlags {
  int64_t ctx_size = 4096;
  std::string policy = "cascade";
  int sinks = 64;
  int cache_size = 2048;
  int cascades = 4;
  float beta = 0.9999f;
  std::string head_reduction = "max";
  std::string select = "score";
  std::string unit = "token";
  int unit_max = 16;
  std::string unit_score = "sum";
  std::string unit_share = "head";
  std::string share_reduce = "sum";
  std::string unit_compete = "newest";
  bool value_norm = false;
  std::string cascade_sizes;  // "256,64,64": level sizes, newest first
  int stride = 512;
  std::string attention = "dense";  // dense | sparse (the global layers)
  SparseAttentionConfig sparse{};
  std::string type_k = "f16", type_v = "f16";  // -ctk, -ctv
  // What messages call cache_size: a preset (--quick) sets it without the user typing the flag.
  std::string cache_size_name = "--cache-size";
};

struct SamplingFlags {
  SamplingParams params;
  int64_t seed = -1;  // -1: random, as llama.cpp
};

struct PromptFlags {
  std::string prompt;
  std::string file;
  int64_t n_predict = 128;  // -1: until end of generation (or a full context)
};

void add_model_flags(CLI::App& app, ModelFlags& flags);
void add_cache_flags(CLI::App& app, CacheFlags& flags);
void add_sampling_flags(CLI::App& app, SamplingFlags& flags);
// n_predict's default is the caller's (flags.n_predict before the call).
void add_prompt_flags(CLI::App& app, PromptFlags& flags);

// Each throws UsageError naming the flag and the rule it breaks.
void validate(const ModelFlags& flags);
void validate(const CacheFlags& flags);
void validate(SamplingFlags& flags);  // also resolves the seed into params
void validate(const PromptFlags& flags);

// Loads the model, with a hint to fetch it when the file is missing.
std::unique_ptr<Model> load_model(const std::string& path);
CacheConfig cache_config(const CacheFlags& cache);
SessionOptions session_options(const ModelFlags& model, const CacheFlags& cache);
// The whole of a text file; fails naming `what` ("prompt file") for a directory or a read error.
std::string read_text_file(const std::string& path, const std::string& what);
// The prompt text from -p or -f (exactly one may be given; neither gives "").
std::string read_prompt(const PromptFlags& flags);

// "dense", or "sparse (sinks 64 + recent 512 + ...)".
std::string describe_attention(const SessionOptions& options);
// "cascade (sinks 64 + 2048 slots in 4 cascades, beta 0.9999), keys f16, values f16" and the like.
std::string describe_cache(const CacheConfig& cache);
// The policy part alone: "cascade (sinks 64 + 2048 slots in 4 cascades, beta 0.9999)".
std::string describe_policy(const CacheConfig& cache);
// The same as JSON, for --json reports.
nlohmann::json cache_json(const CacheConfig& cache, int stride);

// A float flag as the user wrote it (0.9999, not 0.99989998...) for JSON output.
double as_written(float x);

// "93.4 MiB"
std::string format_bytes(size_t bytes);
// Peak resident memory of the process so far.
size_t peak_rss_bytes();

// The most tokens a count flag takes (-d, --along, --lengths, ...): far beyond any run, and
// small enough that sums of counts, and counts cast to int, cannot overflow.
inline constexpr int64_t kMaxTokenCount = int64_t{1} << 30;

// "2048,4k,8K" -> {2048, 4096, 8192}, each in 1..kMaxTokenCount; throws UsageError naming
// `flag` on anything else.
std::vector<int64_t> parse_token_counts(const std::string& flag, const std::string& list);
// Throws UsageError naming `flag` unless min <= n <= kMaxTokenCount.
void validate_token_count(const std::string& flag, int64_t n, int64_t min);

// Tokens per second, 0 when nothing was timed.
inline double per_second(int64_t n, double seconds) { return seconds > 0 ? n / seconds : 0.0; }

}  // namespace kvc::cli
