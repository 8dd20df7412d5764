// Everything `kvcascade serve` is started with, as plain data: the CLI fills it from flags.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/session.h"
#include "server/completion_request.h"

namespace kvc::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;               // 0: any free port (printed at start)
  std::string model_path;
  std::string alias;             // the model id clients see ("" : the file's stem)
  int parallel = 4;              // -np: replies generated at once, a token each in turn
  int max_queue = 64;            // requests waiting beyond -np; more get 503 + Retry-After
  int max_sessions = 16;         // resident sessions; the least recently used one goes first
  int threads_http = 0;          // 0: parallel + max_queue + 4
  int timeout_s = 600;           // socket read and write timeout
  size_t max_body = 16u << 20;   // bytes; a larger body gets 413
  std::vector<std::string> api_keys;  // empty: no key needed
  // Origins whose pages may call this server from a browser ("*": any); empty: CORS is off (no
  // Access-Control headers, preflight requests get 404).
  std::vector<std::string> cors_origins;
  bool verbose = false;          // log requests' text (never otherwise)
  std::string session_dir;       // one file per session here ("" : sessions live in memory only)
  bool autosave = true;          // with session_dir: save a session after every turn
  SessionOptions session;        // threads, cache policy and stride of every session
  RequestDefaults defaults;      // sampling flags, -n and the max_tokens cap
};

}  // namespace kvc::server
