// Chat prompts in the format the model was trained on. Not a Jinja engine: the formats of the
// shipped models, written out, picked from the GGUF's tokenizer.chat_template / architecture.
#pragma once

#include <string>
#include <vector>

namespace kvc {

class GgufFile;

struct ChatMessage {
  std::string role, content;  // role: "system", "user", "assistant"
};

enum class ChatFormat {
  ChatML,  // <|im_start|>role\ncontent<|im_end|>\n
  Gemma,   // <start_of_turn>user\n...<end_of_turn>\n; assistant -> "model"; no system role
  // ChatML plus SmolLM2's default system prompt when the conversation has none (its template)
  SmolLM2,
};

// From tokenizer.chat_template, else the architecture; ChatML when nothing is recognised.
ChatFormat detect_chat_format(const GgufFile& file);
ChatFormat detect_chat_format(const std::string& chat_template, const std::string& architecture);

// The prompt text, to be encoded with parse_special=true. No BOS is written: encode with
// add_special=true where the vocabulary wants one (Gemma).
std::string apply_chat_template(ChatFormat format, const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt);

const char* chat_format_name(ChatFormat format);

}  // namespace kvc
