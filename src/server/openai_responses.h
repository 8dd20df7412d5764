// The JSON bodies of OpenAI's chat.completion and text_completion objects, whole and as
// stream chunks, as llama-server and OpenAI shape them.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace kvc::server {

// What every object of one reply shares: one id per stream.
struct ReplyHeader {
  bool chat = true;
  std::string id;     // chatcmpl-... or cmpl-...
  int64_t created = 0;
  std::string model;
};

ReplyHeader make_reply_header(bool chat, const std::string& model);

nlohmann::json whole_reply(const ReplyHeader& h, const std::string& text,
                           const std::string& finish_reason, const nlohmann::json& usage);
// A chunk with `text` (chat: the first carries the role); finish_reason "" means null.
nlohmann::json reply_chunk(const ReplyHeader& h, const std::string& text, bool first,
                           const std::string& finish_reason);
// The closing chunk of stream_options.include_usage: no choices, the usage.
nlohmann::json usage_chunk(const ReplyHeader& h, const nlohmann::json& usage);

}  // namespace kvc::server
