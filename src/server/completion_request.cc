#include "server/completion_request.h"

#include <cmath>
#include <limits>

#include "server/api_error.h"

namespace kvc::server {

namespace {

using nlohmann::json;

const char* type_name(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  return "an object";
}

// The field, or null when absent (null and absent mean the same to OpenAI).
const json& field(const json& body, const char* name) {
  static const json null_value;
  const auto it = body.find(name);
  return it == body.end() ? null_value : *it;
}

bool get_bool(const json& body, const char* name, bool fallback) {
  const json& v = field(body, name);
  if (v.is_null()) return fallback;
  if (!v.is_boolean()) bad_request(name, "'{}' must be a boolean, got {}", name, type_name(v));
  return v.get<bool>();
}

// A finite number in [lo, hi].
float get_number(const json& body, const char* name, float fallback, double lo, double hi) {
  const json& v = field(body, name);
  if (v.is_null()) return fallback;
  if (!v.is_number()) bad_request(name, "'{}' must be a number, got {}", name, type_name(v));
  const double x = v.get<double>();
  if (!std::isfinite(x) || x < lo || x > hi)
    bad_request(name, "'{}' must be in [{}, {}], got {}", name, lo, hi, x);
  return static_cast<float>(x);
}

// An integer in [lo, hi]; 2.0 is accepted as 2, 2.5 is not.
int64_t get_integer(const json& body, const char* name, int64_t fallback, int64_t lo, int64_t hi) {
  const json& v = field(body, name);
  if (v.is_null()) return fallback;
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi))
    bad_request(name, "'{}' must be in [{}, {}], got {}", name, lo, hi, v.get<uint64_t>());
  int64_t x = 0;
  if (v.is_number_integer()) {
    x = v.get<int64_t>();
  } else if (v.is_number_float()) {
    const double d = v.get<double>();
    if (!(std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15))
      bad_request(name, "'{}' must be an integer, got {}", name, d);
    x = static_cast<int64_t>(d);
  } else {
    bad_request(name, "'{}' must be an integer, got {}", name, type_name(v));
  }
  if (x < lo || x > hi) bad_request(name, "'{}' must be in [{}, {}], got {}", name, lo, hi, x);
  return x;
}

// Message content: a string, or text parts [{"type":"text","text":...}] joined.
std::string content_text(const json& content, size_t index, bool may_be_null) {
  const std::string name = fmt::format("messages[{}].content", index);
  if (content.is_null() && may_be_null) return "";
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array())
    bad_request(name, "'{}' must be a string or an array of text parts, got {}", name,
                type_name(content));
  std::string text;
  for (const json& part : content) {
    if (!part.is_object() || field(part, "type") != "text" || !field(part, "text").is_string())
      bad_request(name, "'{}': only parts {{\"type\":\"text\",\"text\":\"...\"}} are supported",
                  name);
    text += part["text"].get<std::string>();
  }
  return text;
}

std::vector<ChatMessage> parse_messages(const json& body) {
  const json& messages = field(body, "messages");
  if (messages.is_null()) bad_request("messages", "'messages' is required");
  if (!messages.is_array())
    bad_request("messages", "'messages' must be an array, got {}", type_name(messages));
  if (messages.empty()) bad_request("messages", "'messages' must not be empty");
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    const std::string at = fmt::format("messages[{}]", i);
    if (!m.is_object()) bad_request(at, "'{}' must be an object, got {}", at, type_name(m));
    const json& role = field(m, "role");
    if (!role.is_string()) bad_request(at + ".role", "'{}.role' must be a string", at);
    std::string r = role.get<std::string>();
    if (r == "developer") r = "system";  // OpenAI's newer name for the system role
    if (r != "system" && r != "user" && r != "assistant")
      bad_request(at + ".role",
                  "'{}.role' is '{}': only system, developer, user and assistant are supported",
                  at, role.get<std::string>());
    out.push_back({r, content_text(field(m, "content"), i, r == "assistant")});
  }
  if (out.back().role == "assistant")
    bad_request("messages", "the last message must not be the assistant's: nothing to reply to");
  return out;
}

std::vector<std::string> parse_stop(const json& body) {
  const json& v = field(body, "stop");
  if (v.is_null()) return {};
  std::vector<std::string> stop;
  if (v.is_string()) {
    stop.push_back(v.get<std::string>());
  } else if (v.is_array()) {
    for (const json& s : v) {
      if (!s.is_string()) bad_request("stop", "'stop' must hold strings, got {}", type_name(s));
      stop.push_back(s.get<std::string>());
    }
  } else {
    bad_request("stop", "'stop' must be a string or an array of strings, got {}", type_name(v));
  }
  if (stop.size() > 4) bad_request("stop", "'stop' takes at most 4 strings, got {}", stop.size());
  for (const std::string& s : stop)
    if (s.empty()) bad_request("stop", "'stop' strings must not be empty");
  return stop;
}

