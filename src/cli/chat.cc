// kvcascade chat: a conversation on stdin, one user turn per line, until EOF or /exit. The
// session keeps its cache between turns: each turn feeds only the text the template adds.
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "cli/generation.h"
#include "tokenizer/chat_template.h"

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

// Where the new rendering of the conversation continues past what the session has seen:
// `at_gen` (the last rendering, with the generation prompt) followed by the raw `reply`.
// Templates append, so usually the whole seen text is a prefix. Some (Gemma's) trim the reply
// they re-render; then the turn resumes after the trimmed reply, and the whitespace the model
// generated stays in the cache instead of costing a fresh start. npos: start afresh.
size_t resume_point(const std::string& rendered, const std::string& at_gen,
                    const std::string& reply) {
  const std::string seen = at_gen + reply;
  if (rendered.compare(0, seen.size(), seen) == 0) return seen.size();
  if (rendered.compare(0, at_gen.size(), at_gen) != 0) return std::string::npos;
  size_t i = at_gen.size();
  while (i < rendered.size() && std::isspace(static_cast<unsigned char>(rendered[i]))) ++i;
  const std::string trimmed = trim(reply);
  if (rendered.compare(i, trimmed.size(), trimmed) != 0) return std::string::npos;
  return i + trimmed.size();
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

  std::vector<ChatMessage> messages;
  if (!f.system.empty()) messages.push_back({"system", f.system});
  std::string at_gen;             // the last rendering fed, ending in the generation prompt
  std::string reply;              // the reply generated after it, all fed
  std::vector<int32_t> history;   // every token fed, for the repetition penalty
  const bool interactive = isatty(STDIN_FILENO);

  std::string line;
  while (true) {
    if (interactive) std::fprintf(stderr, "> ");
    if (!std::getline(std::cin, line)) break;
    line = trim(line);
    if (line == "/exit") break;
    if (line.empty()) continue;

    messages.push_back({"user", line});
    const std::string rendered = apply_chat_template(model->chat_format(), messages, true);
    const size_t resume = at_gen.empty() ? std::string::npos : resume_point(rendered, at_gen, reply);
    const bool first = resume == std::string::npos;
    if (first) {
      if (!at_gen.empty())
        std::fprintf(stderr, "kvcascade: the template rewrote earlier turns; re-reading the conversation\n");
      session.reset();
      history.clear();
    }
    const std::string new_text = first ? rendered : rendered.substr(resume);
    const std::vector<int32_t> tokens = tokenizer.encode(new_text, /*add_special=*/first, true);
    session.feed(tokens);
    history.insert(history.end(), tokens.begin(), tokens.end());
    at_gen = rendered;

    const Generation g = generate(session, sampler, tokenizer, history, f.prompt.n_predict,
                                  /*feed_last=*/true, [](std::string_view piece) {
                                    std::fwrite(piece.data(), 1, piece.size(), stdout);
                                    std::fflush(stdout);
                                  });
    std::printf("\n");
    std::fflush(stdout);
    reply = g.text;
    messages.push_back({"assistant", g.text});
    if (g.stop == "context") {
      std::fprintf(stderr, "kvcascade: the context is full (raise -c or use a bounded --cache)\n");
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
