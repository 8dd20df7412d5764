#include "support/cli_runner.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace kvc::test {

namespace fs = std::filesystem;

std::string kvcascade_binary() {
  if (const char* env = std::getenv("KVC_BIN")) return env;
  return (fs::read_symlink("/proc/self/exe").parent_path() / "kvcascade").string();
}

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

fs::path scratch_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / (name + "_" + std::to_string(getpid()));
  fs::create_directories(dir);
  return dir;
}

CliResult run_cli(const std::string& args, const CliRun& how) {
  const fs::path dir = scratch_dir("kvc_cli_run");
  const fs::path out = how.stdout_path.empty() ? dir / "out" : fs::path(how.stdout_path);
  const fs::path err = dir / "err";
  std::string cmd = fmt::format("'{}' {} >'{}' 2>'{}'{}", kvcascade_binary(), args, out.string(),
                                err.string(), how.null_stdin ? " </dev/null" : "");
  if (how.timeout_s > 0) cmd = fmt::format("timeout -k 5 {} {}", how.timeout_s, cmd);
  if (!how.cwd.empty()) cmd = fmt::format("cd '{}' && {}", how.cwd, cmd);
  const int status = std::system(cmd.c_str());
  CliResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (how.stdout_path.empty()) r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

}  // namespace kvc::test
