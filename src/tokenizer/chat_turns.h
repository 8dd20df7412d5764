// A conversation fed to one session turn by turn: each user message yields only the text the
// template adds after what the session has already seen, so the cache is never re-read. Only
// the system message and the last exchange are kept, and memory stays flat however long the
// chat runs: the templates here render a turn the same whatever came two turns before it.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "base/state_fields.h"
#include "tokenizer/chat_template.h"

namespace kvc {

// Where `rendered` continues past what a session saw: `at_gen` (the rendering it was fed,
// ending in the generation prompt) and then the raw `reply`. Templates append, so usually
// at_gen + reply is a prefix. Some (Gemma's) trim the reply they re-render; then the turn
// resumes after the trimmed reply, and the whitespace the model generated stays in the cache
// instead of costing a fresh start. npos: the template rewrote what was seen.
size_t chat_resume_point(const std::string& rendered, const std::string& at_gen,
                         const std::string& reply);

class ChatTurns {
 public:
  ChatTurns(ChatFormat format, const std::string& system);

  struct Next {
    std::string text;      // to encode with parse_special and feed
    bool restart = false;  // start the session afresh first (the first turn, or a rewrite)
  };
  // The text that takes the conversation from the last reply to the assistant's next one.
  Next user(const std::string& message);
  // The same for any messages that follow the last reply (a server's request may bring a
  // system message, or several, before the user's); `messages` must not be empty.
  Next turn(const std::vector<ChatMessage>& messages);
  // The reply generated (and fed) after the last user().
  void assistant(const std::string& reply);

  // Bytes of text the conversation holds (for tests: it must not grow with the turns).
  size_t held_bytes() const;
  // The whole state, for a saved session (base/state_fields.h).
  void visit_state(StateFields& f);

 private:
  ChatFormat format_;
  std::vector<ChatMessage> head_;  // the system message, if any
  std::vector<ChatMessage> last_;  // the messages of the last turn, then the reply to them
  std::string at_gen_;             // head + the last turn's messages, rendered up to the reply
};

}  // namespace kvc
