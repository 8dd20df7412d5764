// Runs the kvcascade binary as a user would, for the CLI tests: through the shell, both streams
// captured. The binary is the one next to the test executable (both live in the build
// directory), or $KVC_BIN.
#pragma once

#include <filesystem>
#include <string>

namespace kvc::test {

struct CliResult {
  int code = -1;
  std::string out;
  std::string err;
};

struct CliRun {
  std::string cwd;          // run there ("" = here)
  std::string stdout_path;  // send stdout there instead of capturing it ("" = capture)
  int timeout_s = 0;        // run under timeout(1) (a hang then exits 124); 0 = none
  bool null_stdin = false;  // stdin from /dev/null
};

std::string kvcascade_binary();
std::string slurp(const std::filesystem::path& path);
// A directory of this test process's own, made on first use.
std::filesystem::path scratch_dir(const std::string& name);
// Runs `kvcascade ARGS` (ARGS are shell words and may redirect stdin).
CliResult run_cli(const std::string& args, const CliRun& how = {});

}  // namespace kvc::test
