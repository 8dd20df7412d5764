#include "tokenizer/chat_turns.h"

#include <cctype>

namespace kvc {

namespace {

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  const size_t b = s.find_last_not_of(" \t\r\n");
  return s.substr(a, b - a + 1);
}

}  // namespace

size_t chat_resume_point(const std::string& rendered, const std::string& at_gen,
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

ChatTurns::ChatTurns(ChatFormat format, const std::string& system) : format_(format) {
  if (!system.empty()) head_.push_back({"system", system});
}

ChatTurns::Next ChatTurns::user(const std::string& message) { return turn({{"user", message}}); }

ChatTurns::Next ChatTurns::turn(const std::vector<ChatMessage>& messages) {
  // The window the template sees: the head, the last exchange, the new messages. The text before
  // the last exchange is in the session already and is not rendered again.
  std::vector<ChatMessage> window = head_;
  window.insert(window.end(), last_.begin(), last_.end());
  window.insert(window.end(), messages.begin(), messages.end());
  const std::string rendered = apply_chat_template(format_, window, true);
  Next next;
  const size_t resume = last_.empty() ? std::string::npos
                                      : chat_resume_point(rendered, at_gen_, last_.back().content);
  next.restart = resume == std::string::npos;
  next.text = next.restart ? rendered : rendered.substr(resume);

  std::vector<ChatMessage> upto_reply = head_;
  upto_reply.insert(upto_reply.end(), messages.begin(), messages.end());
  at_gen_ = apply_chat_template(format_, upto_reply, true);
  last_ = messages;
  last_.push_back({"assistant", ""});
  return next;
}

void ChatTurns::assistant(const std::string& reply) {
  if (!last_.empty()) last_.back().content = reply;
}

size_t ChatTurns::held_bytes() const {
  size_t n = at_gen_.size();
  for (const auto* messages : {&head_, &last_})
    for (const ChatMessage& m : *messages) n += m.role.size() + m.content.size();
  return n;
}

namespace {

// Far above any message a server accepts (--max-body), small enough to refuse a corrupt length.
constexpr size_t kMaxSavedText = size_t{1} << 30;
constexpr size_t kMaxSavedMessages = 1 << 16;

void visit_messages(StateFields& f, std::string_view name, std::vector<ChatMessage>& messages) {
  uint64_t n = messages.size();
  f.value(name, n);
  f.expect(n <= kMaxSavedMessages, name);
  if (f.loading()) messages.assign(static_cast<size_t>(n), ChatMessage{});
  for (ChatMessage& m : messages) {
    f.text("role", m.role, 64);
    f.text("content", m.content, kMaxSavedText);
  }
}

}  // namespace

void ChatTurns::visit_state(StateFields& f) {
  auto format = static_cast<uint8_t>(format_);
  f.value("format", format);
  f.expect(format <= static_cast<uint8_t>(ChatFormat::SmolLM2), "format");
  format_ = static_cast<ChatFormat>(format);
  visit_messages(f, "head", head_);
  visit_messages(f, "last", last_);
  f.text("at_gen", at_gen_, kMaxSavedText);
}

}  // namespace kvc