// The fields chat and completions share.
void parse_common(const json& body, const RequestDefaults& d, CompletionRequest& r) {
  SamplingParams& p = r.sampling;
  p = d.sampling;
  p.temperature = get_number(body, "temperature", p.temperature, 0.0, 100.0);
  p.top_p = get_number(body, "top_p", p.top_p, 0.0, 1.0);
  if (!(p.top_p > 0.0f)) bad_request("top_p", "'top_p' must be in (0, 1], got 0");
  p.top_k = static_cast<int>(get_integer(body, "top_k", p.top_k, 0, 1 << 30));
  p.min_p = get_number(body, "min_p", p.min_p, 0.0, 1.0);
  p.frequency_penalty = get_number(body, "frequency_penalty", p.frequency_penalty, -2.0, 2.0);
  p.presence_penalty = get_number(body, "presence_penalty", p.presence_penalty, -2.0, 2.0);
  p.repeat_penalty = get_number(body, "repetition_penalty", p.repeat_penalty, 0.0, 100.0);
  p.repeat_penalty = get_number(body, "repeat_penalty", p.repeat_penalty, 0.0, 100.0);
  if (!(p.repeat_penalty > 0.0f))
    bad_request("repetition_penalty", "'repetition_penalty' must be > 0");
  // The seed keeps kRandomSeed for "random"; a request's own seed is any other 32-bit value.
  const int64_t seed = get_integer(body, "seed", -1, -1, 0xFFFFFFFE);
  if (seed >= 0) p.seed = static_cast<uint64_t>(seed);
  if (get_integer(body, "n", 1, 1, 1 << 30) != 1)
    bad_request("n", "'n' must be 1: one choice per request");

  const int64_t fallback = d.n_predict;
  r.max_tokens = get_integer(body, "max_tokens", fallback, -1, d.n_predict_max);
  r.max_tokens = get_integer(body, "max_completion_tokens", r.max_tokens, -1, d.n_predict_max);
  if (r.max_tokens == 0)
    bad_request("max_tokens", "'max_tokens' must be at least 1 (or -1 for no limit)");
  r.stop = parse_stop(body);
  r.stream = get_bool(body, "stream", false);
  const json& so = field(body, "stream_options");
  if (!so.is_null()) {
    if (!so.is_object())
      bad_request("stream_options", "'stream_options' must be an object, got {}", type_name(so));
    r.include_usage = get_bool(so, "include_usage", false);
  }
  const json& sid = field(body, "session_id");
  if (!sid.is_null()) {
    if (!sid.is_string() || !valid_session_id(sid.get<std::string>()))
      bad_request("session_id",
                  "'session_id' must be 1 to 64 letters, digits, '-' or '_'");
    r.session_id = sid.get<std::string>();
  }
  const json& model = field(body, "model");
  if (!model.is_null() && !model.is_string())
    bad_request("model", "'model' must be a string, got {}", type_name(model));
  if (get_bool(body, "logprobs", false))
    bad_request("logprobs", "'logprobs' is not supported by this server");
  const json& tools = field(body, "tools");
  if (!tools.is_null() && !(tools.is_array() && tools.empty()))
    bad_request("tools", "'tools' is not supported by this server");
  const json& format = field(body, "response_format");
  if (!format.is_null() && !(format.is_object() && field(format, "type") == "text"))
    bad_request("response_format", "only response_format {{\"type\":\"text\"}} is supported");
}

}  // namespace

json parse_json_object(const std::string& body) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::parse_error& e) {
    bad_request("", "the body is not valid JSON: {}", e.what());
  }
  if (!j.is_object()) bad_request("", "the body must be a JSON object, got {}", type_name(j));
  return j;
}

CompletionRequest parse_chat_request(const json& body, const RequestDefaults& defaults) {
  CompletionRequest r;
  r.chat = true;
  r.messages = parse_messages(body);
  parse_common(body, defaults, r);
  return r;
}

CompletionRequest parse_completion_request(const json& body, const RequestDefaults& defaults) {
  CompletionRequest r;
  r.chat = false;
  const json& prompt = field(body, "prompt");
  if (prompt.is_string()) {
    r.prompt = prompt.get<std::string>();
  } else if (prompt.is_array() && prompt.size() == 1 && prompt[0].is_string()) {
    r.prompt = prompt[0].get<std::string>();
  } else if (prompt.is_null()) {
    bad_request("prompt", "'prompt' is required");
  } else {
    bad_request("prompt", "'prompt' must be a string (or an array of one string), got {}",
                type_name(prompt));
  }
  if (r.prompt.empty()) bad_request("prompt", "'prompt' must not be empty");
  if (get_bool(body, "echo", false)) bad_request("echo", "'echo' is not supported by this server");
  parse_common(body, defaults, r);
  return r;
}

bool valid_session_id(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (unsigned char c : id)
    if (!std::isalnum(c) && c != '-' && c != '_') return false;
  return true;
}

}  // namespace kvc::server
