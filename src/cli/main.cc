// kvcascade: generate | chat | info | bench | perplexity | passkey. Bad flags exit 2 with CLI11's message; any other
// failure prints one line "kvcascade: error: ..." and exits 1.
#include <cstdio>
#include <exception>
#include <vector>

#include "cli/commands.h"

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
                add_bench(app),      add_perplexity(app), add_passkey(app)};
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints help, version or the message
    return code == 0 ? 0 : 2;
  }

  try {
    for (const Command& c : commands)
      if (c.app->parsed()) return c.run();
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
