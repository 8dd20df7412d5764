// kvcascade bench: prompt processing and generation speed on random tokens, llama-bench style.
// With --along, one stream instead of a fresh one per test: how speed changes as it grows.
// Generation is also set against the roofline: the machine's read bandwidth (measured here, with
// the same threads) over the bytes one decode step reads (weights plus the KV slots attention
// reads at that depth), the tokens/s a purely memory-bound decode would reach.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <random>

#include <sys/resource.h>

#include <nlohmann/json.hpp>

#include "base/cancelled.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "eval/interrupt.h"
#include "ops/read_bandwidth.h"

namespace kvc::cli {

namespace {

struct BenchFlags {
  ModelFlags model;
  CacheFlags cache;
  int n_prompt = 512;
  int n_gen = 128;
  int reps = 3;
  int64_t depth = 0;  // tokens already in the stream before each test (llama-bench's -d)
  std::string along;  // "D1,D2,...": one stream, measured at each depth
  bool json = false;
  bool roofline = true;
};

struct Stats {
  std::vector<double> samples;  // tokens per second, one per repetition
  double mean = 0.0;
  double stddev = 0.0;  // sample standard deviation; 0 for one repetition
};

struct Result {
  std::string test;  // "pp512", "tg128 @ d4096", ...
  int64_t n_prompt = 0, n_gen = 0, depth = 0;
  Stats stats;
  size_t peak_rss = 0;  // the process's, when the test ended
  // Generation only: bytes one decode step reads, the mean of the first and the last step's.
  uint64_t kv_read_bytes = 0;
  double cpu_seconds = 0.0;  // process CPU time of the timed parts, all repetitions
};

// The roofline: the limit is bandwidth / bytes per step, the share is t/s over that limit.
struct Roofline {
  double bandwidth = 0.0;  // bytes per second; 0 when not measured
  size_t buffer = 0;       // bytes of the streaming read
  uint64_t weight_bytes = 0;
  double limit_ts(const Result& r) const {
    const double step = static_cast<double>(weight_bytes + r.kv_read_bytes);
    return bandwidth > 0 && r.n_gen > 0 ? bandwidth / step : 0.0;
  }
  double share(const Result& r) const {
    const double limit = limit_ts(r);
    return limit > 0 ? r.stats.mean / limit : 0.0;
  }
};

Stats summarize(std::vector<double> samples) {
  Stats s;
  s.samples = std::move(samples);
  for (double x : s.samples) s.mean += x;
  s.mean /= static_cast<double>(s.samples.size());
  if (s.samples.size() > 1) {
    double ss = 0.0;
    for (double x : s.samples) ss += (x - s.mean) * (x - s.mean);
    s.stddev = std::sqrt(ss / static_cast<double>(s.samples.size() - 1));
  }
  return s;
}

// CPU seconds of the whole process (every thread, spinning workers included). On a shared
// machine a one-thread run's tokens per CPU second do not count the time others held the core.
double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int run_bench(BenchFlags& f) {
  validate(f.model);
  validate(f.cache);
  validate_token_count("-p/--n-prompt", f.n_prompt, 0);
  validate_token_count("-n/--n-gen", f.n_gen, 0);
  if (f.reps < 1) usage_error("-r/--repetitions must be at least 1, got {}", f.reps);
  if (f.along.empty() && f.n_prompt == 0 && f.n_gen == 0)
    usage_error("nothing to measure: -p and -n are both 0");
  validate_token_count("-d/--depth", f.depth, 0);
  std::vector<int64_t> along;
  if (!f.along.empty()) {
    along = parse_token_counts("--along", f.along);
    // After each depth, generation adds -n tokens and the one they follow.
    const int64_t grown = f.n_gen > 0 ? f.n_gen + 1 : 0;
    for (size_t i = 1; i < along.size(); ++i)
      if (along[i] <= along[i - 1] + grown)
        usage_error("--along: each depth must exceed the one before by more than -n + 1, got {} "
                    "after {}", along[i], along[i - 1]);
    if (f.depth > 0) usage_error("--along and -d exclude each other: --along sets the depths");
  }

  const auto model = load_model(f.model.model);
  const ModelConfig& c = model->config();
  Session session(*model, session_options(f.model, f.cache));
  const CacheConfig& cache = session.options().cache;
  const int64_t needed =
      along.empty() ? f.depth + std::max(f.n_prompt, f.n_gen + 1) : along.back() + f.n_gen + 1;
  if (cache.policy == "full" && needed > cache.context)
    usage_error("the test needs {} tokens of context, more than --ctx-size {}", needed,
                cache.context);

  // Random tokens, as llama-bench uses: the speed does not depend on what the text says.
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> any_token(0, session.vocab_size() - 1);
  const auto random_tokens = [&](int n) {
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (int32_t& id : t) id = any_token(rng);
    return t;
  };
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  Sampler sampler(greedy, session.vocab_size());

  // Ctrl-C or SIGTERM: the session throws Cancelled within a moment, and the tests finished so
  // far are reported.
  ScopedInterrupt interrupt;
  session.set_cancel(interrupt.flag());

  // A fresh stream, `depth` tokens deep (untimed), before every repetition.
  const auto start_stream = [&] {
    session.reset();
    if (f.depth > 0) session.feed(random_tokens(static_cast<int>(f.depth)));
  };

  std::vector<Result> results;
  Roofline roof;
  roof.weight_bytes = model->weights().decode_read_bytes();
  uint64_t gen_kv_bytes = 0;  // set by generate_timed
  double cpu_seconds = 0.0;    // added to by the timed parts, taken by add()
  const auto add = [&](std::string test, int64_t n_prompt, int64_t n_gen, int64_t depth,
                       std::vector<double> samples) {
    results.push_back({std::move(test), n_prompt, n_gen, depth, summarize(std::move(samples)),
                       peak_rss_bytes(), n_gen > 0 ? gen_kv_bytes : 0, cpu_seconds});
    cpu_seconds = 0.0;
  };
  const auto depth_tag = [](int64_t d) { return d > 0 ? fmt::format(" @ d{}", d) : std::string(); };
  // Strided prefill of n fresh tokens; returns tokens per second.
  const auto feed_timed = [&](int n) {
    const std::vector<int32_t> tokens = random_tokens(n);
    const auto t0 = std::chrono::steady_clock::now();
    const double cpu0 = process_cpu_seconds();
    session.feed(tokens);
    cpu_seconds += process_cpu_seconds() - cpu0;
    return n / seconds_since(t0);
  };
  // Greedy generation of n tokens after the last fed one; returns tokens per second.
  const auto generate_timed = [&](int n) {
    std::vector<int32_t> history = random_tokens(1);
    session.feed(history);
    const uint64_t kv_first = session.kv_read_bytes();
    uint64_t kv_last = kv_first;
    double seconds = 0.0;
    for (int i = 0; i < n; ++i) {
      if (i == n - 1) kv_last = session.kv_read_bytes();
      const auto t0 = std::chrono::steady_clock::now();
      const double cpu0 = process_cpu_seconds();
      const int32_t id = sampler.sample(session.logits(), history);
      history.push_back(id);
      session.feed(std::span<const int32_t>(&id, 1));
      seconds += seconds_since(t0);
      cpu_seconds += process_cpu_seconds() - cpu0;
    }
    // KV bytes per step: the mean of the first step's and the last's (a growing cache grows
    // linearly), counted outside the timing.
    gen_kv_bytes = (kv_first + kv_last) / 2;
    return n / seconds;
  };

  try {
    // Warm-up: first touches of the weights and the caches stay out of the figures.
    session.feed(random_tokens(std::min(16, std::max(f.n_prompt, 1))));
    if (f.roofline && (f.n_gen > 0)) {
      roof.buffer = bandwidth_buffer_bytes();
      roof.bandwidth = measure_read_bandwidth(session.pool(), roof.buffer, 5);
    }
    if (!along.empty()) {
      // One stream: the stretch up to each depth is prefilled (timed), then -n tokens generated
      // (timed) there; the generated tokens stay in the stream.
      session.reset();
      int64_t at = 0;
      for (int64_t d : along) {
        const int n = static_cast<int>(d - at);
        add(fmt::format("pp{}{}", n, depth_tag(at)), n, 0, at, {feed_timed(n)});
        at = d;
        if (f.n_gen > 0) {
          add(fmt::format("tg{}{}", f.n_gen, depth_tag(at)), 0, f.n_gen, at,
              {generate_timed(f.n_gen)});
          at += f.n_gen + 1;
        }
      }
    } else {
      if (f.n_prompt > 0) {
        std::vector<double> samples;
        for (int r = 0; r < f.reps; ++r) {
          start_stream();
          samples.push_back(feed_timed(f.n_prompt));
        }
        add(fmt::format("pp{}{}", f.n_prompt, depth_tag(f.depth)), f.n_prompt, 0, f.depth, samples);
      }
      if (f.n_gen > 0) {
        std::vector<double> samples;
        for (int r = 0; r < f.reps; ++r) {
          start_stream();
          samples.push_back(generate_timed(f.n_gen));
        }
        add(fmt::format("tg{}{}", f.n_gen, depth_tag(f.depth)), 0, f.n_gen, f.depth, samples);
      }
    }
  } catch (const Cancelled&) {
    std::fprintf(stderr, "interrupted: %zu tests finished\n", results.size());
  }
  const int code = interrupt.interrupted() ? 130 : 0;

  int64_t n_params = 0;
  for (const GgufTensor& t : model->file().tensors()) n_params += t.n_elements;
  const std::string name = c.name.empty() ? c.arch_name : c.name;

  if (f.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const Result& r : results) {
      nlohmann::json j = {{"model", name},
                     {"architecture", c.arch_name},
                     {"model_file", f.model.model},
                     {"weight_bytes", model->weight_bytes()},
                     {"n_params", n_params},
                     {"threads", f.model.threads},
                     {"cache", cache.policy},
                     {"cache_description", describe_cache(cache)},
                     {"attention", describe_attention(session.options())},
                     {"type_k", cache.type_k},
                     {"type_v", cache.type_v},
                     {"kv_bytes", session.kv_bytes()},
                     {"test", r.test},
                     {"n_prompt", r.n_prompt},
                     {"n_gen", r.n_gen},
                     {"n_depth", r.depth},
                     {"peak_rss_bytes", r.peak_rss},
                     {"repetitions", r.stats.samples.size()},
                     {"samples_ts", r.stats.samples},
                     {"avg_ts", r.stats.mean},
                     {"stddev_ts", r.stats.stddev},
                     {"cpu_seconds", r.cpu_seconds},
                     {"ts_per_cpu_s", static_cast<double>(r.n_prompt + r.n_gen) *
                                          static_cast<double>(r.stats.samples.size()) /
                                          r.cpu_seconds}};
      if (r.n_gen > 0 && roof.bandwidth > 0) {
        j["read_bandwidth_bytes_per_s"] = roof.bandwidth;
        j["bandwidth_buffer_bytes"] = roof.buffer;
        j["weight_read_bytes"] = roof.weight_bytes;
        j["kv_read_bytes"] = r.kv_read_bytes;
        j["limit_ts"] = roof.limit_ts(r);
        j["share_of_limit"] = roof.share(r);
      }
      out.push_back(std::move(j));
    }
    print_json(out, 2);
    return code;
  }

