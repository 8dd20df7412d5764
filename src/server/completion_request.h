// What a POST /v1/chat/completions or /v1/completions body asks for, checked field by field:
// a wrong type, a value out of range or a feature this server lacks is an ApiError naming the
// field, never a 500. Unknown fields are ignored, as OpenAI clients send extras.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sampling/sampler.h"
#include "tokenizer/chat_template.h"

namespace kvc::server {

struct CompletionRequest {
  bool chat = true;
  std::vector<ChatMessage> messages;  // chat: the history the client sent, in order
  std::string prompt;                 // completions: text fed as it is
  SamplingParams sampling;
  int64_t max_tokens = -1;            // -1: until end of generation, at most the server's cap
  std::vector<std::string> stop;      // generation ends before the first of these
  bool stream = false;
  bool include_usage = false;         // stream_options.include_usage
  std::string session_id;             // body session_id ("" when absent)
};

// What a request falls back on, and how far it may go.
struct RequestDefaults {
  SamplingParams sampling;      // the server's sampling flags
  int64_t n_predict = -1;       // -n: max_tokens when the request gives none (-1: the cap)
  int64_t n_predict_max = 0;    // the most max_tokens a request may ask for
};

// The body as a JSON object; 400 for text that is not JSON (or not UTF-8) or not an object.
nlohmann::json parse_json_object(const std::string& body);

CompletionRequest parse_chat_request(const nlohmann::json& body, const RequestDefaults& defaults);
CompletionRequest parse_completion_request(const nlohmann::json& body,
                                           const RequestDefaults& defaults);

// Letters, digits, '-' and '_', 1 to 64 of them: safe as a file name and in a header.
bool valid_session_id(const std::string& id);

}  // namespace kvc::server
