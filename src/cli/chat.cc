// kvcascade chat: a conversation on stdin, one user turn per line, until EOF or /exit. The
// session keeps its cache between turns: each turn feeds only the text the template adds, and
// nothing of the conversation is kept beyond the last exchange, so memory stays flat.
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "engine/generation.h"
#include "eval/interrupt.h"
#include "tokenizer/chat_turns.h"

namespace kvc::cli {

namespace {

struct ChatFlags {
  ModelFlags model;
  CacheFlags cache;
  SamplingFlags sampling;
  PromptFlags prompt;  // -n only
  std::string system;
};

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  const size_t b = s.find_last_not_of(" \t\r\n");
  return s.substr(a, b - a + 1);
}

int run_chat(ChatFlags& f) {
  validate(f.model);
  validate(f.cache);
  validate(f.sampling);
  validate(f.prompt);
  const auto model = load_model(f.model.model);
  const Tokenizer& tokenizer = model->tokenizer();
  Session session(*model, session_options(f.model, f.cache));
  Sampler sampler(f.sampling.params, session.vocab_size());

  ChatTurns turns(model->chat_format(), f.system);
  // The last tokens fed, for the repetition penalty: what it reads, no more (-1 reads all).
  std::vector<int32_t> history;
  const int64_t look_back = f.sampling.params.repeat_last_n;
  const bool interactive = isatty(STDIN_FILENO);
  const char* const full_notice = "kvcascade: the context is full (raise -c or use a bounded --cache)\n";

  std::string line;
  while (true) {
    if (interactive) std::fprintf(stderr, "> ");
    if (!std::getline(std::cin, line)) break;
    line = trim(line);
    if (line == "/exit") break;
    if (line.empty()) continue;

    // Ctrl-C (or SIGTERM) from here to the end of the reply ends the reply, not the chat; at the
    // prompt, the handler is gone and it exits.
    ScopedInterrupt interrupt;
    const ChatTurns::Next next = turns.user(line);
    if (next.restart) {
      if (session.n_past() > 0)
        std::fprintf(stderr, "kvcascade: the template rewrote earlier turns; starting afresh\n");
      session.reset();
      history.clear();
    }
    const std::vector<int32_t> tokens = tokenizer.encode(next.text, /*add_special=*/next.restart, true);
    if (!session_fits(session, static_cast<int64_t>(tokens.size()))) {
      std::fputs(full_notice, stderr);
      break;
    }
    session.feed(tokens);
    history.insert(history.end(), tokens.begin(), tokens.end());

    StreamOptions so;
    so.cancel = interrupt.flag();
    const Generation g = generate(session, sampler, tokenizer, history, f.prompt.n_predict,
                                  /*feed_last=*/true, [](std::string_view piece) {
                                    std::fwrite(piece.data(), 1, piece.size(), stdout);
                                    std::fflush(stdout);
                                  }, so);
    std::printf("\n");
    std::fflush(stdout);
    turns.assistant(g.text);
    if (look_back >= 0 && static_cast<int64_t>(history.size()) > look_back)
      history.erase(history.begin(), history.end() - look_back);
    if (g.stop == "context") {
      std::fputs(full_notice, stderr);
      break;
    }
  }
  return 0;
}

}  // namespace

Command add_chat(CLI::App& root) {
  auto flags = std::make_shared<ChatFlags>();
  flags->prompt.n_predict = -1;
  CLI::App* app = root.add_subcommand(
      "chat", "chat on stdin: one message per line, /exit or end of input to stop");
  add_model_flags(*app, flags->model);
  add_cache_flags(*app, flags->cache);
  add_sampling_flags(*app, flags->sampling);
  app->add_option("-n,--n-predict", flags->prompt.n_predict,
                  "most tokens per reply (-1: until the end of the turn)");
  app->add_option("--system", flags->system, "system message that opens the conversation");
  return {app, [flags] { return run_chat(*flags); }};
}

}  // namespace kvc::cli