  const int w = static_cast<int>(std::max<size_t>(5, name.size()));
  std::printf("| %-*s | %10s | %8s | %7s | %-8s | %-6s | %-6s | %14s | %20s | %8s | %7s |\n", w,
              "model", "size", "params", "threads", "cache", "type_k", "type_v", "test", "t/s",
              "MB/step", "% limit");
  std::printf("| %s | %s: | %s: | %s: | %s | %s | %s | %s: | %s: | %s: | %s: |\n",
              std::string(w, '-').c_str(), std::string(9, '-').c_str(),
              std::string(7, '-').c_str(), std::string(6, '-').c_str(),
              std::string(8, '-').c_str(), std::string(6, '-').c_str(),
              std::string(6, '-').c_str(), std::string(13, '-').c_str(),
              std::string(19, '-').c_str(), std::string(7, '-').c_str(),
              std::string(6, '-').c_str());
  for (const Result& r : results) {
    const std::string ts = fmt::format("{:.2f} ± {:.2f}", r.stats.mean, r.stats.stddev);
    const bool roofed = r.n_gen > 0 && roof.bandwidth > 0;
    const std::string mb =
        roofed ? fmt::format("{:.1f}", (roof.weight_bytes + r.kv_read_bytes) / 1e6) : "-";
    const std::string share = roofed ? fmt::format("{:.0f}%", 100 * roof.share(r)) : "-";
    // "±" is two bytes but one column: pad by hand.
    std::printf("| %-*s | %10s | %7.1fM | %7d | %-8s | %-6s | %-6s | %14s | %21s | %8s | %7s |\n",
                w, name.c_str(), format_bytes(model->weight_bytes()).c_str(), n_params / 1e6,
                f.model.threads, cache.policy.c_str(), cache.type_k.c_str(), cache.type_v.c_str(),
                r.test.c_str(), ts.c_str(), mb.c_str(), share.c_str());
  }
  std::printf("attention: %s\n", describe_attention(session.options()).c_str());
  if (const SparseStats st = session.sparse_stats(); st.sparse_calls > 0)
    std::printf("sparse: %lld of %lld layer calls sparse; they read %.1f%% of the cached keys "
                "(attended) and scored %.1f%% more in %lld selections\n",
                static_cast<long long>(st.sparse_calls),
                static_cast<long long>(st.sparse_calls + st.dense_calls),
                100.0 * st.keys_attended / std::max<int64_t>(1, st.keys_cached),
                100.0 * st.keys_scored / std::max<int64_t>(1, st.keys_cached),
                static_cast<long long>(st.selections));
  if (roof.bandwidth > 0)
    std::printf("limit: decode t/s as a share of %.1f GB/s (a streaming read of %s on %d "
                "threads, best of 5) over the MB one step reads\n",
                roof.bandwidth / 1e9, format_bytes(roof.buffer).c_str(), f.model.threads);
  return code;
}

}  // namespace

Command add_bench(CLI::App& root) {
  auto flags = std::make_shared<BenchFlags>();
  CLI::App* app = root.add_subcommand("bench", "measure prompt processing and generation speed");
  add_model_flags(*app, flags->model);
  add_cache_flags(*app, flags->cache);
  app->add_option("-p,--n-prompt", flags->n_prompt, "prompt tokens per test (0: skip)");
  app->add_option("-n,--n-gen", flags->n_gen, "generated tokens per test (0: skip)");
  app->add_option("-r,--repetitions", flags->reps, "repetitions of each test");
  app->add_option("-d,--depth", flags->depth,
                  "tokens streamed (strided prefill, untimed) before each test");
  app->add_option("--along", flags->along,
                  "D1,D2,...: one stream instead of fresh ones; prefill each stretch up to the "
                  "next depth, then generate -n tokens there (-p, -r and -d do not apply)");
  app->add_flag("--json", flags->json, "print the results as JSON");
  app->add_flag("!--no-roofline", flags->roofline,
                "skip measuring the read bandwidth that generation is set against");
  return {app, [flags] { return run_bench(*flags); }};
}

}  // namespace kvc::cli
