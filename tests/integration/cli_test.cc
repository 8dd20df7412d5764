// The kvcascade binary as a user meets it: exit codes, error lines, JSON output. The binary is
// found next to this test executable (both live in the build directory), or at $KVC_BIN.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/cli_runner.h"

namespace {

namespace fs = std::filesystem;

const std::string kSmolLM = std::string(KVC_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";

using Result = kvc::test::CliResult;
using kvc::test::slurp;

std::string binary() { return kvc::test::kvcascade_binary(); }
fs::path scratch_dir() { return kvc::test::scratch_dir("kvc_cli_test"); }

// Runs `kvcascade ARGS` through the shell (ARGS may redirect stdin), capturing both streams;
// stdout goes to `stdout_path` instead when one is given (and is then not captured).
Result run(const std::string& args, const std::string& cwd = "", const std::string& stdout_path = "") {
  return kvc::test::run_cli(args, {cwd, stdout_path});
}

// A small text file to score, in the scratch directory.
std::string small_text() {
  const fs::path p = scratch_dir() / "text.txt";
  std::ofstream(p) << "In the beginning God created the heaven and the earth. And the earth was "
                      "without form, and void; and darkness was upon the face of the deep.\n";
  return p.string();
}

// A kvcascade process the test talks to while it runs: stdin a pipe, stdout and stderr files,
// signals sent to it directly (not to a shell).
class Child {
 public:
  explicit Child(const std::vector<std::string>& args) {
    const fs::path dir = scratch_dir();
    out_ = dir / "child_out", err_ = dir / "child_err";
    int fds[2];
    if (pipe(fds) != 0) throw std::runtime_error("pipe");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[0], 0);
    posix_spawn_file_actions_addclose(&actions, fds[1]);
    posix_spawn_file_actions_addopen(&actions, 1, out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, 2, err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<std::string> argv = {binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> ptrs;
    for (std::string& a : argv) ptrs.push_back(a.data());
    ptrs.push_back(nullptr);
    if (posix_spawn(&pid_, ptrs[0], &actions, nullptr, ptrs.data(), environ) != 0)
      throw std::runtime_error("posix_spawn");
    posix_spawn_file_actions_destroy(&actions);
    close(fds[0]);
    stdin_ = fds[1];
  }
  ~Child() {
    close_stdin();
    if (pid_ > 0 && !done_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  void write_stdin(const std::string& text) {
    if (::write(stdin_, text.data(), text.size()) != static_cast<ssize_t>(text.size()))
      ADD_FAILURE() << "write to the child's stdin";
  }
  void close_stdin() {
    if (stdin_ >= 0) close(stdin_);
    stdin_ = -1;
  }
  void signal(int sig) { kill(pid_, sig); }
  std::string out() const { return slurp(out_); }
  std::string err() const { return slurp(err_); }
  // Polls until `ready` holds (true) or `seconds` pass (false).
  bool wait_until(const std::function<bool()>& ready, double seconds) const {
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < end) {
      if (ready()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return ready();
  }
  // The exit code, -signal when a signal ended it, or -1000 if it runs past `seconds` (then killed).
  int wait(double seconds) {
    int status = 0;
    const bool exited = wait_until([&] { return waitpid(pid_, &status, WNOHANG) == pid_; }, seconds);
    if (!exited) return -1000;
    done_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
  int stdin_ = -1;
  bool done_ = false;
  fs::path out_, err_;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int count_lines(const std::string& s) {
  return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
}

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(binary())) GTEST_SKIP() << "no kvcascade binary at " << binary();
  }
};

class CliWithModel : public Cli {
 protected:
  void SetUp() override {
    Cli::SetUp();
    if (IsSkipped()) return;
    if (!fs::exists(kSmolLM)) GTEST_SKIP() << "run scripts/fetch-model.sh for " << kSmolLM;
  }
};

TEST_F(Cli, MissingModelFileIsOneErrorLine) {
  const Result r = run("generate -m /nonexistent/model.gguf -p hi");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("kvcascade: error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("/nonexistent/model.gguf"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("not found"), std::string::npos) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
}

TEST_F(Cli, MissingDefaultModelSaysHowToFetchIt) {
  const fs::path empty = fs::temp_directory_path() / ("kvc_cli_empty_" + std::to_string(getpid()));
  fs::create_directories(empty);
  const Result r = run("info", empty.string());
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("scripts/fetch-model.sh"), std::string::npos) << r.err;
}

TEST_F(Cli, NotAGgufFileIsOneErrorLine) {
  const fs::path bogus = fs::temp_directory_path() / ("kvc_not_gguf_" + std::to_string(getpid()));
  std::ofstream(bogus) << "this is not a GGUF file, just some text that is long enough\n";
  const Result r = run("info -m '" + bogus.string() + "'");
  fs::remove(bogus);
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err.rfind("kvcascade: error: ", 0), 0u) << r.err;
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
}

TEST_F(Cli, BadFlagsExit2) {
  EXPECT_EQ(run("generate --no-such-flag").code, 2);
  EXPECT_EQ(run("generate --cache lru").code, 2);
  EXPECT_EQ(run("generate --top-k many").code, 2);
  EXPECT_EQ(run("").code, 2);  // a subcommand is required
  EXPECT_EQ(run("frobnicate").code, 2);
  EXPECT_EQ(run("--help").code, 0);
}

TEST_F(Cli, CacheSizeMustDivideIntoCascades) {
  // Checked before the model is opened: the flags alone are wrong.
  const Result r = run("generate -m /nonexistent.gguf --cache-size 1000 --cascades 3 -p hi");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--cache-size (1000) must be a multiple of --cascades (3)"),
            std::string::npos)
      << r.err;
}

TEST_F(Cli, OutOfRangeValuesExit2) {
  EXPECT_EQ(run("generate -m /x.gguf --top-p 0 -p hi").code, 2);
  EXPECT_EQ(run("generate -m /x.gguf --top-p 1.5 -p hi").code, 2);
  EXPECT_EQ(run("generate -m /x.gguf --temp -1 -p hi").code, 2);
  EXPECT_EQ(run("generate -m /x.gguf -t 0 -p hi").code, 2);
  const Result r = run("generate -m /x.gguf -p hi -f /x.txt");
  EXPECT_EQ(r.code, 2) << "-p and -f exclude each other";
  EXPECT_EQ(run("bench -m /x.gguf --along 64,32").code, 2) << "depths must rise";
  EXPECT_EQ(run("bench -m /x.gguf --along 64,80 -n 16").code, 2) << "-n + 1 tokens come between";
  EXPECT_EQ(run("bench -m /x.gguf --along 64,1x").code, 2);
  EXPECT_EQ(run("bench -m /x.gguf --along 64 -d 8").code, 2);
}

// One check of the cache flags for every subcommand (the factory's own): a cache that cannot
// be built is a flag error before the model loads, not exit 1 after it.
TEST_F(Cli, ImpossibleCachesAreFlagErrors) {
  for (const char* cmd : {"generate -p hi", "info", "bench", "chat", "perplexity -f /x.txt",
                          "passkey"}) {
    SCOPED_TRACE(cmd);
    const std::string base = std::string(cmd) + " -m /nonexistent.gguf ";
    const Result many = run(base + "--cascades 64");
    EXPECT_EQ(many.code, 2);
    EXPECT_NE(many.err.find("--cascades must be in 1..30, got 64"), std::string::npos) << many.err;
    const Result h2o = run(base + "--cache h2o --cache-size 1");
    EXPECT_EQ(h2o.code, 2);
    EXPECT_NE(h2o.err.find("--cache-size must be at least 2 for h2o"), std::string::npos) << h2o.err;
  }
}

// Slot counts that overflowed an int (UBSan: signed overflow in kv_cache_bytes and the cascade
// constructor) are out of range, named by their flag.
TEST_F(Cli, HugeCacheFlagsExit2NamingTheFlag) {
  const Result info = run("info -m /nonexistent.gguf --sinks 2147483647");
  EXPECT_EQ(info.code, 2);
  EXPECT_NE(info.err.find("--sinks"), std::string::npos) << info.err;
  const Result gen = run("generate -m /nonexistent.gguf --sinks 2147483647 -p hi");
  EXPECT_EQ(gen.code, 2);
  EXPECT_NE(gen.err.find("--sinks"), std::string::npos) << gen.err;
  const Result size = run("generate -m /nonexistent.gguf --cache window --cache-size 2147483647 -p hi");
  EXPECT_EQ(size.code, 2);
  EXPECT_NE(size.err.find("--cache-size"), std::string::npos) << size.err;
  EXPECT_EQ(run("generate -m /nonexistent.gguf --cache full -c 9223372036854775807 -p hi").code, 2);
}

// Token counts that overflowed int64 when multiplied by k, or an int when cast.
TEST_F(Cli, HugeTokenCountsExit2NamingTheFlag) {
  const std::pair<const char*, const char*> cases[] = {
      {"bench --along 9223372036854775807k", "--along"},
      {"passkey --lengths 9223372036854775807k", "--lengths"},
      {"passkey --lengths 9223372036854775808", "--lengths"},
      {"bench -d 4294967300", "--depth"},
      {"bench -n 2147483647", "--n-gen"}};
  for (const auto& [args, flag] : cases) {
    const Result r = run(std::string(args) + " -m /nonexistent.gguf");
    EXPECT_EQ(r.code, 2) << args;
    EXPECT_NE(r.err.find(flag), std::string::npos) << args << ": " << r.err;
  }
}

// --quick sets the cache size; a message about it must not blame a --cache-size never typed.
TEST_F(Cli, QuickPresetIsNamedInCacheErrors) {
  const Result r = run("perplexity -m /nonexistent.gguf -f /x.txt --quick --cascades 3");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--quick's cache size (512) must be a multiple of --cascades (3)"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("--cache-size"), std::string::npos) << r.err;
  const Result typed = run("perplexity -m /nonexistent.gguf -f /x.txt --quick --cache-size 100 --cascades 3");
  EXPECT_NE(typed.err.find("--cache-size (100)"), std::string::npos) << typed.err;
}

// Integers are decimal and in range: no octal, hex, empty or clamped values.
TEST_F(Cli, IntegerFlagsAreStrictDecimals) {
  const std::pair<const char*, const char*> cases[] = {
      {"-n 0x10", "--n-predict"}, {"-n ''", "--n-predict"}, {"-n ' 5'", "--n-predict"},
      {"-n +5", "--n-predict"}, {"-n 5k", "--n-predict"}, {"-t 0x2", "--threads"},
      {"--seed 18446744073709551615", "--seed"}, {"--seed -9223372036854775809", "--seed"},
      {"--sinks 2147483648", "--sinks"}, {"--top-k 1e3", "--top-k"}, {"--stride 0b11", "--stride"}};
  for (const auto& [flag, name] : cases) {
    const Result r = run(std::string("generate -m /nonexistent.gguf -p hi ") + flag);
    EXPECT_EQ(r.code, 2) << flag << ": " << r.err;
    EXPECT_NE(r.err.find(name), std::string::npos) << flag << ": " << r.err;
  }
  EXPECT_EQ(run("info -m /nonexistent.gguf --max-array -1").code, 2);
  EXPECT_EQ(run("bench -m /nonexistent.gguf -d 0x10").code, 2);
  EXPECT_EQ(run("perplexity -m /nonexistent.gguf -f /x.txt --max-tokens 010k").code, 2);
  EXPECT_EQ(run("passkey -m /nonexistent.gguf --samples 0x1").code, 2);
  // A well-formed value passes the parser: the run gets as far as the missing model.
  EXPECT_EQ(run("generate -m /nonexistent.gguf -p hi -n 010 --seed 18446744073709551 -t 2").code, 1);
}

TEST_F(Cli, PerplexityMaxTokensOneIsAFlagError) {
  const Result r = run("perplexity -m /nonexistent.gguf -f /x.txt --max-tokens 1");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--max-tokens"), std::string::npos) << r.err;
}

// A directory opens as an empty stream: it must not become an empty prompt.
TEST_F(Cli, DirectoryAsTextFileIsRejected) {
  const std::string dir = scratch_dir().string();
  const Result gen = run("generate -m /nonexistent.gguf -f '" + dir + "'");
  EXPECT_EQ(gen.code, 1);
  EXPECT_NE(gen.err.find("is a directory"), std::string::npos) << gen.err;
  const Result ppl = run("perplexity -m /nonexistent.gguf -f '" + dir + "'");
  EXPECT_EQ(ppl.code, 1);
  EXPECT_NE(ppl.err.find("is a directory"), std::string::npos) << ppl.err;
}

// An output file that cannot be written is found before the run (here before the model loads).
TEST_F(Cli, UnwritableOutputFileFailsBeforeTheRun) {
  const Result csv = run("passkey -m /nonexistent.gguf --csv /nonexistent/dir/x.csv");
  EXPECT_EQ(csv.code, 1);
  EXPECT_NE(csv.err.find("--csv"), std::string::npos) << csv.err;
  const Result slots = run("perplexity -m /nonexistent.gguf -f /x.txt --slots-out /nonexistent/dir/x");
  EXPECT_EQ(slots.code, 1);
  EXPECT_NE(slots.err.find("--slots-out"), std::string::npos) << slots.err;
  const Result dir = run("passkey -m /nonexistent.gguf --csv '" + scratch_dir().string() + "'");
  EXPECT_EQ(dir.code, 1);
  EXPECT_NE(dir.err.find("is a directory"), std::string::npos) << dir.err;
  // The check leaves nothing behind.
  const fs::path fresh = scratch_dir() / "fresh.csv";
  EXPECT_EQ(run("passkey -m /nonexistent.gguf --csv '" + fresh.string() + "'").code, 1);
  EXPECT_FALSE(fs::exists(fresh));
}

TEST_F(CliWithModel, InfoJsonDescribesTheModel) {
  const Result r = run("info -m '" + kSmolLM + "' --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["architecture"], "llama");
  EXPECT_EQ(j["hyperparameters"]["n_layers"], 30);
  EXPECT_EQ(j["hyperparameters"]["n_kv_heads"], 3);
  EXPECT_EQ(j["hyperparameters"]["vocab_size"], 49152);
  // 30 layers x 3 KV heads x 64 dims x (K + V) x 4 bytes.
  EXPECT_EQ(j["kv_cache"]["bytes_per_token_all_layers_f32"], 30 * 3 * 64 * 2 * 4);
  EXPECT_EQ(j["kv_cache"]["bytes_per_token_all_layers"], 30 * 3 * 64 * 2 * 2);  // f16, the default
  // The default cascade: 64 sinks + 2048 slots per layer, keys and values in f16.
  EXPECT_EQ(j["kv_cache"]["bytes"], size_t{64 + 2048} * 30 * 3 * 64 * 2 * 2);
  EXPECT_GT(j["tensors"]["count"].get<int>(), 100);
  EXPECT_TRUE(j["metadata"].contains("general.architecture"));
}

TEST_F(CliWithModel, GreedyGenerateJsonHasTheRequestedTokens) {
  const std::string args =
      "generate -m '" + kSmolLM + "' -p 'The capital of France is' --temp 0 -n 8 --json -t 2";
  const Result a = run(args);
  ASSERT_EQ(a.code, 0) << a.err;
  const auto j = nlohmann::json::parse(a.out);
  EXPECT_EQ(j["n_generated"], 8);
  EXPECT_EQ(j["tokens"].size(), 8u);
  EXPECT_EQ(j["stop"], "limit");
  EXPECT_GT(j["prompt_tokens"].get<int>(), 3);
  EXPECT_FALSE(j["text"].get<std::string>().empty());
  EXPECT_GT(j["kv_bytes"].get<size_t>(), 0u);
  EXPECT_EQ(j["cache"]["policy"], "cascade");
  // Greedy is deterministic, and the streamed text is the JSON's text.
  const Result b = run(args);
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(nlohmann::json::parse(b.out)["tokens"], j["tokens"]);
  const Result streamed = run("generate -m '" + kSmolLM +
                           "' -p 'The capital of France is' --temp 0 -n 8 -t 2");
  ASSERT_EQ(streamed.code, 0) << streamed.err;
  EXPECT_EQ(streamed.out, j["text"].get<std::string>() + "\n");
}

// A finished reply: greedy ends it with <|im_end|> at once, unless --ignore-eos bans the
// end-of-generation ids; then only -n ends the stream, and none of them is among the tokens.
TEST_F(CliWithModel, IgnoreEosRunsToTheLimit) {
  const std::string args = "generate -m '" + kSmolLM +
                           "' -p '<|im_start|>user\nSay yes.<|im_end|>\n<|im_start|>assistant\n"
                           "Yes.' --temp 0 -n 12 --json -t 2";
  const Result stops = run(args);
  ASSERT_EQ(stops.code, 0) << stops.err;
  const auto a = nlohmann::json::parse(stops.out);
  EXPECT_EQ(a["stop"], "eog");
  EXPECT_LT(a["n_generated"].get<int>(), 12);
  const Result endless = run(args + " --ignore-eos");
  ASSERT_EQ(endless.code, 0) << endless.err;
  const auto b = nlohmann::json::parse(endless.out);
  EXPECT_EQ(b["stop"], "limit");
  EXPECT_EQ(b["n_generated"], 12);
  for (int id : b["tokens"]) EXPECT_TRUE(id != 0 && id != 2) << "end-of-generation id " << id;
}

TEST_F(CliWithModel, FullCacheRefusesAPromptLongerThanTheContext) {
  const Result r = run("generate -m '" + kSmolLM +
                    "' --cache full -c 4 -p 'one two three four five six seven eight' -n 1");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("--ctx-size"), std::string::npos) << r.err;
}

TEST_F(CliWithModel, ChatReadsPipedTurns) {
  const fs::path turns = fs::temp_directory_path() / ("kvc_chat_" + std::to_string(getpid()));
  const std::string chat = "chat -m '" + kSmolLM + "' --temp 0 -n 12 -t 2 < '" + turns.string() + "'";
  std::ofstream(turns) << "Hello!\nWhat is 2+2?\n";
  const Result r = run(chat);
  ASSERT_EQ(r.code, 0) << r.err;
  // Two replies, each ended by a newline.
  EXPECT_GE(count_lines(r.out), 2) << r.out;
  EXPECT_GT(r.out.size(), 4u) << r.out;
  // Nothing after /exit is answered.
  std::ofstream(turns) << "/exit\nHello!\n";
  const Result stopped = run(chat);
  fs::remove(turns);
  EXPECT_EQ(stopped.code, 0) << stopped.err;
  EXPECT_EQ(stopped.out, "");
}

TEST_F(CliWithModel, BenchJsonReportsBothTests) {
  const Result r = run("bench -m '" + kSmolLM + "' -p 32 -n 4 -r 2 -t 2 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["test"], "pp32");
  EXPECT_EQ(j[1]["test"], "tg4");
  for (const auto& t : j) {
    EXPECT_EQ(t["samples_ts"].size(), 2u);
    EXPECT_GT(t["avg_ts"].get<double>(), 0.0);
  }
}

// --along: one stream, a prefill stretch up to each depth and -n generated tokens there.
TEST_F(CliWithModel, BenchAlongMeasuresOneGrowingStream) {
  const Result r = run("bench -m '" + kSmolLM +
                       "' --along 48,96 -n 4 --cache cascade --sinks 4 --cache-size 32 -t 2 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 4u);
  EXPECT_EQ(j[0]["test"], "pp48");
  EXPECT_EQ(j[1]["test"], "tg4 @ d48");
  EXPECT_EQ(j[2]["test"], "pp43 @ d53");  // 48 + the token before generation + 4 generated
  EXPECT_EQ(j[3]["test"], "tg4 @ d96");
  EXPECT_EQ(j[2]["n_prompt"], 43);
  EXPECT_EQ(j[3]["n_depth"], 96);
  for (const auto& t : j) {
    EXPECT_EQ(t["samples_ts"].size(), 1u);
    EXPECT_GT(t["avg_ts"].get<double>(), 0.0);
    EXPECT_GT(t["peak_rss_bytes"].get<size_t>(), 0u);
  }
}

// A quick path of every passkey option: protocols, haystacks, needles, the oracle, span units.
TEST_F(CliWithModel, PasskeyOptionsRunOnAShortPrompt) {
  const std::string base = "passkey -m '" + kSmolLM + "' --lengths 320 --samples 1 --max-new 6 " +
                           "--sinks 8 --cache-size 64 -t 2 --json ";
  const std::string kjv = std::string(KVC_SOURCE_DIR) + "/data/kjv.txt";
  const std::vector<std::string> variants = {
      "",
      "--protocol landmark",
      "--needle multikey --cache window",
      "--needle word --cache full",
      "--haystack prose:'" + kjv + "' --cache window",
      "--haystack filler --format plain",
      "--oracle --cache window",
      "--oracle --oracle-copies 1 --cache window",
      "--cascade-unit span --cascade-sizes 16,8,8,8,8,8,8 --unit-max 4",
      "--cascade-unit span --cascades 2 --unit-score peak --value-norm",
      "--cascade-unit span --cascades 2 --unit-score mean",
      "--cascade-unit span --cascades 2 --unit-share layer",
      "--cascade-unit span --cascades 2 --unit-share model --share-reduce max",
      "--cascade-unit span --cascades 2 --unit-share model --share-reduce max --unit-compete lowest",
  };
  for (const std::string& v : variants) {
    SCOPED_TRACE(v);
    const Result r = run(base + v);
    ASSERT_EQ(r.code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j["samples"].size(), 5u);
    for (const auto& s : j["samples"]) {
      EXPECT_TRUE(s.contains("exact"));
      EXPECT_GE(s["key_intact"].get<double>(), 0.0);
      EXPECT_LE(s["key_intact"].get<double>(), 1.0);
    }
    EXPECT_EQ(j["table"][0]["n"], 5);
    if (v.find("--oracle") != std::string::npos) {
      for (const auto& s : j["samples"]) EXPECT_EQ(s["key_intact"], 1.0);
    }
    if (v.find("--unit-share model") != std::string::npos) {  // in every cache or in none
      for (const auto& s : j["samples"])
        EXPECT_TRUE(s["key_intact"] == 0.0 || s["key_intact"] == 1.0) << s["key_intact"];
    }
  }
}

TEST_F(CliWithModel, SpanCascadeStreams) {
  const Result r = run("generate -m '" + kSmolLM + "' -p 'Once upon a time' --temp 0 -n 300 " +
                       "--ignore-eos --sinks 8 --cache-size 96 --cascade-unit span --unit-max 8 " +
                       "--cascade-sizes 32,16,16,16,16 -t 2 --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["n_generated"], 300);
  EXPECT_EQ(j["cache"]["unit"], "span");
  EXPECT_EQ(j["cache"]["level_sizes"].size(), 5u);
}

// -ctk/-ctv (--cache-type-k/-v) on every subcommand that runs the model: a type the cache cannot
// store exits 2 before the model is opened, naming the flag.
TEST_F(Cli, BadCacheTypesExit2) {
  for (const char* cmd : {"generate -p hi", "info", "bench", "chat", "perplexity -f /x.txt",
                          "passkey", "serve"}) {
    SCOPED_TRACE(cmd);
    const std::string base = std::string(cmd) + " -m /nonexistent.gguf ";
    const Result k = run(base + "--cache-type-k q4_0");
    EXPECT_EQ(k.code, 2);
    EXPECT_NE(k.err.find("--cache-type-k"), std::string::npos) << k.err;
    const Result v = run(base + "-ctv bf16");
    EXPECT_EQ(v.code, 2);
    EXPECT_NE(v.err.find("--cache-type-v"), std::string::npos) << v.err;
    EXPECT_EQ(run(base + "-ctk").code, 2) << "a type is required";
    EXPECT_EQ(run(base + "-ctk F16").code, 2) << "names are lower case, as llama.cpp's";
  }
}

// The storage types reach the cache: info reports them and the bytes they take, and every
// policy generates with q8_0 keys and f32 values.
TEST_F(CliWithModel, CacheTypesReachTheCache) {
  auto info = [&](const std::string& flags) {
    const Result r = run("info -m '" + kSmolLM + "' --json " + flags);
    EXPECT_EQ(r.code, 0) << r.err;
    return nlohmann::json::parse(r.out)["kv_cache"];
  };
  const auto f16 = info(""), f32 = info("-ctk f32 -ctv f32"), q8 = info("-ctk q8_0 -ctv q8_0");
  EXPECT_EQ(f16["type_k"], "f16");
  EXPECT_EQ(f16["type_v"], "f16");
  EXPECT_EQ(q8["type_k"], "q8_0");
  EXPECT_EQ(f32["bytes"].get<uint64_t>(), 2 * f16["bytes"].get<uint64_t>());
  EXPECT_EQ(q8["bytes"].get<uint64_t>() * 64, f16["bytes"].get<uint64_t>() * 34);  // 68 of 128 bytes a row
  for (const char* policy : {"full", "window", "cascade", "h2o"}) {
    SCOPED_TRACE(policy);
    const Result r = run("generate -m '" + kSmolLM + "' -p 'Once upon a time' --temp 0 -n 80 " +
                         "--ignore-eos --sinks 4 --cache-size 32 -c 256 -t 2 --json " +
                         "--cache " + policy + " -ctk q8_0 --cache-type-v f32");
    ASSERT_EQ(r.code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["n_generated"], 80);
    EXPECT_EQ(j["cache"]["type_k"], "q8_0");
    EXPECT_EQ(j["cache"]["type_v"], "f32");
  }
}

TEST_F(Cli, BadSpanAndPasskeyFlagsExit2) {
  // Sub-caches of 64 slots cannot hold spans of up to 79 tokens.
  EXPECT_EQ(run("generate -m /x.gguf -p hi --cascade-unit span --unit-max 40 --cache-size 256").code, 2);
  EXPECT_EQ(run("generate -m /x.gguf -p hi --cascade-sizes 64,x").code, 2);
  EXPECT_EQ(run("generate -m /x.gguf -p hi --cascade-unit word").code, 2);
  EXPECT_EQ(run("generate -m /x.gguf -p hi --unit-score median").code, 2);
  EXPECT_EQ(run("generate -m /x.gguf -p hi --unit-share everyone").code, 2);
  EXPECT_EQ(run("generate -m /x.gguf -p hi --share-reduce mean").code, 2);
  EXPECT_EQ(run("generate -m /x.gguf -p hi --unit-compete oldest").code, 2);
  EXPECT_EQ(run("passkey -m /x.gguf --oracle --cache cascade").code, 2);
  EXPECT_EQ(run("passkey -m /x.gguf --oracle-copies 1 --cache window").code, 2);
  EXPECT_EQ(run("passkey -m /x.gguf --haystack sand").code, 2);
  EXPECT_EQ(run("passkey -m /x.gguf --needle pin").code, 2);
  EXPECT_EQ(run("passkey -m /x.gguf --protocol ruler").code, 2);
}

// Output that cannot be written is an error (exit 1), found after the buffers are flushed.
TEST_F(CliWithModel, FullStdoutExits1) {
  const Result info = run("info -m '" + kSmolLM + "'", "", "/dev/full");
  EXPECT_EQ(info.code, 1);
  EXPECT_NE(info.err.find("standard output"), std::string::npos) << info.err;
  const Result gen = run("generate -m '" + kSmolLM + "' -p hi -n 4 --temp 0 -t 2", "", "/dev/full");
  EXPECT_EQ(gen.code, 1);
  const Result json = run("generate -m '" + kSmolLM + "' -p hi -n 4 --temp 0 -t 2 --json", "", "/dev/full");
  EXPECT_EQ(json.code, 1);
}

// A result file that fails at the end (here at close: /dev/full takes the open) costs exit 1,
// but the results are on stdout all the same.
TEST_F(CliWithModel, FailingResultFileKeepsTheResults) {
  const Result csv = run("passkey -m '" + kSmolLM +
                         "' --protocol landmark --lengths 128 --samples 1 --max-new 8 -t 2 --csv /dev/full");
  EXPECT_EQ(csv.code, 1);
  EXPECT_NE(csv.err.find("--csv"), std::string::npos) << csv.err;
  EXPECT_NE(csv.out.find("length"), std::string::npos) << csv.out;
  EXPECT_NE(csv.out.find("128"), std::string::npos) << csv.out;
  const Result slots = run("perplexity -m '" + kSmolLM + "' -f '" + small_text() +
                           "' -t 2 --json --slots-out /dev/full");
  EXPECT_EQ(slots.code, 1);
  EXPECT_NE(slots.err.find("--slots-out"), std::string::npos) << slots.err;
  EXPECT_GT(nlohmann::json::parse(slots.out)["scored"].get<int>(), 10) << slots.out;
}

// The passkey prompt's fixed parts take more than 64 tokens: a flag error, before any sample.
TEST_F(CliWithModel, PasskeyLengthTooShortIsAFlagError) {
  const Result r = run("passkey -m '" + kSmolLM + "' --lengths 64,2048 -t 2");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--lengths"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
}

// A path (or model name) that is not UTF-8 gets U+FFFD in every --json report, perplexity's too.
TEST_F(CliWithModel, JsonReportsSurviveANonUtf8Path) {
  const fs::path link = scratch_dir() / "model-\xff.gguf";
  fs::remove(link);
  fs::create_symlink(kSmolLM, link);
  const Result ppl = run("perplexity -m '" + link.string() + "' -f '" + small_text() + "' -t 2 --json");
  ASSERT_EQ(ppl.code, 0) << ppl.err;
  EXPECT_NE(nlohmann::json::parse(ppl.out)["model_file"].get<std::string>().find("\uFFFD"),
            std::string::npos);
  const Result info = run("info -m '" + link.string() + "' --json");
  ASSERT_EQ(info.code, 0) << info.err;
  EXPECT_NE(nlohmann::json::parse(info.out)["file"]["path"].get<std::string>().find("\uFFFD"),
            std::string::npos);
  fs::remove(link);
}

// Ctrl-C in generate --json: the JSON object of what was generated, exit 130.
TEST_F(CliWithModel, InterruptedGenerateJsonPrintsWhatItHas) {
  Child c({"generate", "-m", kSmolLM, "-p", "Once upon a time", "--temp", "0", "-n", "-1",
           "--ignore-eos", "--report-every", "8", "--json", "-t", "2"});
  ASSERT_TRUE(c.wait_until([&] { return c.err().find("[stream]") != std::string::npos; }, 60))
      << c.err();
  c.signal(SIGINT);
  ASSERT_EQ(c.wait(20), 130) << c.err();
  const auto j = nlohmann::json::parse(c.out());
  EXPECT_EQ(j["stop"], "interrupted");
  EXPECT_GE(j["n_generated"].get<int>(), 8);
  EXPECT_EQ(j["tokens"].size(), j["n_generated"].get<size_t>());
}

// SIGTERM (systemd, timeout) acts as Ctrl-C: the text so far and the stats line.
TEST_F(CliWithModel, TerminatedGenerateKeepsItsStatsLine) {
  Child c({"generate", "-m", kSmolLM, "-p", "Once upon a time", "--temp", "0", "-n", "-1",
           "--ignore-eos", "-t", "2"});
  ASSERT_TRUE(c.wait_until([&] { return c.out().size() > 20; }, 60)) << c.err();
  c.signal(SIGTERM);
  ASSERT_EQ(c.wait(20), 130) << c.err();
  EXPECT_NE(c.err().find("stop: interrupted"), std::string::npos) << c.err();
}

// bench reports the tests it finished when interrupted (a long stretch is still prefilling).
TEST_F(CliWithModel, InterruptedBenchReportsWhatItFinished) {
  Child c({"bench", "-m", kSmolLM, "--along", "32,1000000", "-n", "4", "--cache", "window",
           "--sinks", "4", "--cache-size", "64", "--json", "-t", "2"});
  std::this_thread::sleep_for(std::chrono::seconds(4));
  c.signal(SIGINT);
  ASSERT_EQ(c.wait(20), 130) << c.err();
  const auto j = nlohmann::json::parse(c.out());
  ASSERT_TRUE(j.is_array());
  EXPECT_LE(j.size(), 2u);  // pp32 and tg4 @ d32 at most: the million-token stretch never ends
  EXPECT_NE(c.err().find("interrupted"), std::string::npos) << c.err();
}

// Cancellation is polled inside a stride, not only between strides: one long stride stops
// within a moment, with the (empty) partial result.
TEST_F(CliWithModel, InterruptedPerplexityStopsInsideALongStride) {
  const fs::path text = scratch_dir() / "long.txt";
  {
    std::ofstream out(text);
    for (int i = 0; i < 400; ++i) out << "The quick brown fox jumps over the lazy dog. ";
  }
  Child c({"perplexity", "-m", kSmolLM, "-f", text.string(), "--stride", "4096", "--max-tokens",
           "4096", "--cache", "full", "--json", "-t", "2"});
  ASSERT_TRUE(c.wait_until([&] { return c.err().find("perplexity:") != std::string::npos; }, 60))
      << c.err();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // well inside the stride
  const auto t0 = std::chrono::steady_clock::now();
  c.signal(SIGINT);
  ASSERT_EQ(c.wait(120), 130) << c.err();
  EXPECT_LT(seconds_since(t0), 3.0) << "the stride ran on after Ctrl-C";
  const auto j = nlohmann::json::parse(c.out());
  EXPECT_TRUE(j["cancelled"].get<bool>());
  EXPECT_EQ(j["tokens_fed"], 0);
}

// Ctrl-C in chat ends the reply; the chat goes on to the next line.
TEST_F(CliWithModel, InterruptInChatEndsTheReplyOnly) {
  Child c({"chat", "-m", kSmolLM, "--temp", "0", "-n", "4000", "-t", "2"});
  c.write_stdin("Count from 1 to 1000, one number per line.\n");
  ASSERT_TRUE(c.wait_until([&] { return c.out().size() > 40; }, 60)) << c.err();
  c.signal(SIGINT);
  // The reply ends with its newline; then the next turn is answered.
  ASSERT_TRUE(c.wait_until([&] { return c.out().back() == '\n'; }, 20)) << c.out();
  const size_t first_reply = c.out().size();
  c.write_stdin("Say hello.\n");
  c.close_stdin();
  ASSERT_EQ(c.wait(60), 0) << c.err();
  EXPECT_GT(c.out().size(), first_reply + 1) << c.out();
}

// --cache full: a conversation that outgrows -c ends with chat's notice, exit 0.
TEST_F(CliWithModel, ChatWithAFullContextEndsWithANotice) {
  const fs::path turns = scratch_dir() / "turns.txt";
  // The third turn alone does not fit in what is left.
  std::ofstream(turns) << "Hello!\nWhat is 2+2?\nPlease tell me, in as many words as you like, "
                          "everything you know about the long history of the city of Paris, its "
                          "bridges and its river.\n";
  const Result r = run("chat -m '" + kSmolLM + "' --cache full -c 80 --temp 0 -n 4 -t 2 < '" +
                       turns.string() + "'");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("the context is full"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("error"), std::string::npos) << r.err;
}

}  // namespace
