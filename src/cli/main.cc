// kvcascade: generate | chat | info | bench | perplexity | passkey | serve. Bad flags exit 2 with CLI11's message; any other
// failure prints one line "kvcascade: error: ..." and exits 1, and so does output that could not
// be written.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/output.h"
#include "cli/strict_integers.h"

namespace {

// The exit code, unless stdout lost what was written to it: then 1, with the reason.
int checked_exit(int code) {
  std::string why;
  if (kvc::cli::stdout_written(why)) return code;
  std::fprintf(stderr, "kvcascade: error: cannot write to standard output: %s\n", why.c_str());
  return 1;
}

// llama.cpp's multi-letter short flags, which CLI11 cannot name: -np, -to, -ctk and -ctv become
// their long forms before parsing.
std::vector<char*> llama_style_flags(int argc, char** argv) {
  static char parallel[] = "--parallel", timeout[] = "--timeout";
  static char type_k[] = "--cache-type-k", type_v[] = "--cache-type-v";
  std::vector<char*> args(argv, argv + argc);
  for (char*& a : args) {
    if (std::string(a) == "-np") a = parallel;
    if (std::string(a) == "-to") a = timeout;
    if (std::string(a) == "-ctk") a = type_k;
    if (std::string(a) == "-ctv") a = type_v;
  }
  return args;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace kvc::cli;
  CLI::App app{"kvcascade: CPU inference for GGUF models with a cascading KV cache"};
  app.option_defaults()->always_capture_default(true);
  // A flag given twice takes its last value, as in llama.cpp (scripts/demo.sh relies on it).
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.require_subcommand(1);
  app.set_version_flag("--version", "kvcascade 0.1");

  std::vector<Command> commands;
  try {
    commands = {add_generate(app),   add_chat(app),    add_info(app),
                add_bench(app),      add_perplexity(app), add_passkey(app),
                add_serve(app)};
    make_integer_options_strict(app);
    std::vector<char*> args = llama_style_flags(argc, argv);
    app.parse(static_cast<int>(args.size()), args.data());
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help, version or the message
    return checked_exit(code == 0 ? 0 : 2);
  }

  try {
    for (const Command& c : commands)
      if (c.app->parsed()) return checked_exit(c.run());
    return 2;  // unreachable: require_subcommand(1)
  } catch (const UsageError& e) {
    std::fprintf(stderr, "kvcascade: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "kvcascade: error: %s\n", e.what());
    return 1;
  }
}
