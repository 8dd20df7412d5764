#include "tokenizer/chat_template.h"

#include "gguf/gguf_file.h"

namespace kvc {

namespace {

constexpr const char* kSmolLM2System =
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face";

// Jinja's |trim: strips whitespace at both ends.
std::string trim(const std::string& s) {
  const char* ws = " \t\n\r\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

std::string chatml(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                   const char* default_system) {
  std::string out;
  if (default_system && !messages.empty() && messages[0].role != "system") {
    out += "<|im_start|>system\n" + std::string(default_system) + "<|im_end|>\n";
  }
  for (const ChatMessage& m : messages) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

// Gemma 3's template: a system message becomes a prefix of the first turn after it.
std::string gemma(const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
  std::string out, prefix;
  size_t first = 0;
  if (!messages.empty() && messages[0].role == "system") {
    prefix = messages[0].content + "\n\n";
    first = 1;
  }
  for (size_t i = first; i < messages.size(); ++i) {
    const std::string& role = messages[i].role == "assistant" ? std::string("model") : messages[i].role;
    out += "<start_of_turn>" + role + "\n" + (i == first ? prefix : std::string()) +
           trim(messages[i].content) + "<end_of_turn>\n";
  }
  if (add_generation_prompt) out += "<start_of_turn>model\n";
  return out;
}

}  // namespace

ChatFormat detect_chat_format(const std::string& chat_template, const std::string& architecture) {
  if (chat_template.find("<start_of_turn>") != std::string::npos) return ChatFormat::Gemma;
  if (chat_template.find("<|im_start|>") != std::string::npos) {
    return chat_template.find(kSmolLM2System) != std::string::npos ? ChatFormat::SmolLM2 : ChatFormat::ChatML;
  }
  if (chat_template.empty() && architecture.rfind("gemma", 0) == 0) return ChatFormat::Gemma;
  return ChatFormat::ChatML;
}

ChatFormat detect_chat_format(const GgufFile& file) {
  return detect_chat_format(file.find_string("tokenizer.chat_template").value_or(""),
                            file.find_string("general.architecture").value_or(""));
}

std::string apply_chat_template(ChatFormat format, const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt) {
  switch (format) {
    case ChatFormat::Gemma: return gemma(messages, add_generation_prompt);
    case ChatFormat::SmolLM2: return chatml(messages, add_generation_prompt, kSmolLM2System);
    case ChatFormat::ChatML: break;
  }
  return chatml(messages, add_generation_prompt, nullptr);
}

const char* chat_format_name(ChatFormat format) {
  switch (format) {
    case ChatFormat::Gemma: return "gemma";
    case ChatFormat::SmolLM2: return "chatml (SmolLM2)";
    case ChatFormat::ChatML: break;
  }
  return "chatml";
}

}  // namespace kvc
