// ChatTurns: the text each turn feeds equals what re-rendering the whole conversation would add,
// while what it holds stays the size of one exchange.
#include <gtest/gtest.h>

#include "tokenizer/chat_turns.h"

namespace kvc {
namespace {

// The old way: keep every message, render them all each turn, feed what is new.
struct FullTranscript {
  ChatFormat format;
  std::vector<ChatMessage> messages;
  std::string at_gen, reply;

  ChatTurns::Next user(const std::string& message) {
    messages.push_back({"user", message});
    const std::string rendered = apply_chat_template(format, messages, true);
    const size_t resume = at_gen.empty() ? std::string::npos : chat_resume_point(rendered, at_gen, reply);
    at_gen = rendered;
    if (resume == std::string::npos) return {rendered, true};
    return {rendered.substr(resume), false};
  }
  void assistant(const std::string& text) {
    reply = text;
    messages.push_back({"assistant", text});
  }
};

TEST(ChatTurns, FeedsWhatTheWholeTranscriptWouldAdd) {
  const std::vector<std::pair<std::string, std::string>> exchange = {
      {"Hello!", "Hi there. How can I help?"},
      {"What is 2+2?", "  4, with the spaces Gemma trims.\n"},
      {"And 3+3?", "6"},
      {"Thanks.", ""},  // an interrupted reply: nothing generated
      {"Bye.", "Goodbye!"}};
  for (ChatFormat format : {ChatFormat::ChatML, ChatFormat::SmolLM2, ChatFormat::Gemma})
    for (const std::string system : {"", "You are terse."}) {
      SCOPED_TRACE(std::string(chat_format_name(format)) + " / system '" + system + "'");
      ChatTurns turns(format, system);
      FullTranscript full{format, {}, "", ""};
      if (!system.empty()) full.messages.push_back({"system", system});
      for (size_t i = 0; i < exchange.size(); ++i) {
        const ChatTurns::Next a = turns.user(exchange[i].first);
        const ChatTurns::Next b = full.user(exchange[i].first);
        EXPECT_EQ(a.text, b.text) << "turn " << i;
        EXPECT_EQ(a.restart, i == 0) << "turn " << i;
        turns.assistant(exchange[i].second);
        full.assistant(exchange[i].second);
      }
    }
}

// 0.65 KB a turn, 3,000 turns: the chat used to keep (and re-render) everything.
TEST(ChatTurns, HoldsOneExchangeHoweverLongTheChat) {
  ChatTurns turns(ChatFormat::SmolLM2, "");
  size_t after_two = 0;
  for (int i = 0; i < 1000; ++i) {
    turns.user("Tell me about turn " + std::to_string(i % 10) + ".");
    turns.assistant("Turn " + std::to_string(i % 10) + " was a fine turn, as turns go.");
    if (i == 1) after_two = turns.held_bytes();
  }
  EXPECT_EQ(turns.held_bytes(), after_two);
}

}  // namespace
}  // namespace kvc
