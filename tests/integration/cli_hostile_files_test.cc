// The kvcascade binary on model paths and model files a hostile (or unlucky) user hands it: a
// FIFO, a symlink loop, and copies of the real models with one value changed in place, as the
// mutation test (scripts/mutation-test.sh) makes them. Each ends with one error line naming
// what is wrong, never a hang, a flood of memory, or exit 0 with junk. The binary is found next
// to this test executable, or at $KVC_BIN.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "support/cli_runner.h"

#include "gguf/gguf_file.h"

namespace {

namespace fs = std::filesystem;

const std::string kModels = std::string(KVC_SOURCE_DIR) + "/models/";
const std::string kSmolLM = kModels + "SmolLM2-135M-Instruct.Q4_1.gguf";
const std::string kGemma = kModels + "gemma-3-270m-q4_k_m.gguf";

using Result = kvc::test::CliResult;

std::string binary() { return kvc::test::kvcascade_binary(); }
fs::path scratch_dir() { return kvc::test::scratch_dir("kvc_hostile"); }

// Runs `timeout 60 kvcascade ARGS`, capturing both streams; a hang shows as exit 124.
Result run(const std::string& args) {
  return kvc::test::run_cli(args, {.cwd = "", .stdout_path = "", .timeout_s = 60, .null_stdin = true});
}

// One "kvcascade: error: ..." line and nothing else on stderr.
::testing::AssertionResult one_error_line(const Result& r, const std::string& expected) {
  if (r.code != 1) return ::testing::AssertionFailure() << "exit " << r.code << ": " << r.err;
  if (r.err.rfind("kvcascade: error: ", 0) != 0 || std::count(r.err.begin(), r.err.end(), '\n') != 1)
    return ::testing::AssertionFailure() << "not one error line: " << r.err;
  if (r.err.find(expected) == std::string::npos)
    return ::testing::AssertionFailure() << "'" << expected << "' not in: " << r.err;
  return ::testing::AssertionSuccess();
}

// One in-place edit of a model file: bytes to write at an offset.
struct Patch {
  size_t offset = 0;
  std::vector<uint8_t> bytes;
};

// A copy of `model` in the scratch directory with the patch `edit` computes. The model is
// parsed from a private mapping, so offsets are differences of pointers into it.
std::string patched_copy(const std::string& model, const std::string& name,
                         const std::function<Patch(const uint8_t* base, const kvc::GgufFile&)>& edit) {
  const int fd = ::open(model.c_str(), O_RDONLY);
  if (fd < 0) throw std::runtime_error("cannot open " + model);
  const size_t size = static_cast<size_t>(::lseek(fd, 0, SEEK_END));
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) throw std::runtime_error("cannot map " + model);
  const auto* base = static_cast<const uint8_t*>(map);
  Patch p;
  {
    const auto file = kvc::GgufFile::parse(base, size);
    p = edit(base, *file);
  }
  ::munmap(map, size);
  const fs::path path = scratch_dir() / name;
  fs::copy_file(model, path, fs::copy_options::overwrite_existing);
  std::fstream out(path, std::ios::binary | std::ios::in | std::ios::out);
  out.seekp(static_cast<std::streamoff>(p.offset));
  out.write(reinterpret_cast<const char*>(p.bytes.data()), static_cast<std::streamsize>(p.bytes.size()));
  return path.string();
}

template <typename T>
std::vector<uint8_t> bytes_of(T value) {
  std::vector<uint8_t> b(sizeof value);
  std::memcpy(b.data(), &value, sizeof value);
  return b;
}

// Overwrites the value of scalar metadata `key` with `value` (of the key's width).
template <typename T>
std::function<Patch(const uint8_t*, const kvc::GgufFile&)> set_value(const std::string& key, T value) {
  return [key, value](const uint8_t* base, const kvc::GgufFile& f) {
    const kvc::GgufValue* v = f.find(key);
    if (!v) throw std::runtime_error("no key " + key);
    return Patch{static_cast<size_t>(v->raw - base), bytes_of(value)};
  };
}

class HostileFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(binary())) GTEST_SKIP() << "no kvcascade binary at " << binary();
  }
  void TearDown() override { fs::remove_all(scratch_dir()); }
  void need(const std::string& model) {
    if (!fs::exists(model)) GTEST_SKIP() << "run scripts/fetch-model.sh for " << model;
  }
};

TEST_F(HostileFiles, AFifoIsNamedWithoutBlocking) {
  const std::string fifo = (scratch_dir() / "pipe").string();
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_TRUE(one_error_line(run("info -m '" + fifo + "'"), "is a FIFO (named pipe)"));
}

TEST_F(HostileFiles, ASymlinkLoopIsALoopNotMissing) {
  const fs::path a = scratch_dir() / "a.gguf", b = scratch_dir() / "b.gguf";
  fs::create_symlink(b, a);
  fs::create_symlink(a, b);
  const Result r = run("info -m '" + a.string() + "'");
  EXPECT_TRUE(one_error_line(r, "a symbolic link loop"));
  EXPECT_EQ(r.err.find("not found"), std::string::npos) << r.err;
}

TEST_F(HostileFiles, UnusableEpsilonIsNamed) {
  need(kSmolLM);
  const std::string path = patched_copy(kSmolLM, "eps.gguf",
                                        set_value("llama.attention.layer_norm_rms_epsilon", -1.0f));
  EXPECT_TRUE(one_error_line(run("generate -m '" + path + "' -p Hello -n 2 --temp 0"),
                             "llama.attention.layer_norm_rms_epsilon = -1"));
}

TEST_F(HostileFiles, AHugeSlidingWindowIsNamedBeforeAnyAllocation) {
  need(kGemma);
  for (uint32_t window : {2097152u, 2147483648u}) {
    const std::string path =
        patched_copy(kGemma, "window.gguf", set_value("gemma3.attention.sliding_window", window));
    EXPECT_TRUE(one_error_line(run("info -m '" + path + "'"),
                               fmt::format("gemma3.attention.sliding_window = {}", window)));
  }
}

TEST_F(HostileFiles, RopeBaseZeroIsNamed) {
  need(kGemma);
  const std::string path = patched_copy(kGemma, "rope.gguf", set_value("gemma3.rope.freq_base", 0.0f));
  EXPECT_TRUE(one_error_line(run("info -m '" + path + "'"), "gemma3.rope.freq_base = 0"));
}

TEST_F(HostileFiles, ANanNormWeightIsNamed) {
  need(kSmolLM);
  const std::string path = patched_copy(kSmolLM, "nan_norm.gguf", [](const uint8_t* base, const kvc::GgufFile& f) {
    const kvc::GgufTensor& t = f.require_tensor("blk.7.ffn_norm.weight");  // f32
    return Patch{static_cast<size_t>(t.data - base) + 4 * 3, bytes_of(std::nanf(""))};
  });
  EXPECT_TRUE(one_error_line(run("info -m '" + path + "'"),
                             "tensor 'blk.7.ffn_norm.weight' holds nan at element 3"));
}

// Broken quantized weights (all-ones bytes: NaN block scales) are not scanned at load; the
// first logits show them, and generation stops instead of emitting token 0 as text.
TEST_F(HostileFiles, BrokenWeightsStopGenerationWithAnError) {
  need(kSmolLM);
  const std::string path = patched_copy(kSmolLM, "nan_matrix.gguf", [](const uint8_t* base, const kvc::GgufFile& f) {
    const kvc::GgufTensor& t = f.require_tensor("blk.3.ffn_down.weight");
    return Patch{static_cast<size_t>(t.data - base), std::vector<uint8_t>(t.n_bytes, 0xFF)};
  });
  const Result r = run("generate -m '" + path + "' -p Hello -n 4 --temp 0");
  EXPECT_TRUE(one_error_line(r, "non-finite logits (NaN/Inf) at token "));
}

}  // namespace
