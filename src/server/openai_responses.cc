#include "server/openai_responses.h"

#include <chrono>

#include "server/session_store.h"

namespace kvc::server {

namespace {

constexpr const char* kFingerprint = "kvcascade-0.1";

nlohmann::json finish(const std::string& reason) {
  return reason.empty() ? nlohmann::json(nullptr) : nlohmann::json(reason);
}

nlohmann::json base(const ReplyHeader& h, bool chunk) {
  return {{"id", h.id},
          {"object", h.chat ? (chunk ? "chat.completion.chunk" : "chat.completion")
                            : "text_completion"},
          {"created", h.created},
          {"model", h.model},
          {"system_fingerprint", kFingerprint}};
}

}  // namespace

ReplyHeader make_reply_header(bool chat, const std::string& model) {
  ReplyHeader h;
  h.chat = chat;
  h.id = (chat ? "chatcmpl-" : "cmpl-") + random_session_id();
  h.created = std::chrono::duration_cast<std::chrono::seconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
  h.model = model;
  return h;
}

nlohmann::json whole_reply(const ReplyHeader& h, const std::string& text,
                           const std::string& finish_reason, const nlohmann::json& usage) {
  nlohmann::json out = base(h, false);
  nlohmann::json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish(finish_reason)}};
  if (h.chat)
    choice["message"] = {{"role", "assistant"}, {"content", text}};
  else
    choice["text"] = text;
  out["choices"] = nlohmann::json::array({choice});
  out["usage"] = usage;
  return out;
}

nlohmann::json reply_chunk(const ReplyHeader& h, const std::string& text, bool first,
                           const std::string& finish_reason) {
  nlohmann::json out = base(h, true);
  nlohmann::json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish(finish_reason)}};
  if (h.chat) {
    nlohmann::json delta = nlohmann::json::object();
    if (first) delta["role"] = "assistant";
    if (!text.empty() || (first && finish_reason.empty())) delta["content"] = text;
    choice["delta"] = delta;
  } else {
    choice["text"] = text;
  }
  out["choices"] = nlohmann::json::array({choice});
  return out;
}

nlohmann::json usage_chunk(const ReplyHeader& h, const nlohmann::json& usage) {
  nlohmann::json out = base(h, true);
  out["choices"] = nlohmann::json::array();
  out["usage"] = usage;
  return out;
}

}  // namespace kvc::server
