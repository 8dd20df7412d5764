// The subcommands, one file each. Each adds its CLI11 subcommand to `root` and returns what to
// run when the user picks it; the flag variables live in the returned closure.
#pragma once

#include "cli/common.h"

namespace kvc::cli {

Command add_generate(CLI::App& root);
Command add_chat(CLI::App& root);
Command add_info(CLI::App& root);
Command add_bench(CLI::App& root);
Command add_perplexity(CLI::App& root);  // perplexity.cc, passkey.cc: the eval helper's
Command add_passkey(CLI::App& root);
Command add_serve(CLI::App& root);

}  // namespace kvc::cli
