// The kvcascade binary as a user meets it: exit codes, error lines, JSON output. The binary is
// found next to this test executable (both live in the build directory), or at $KVC_BIN.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {

namespace fs = std::filesystem;

const std::string kSmolLM = std::string(KVC_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";

std::string binary() {
  if (const char* env = std::getenv("KVC_BIN")) return env;
  return (fs::read_symlink("/proc/self/exe").parent_path() / "kvcascade").string();
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

// Runs `kvcascade ARGS` through the shell (ARGS may redirect stdin), capturing both streams.
Result run(const std::string& args, const std::string& cwd = "") {
  const fs::path dir = fs::temp_directory_path() / ("kvc_cli_test_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const fs::path out = dir / "out", err = dir / "err";
  std::string cmd = fmt::format("'{}' {} >'{}' 2>'{}'", binary(), args, out.string(), err.string());
  if (!cwd.empty()) cmd = fmt::format("cd '{}' && {}", cwd, cmd);
  const int status = std::system(cmd.c_str());
  Result r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
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
  // The default cascade: 64 sinks + 2048 slots per layer.
  EXPECT_EQ(j["kv_cache"]["bytes"], size_t{64 + 2048} * 30 * 3 * 64 * 2 * 4);
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
      "--cascade-unit span --cascade-sizes 16,8,8,8,8,8,8 --unit-max 4",
      "--cascade-unit span --cascades 2 --unit-score peak --value-norm",
      "--cascade-unit span --cascades 2 --unit-score mean",
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

TEST_F(Cli, BadSpanAndPasskeyFlagsExit2) {
  // Sub-caches of 64 slots cannot hold spans of up to 79 tokens.
  EXPECT_EQ(run("generate -m /x.gguf -p hi --cascade-unit span --unit-max 40 --cache-size 256").code, 2);
  EXPECT_EQ(run("generate -m /x.gguf -p hi --cascade-sizes 64,x").code, 2);
  EXPECT_EQ(run("generate -m /x.gguf -p hi --cascade-unit word").code, 2);
  EXPECT_EQ(run("generate -m /x.gguf -p hi --unit-score median").code, 2);
  EXPECT_EQ(run("passkey -m /x.gguf --oracle --cache cascade").code, 2);
  EXPECT_EQ(run("passkey -m /x.gguf --haystack sand").code, 2);
  EXPECT_EQ(run("passkey -m /x.gguf --needle pin").code, 2);
  EXPECT_EQ(run("passkey -m /x.gguf --protocol ruler").code, 2);
}

}  // namespace
