// kvcascade serve: an OpenAI-compatible HTTP server (src/server/) whose sessions keep their
// cache between requests. Flags follow llama-server where it has one; the cache, model and
// sampling flags are the other subcommands'.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <sstream>
#include <thread>

#include "cli/commands.h"
#include "server/http_server.h"

namespace kvc::cli {

namespace {

struct ServeFlags {
  ModelFlags model;
  CacheFlags cache;
  SamplingFlags sampling;
  server::ServerOptions server;
  int64_t n_predict = -1;
  int64_t n_predict_max = 4096;
  std::string api_key;       // one key, or several separated by commas
  std::string api_key_file;  // one key per line
  std::string autosave = "turn";
  std::string cors_origins;  // comma-separated
};

std::vector<std::string> split_keys(const std::string& text, char separator) {
  std::vector<std::string> keys;
  std::istringstream in(text);
  for (std::string key; std::getline(in, key, separator);) {
    const size_t a = key.find_first_not_of(" \t\r\n");
    if (a == std::string::npos) continue;
    keys.push_back(key.substr(a, key.find_last_not_of(" \t\r\n") - a + 1));
  }
  return keys;
}

void validate(ServeFlags& f) {
  validate(f.model);
  validate(f.cache);
  validate(f.sampling);
  const server::ServerOptions& s = f.server;
  if (s.port < 0 || s.port > 65535) usage_error("--port must be in 0..65535, got {}", s.port);
  if (s.parallel < 1 || s.parallel > 256) usage_error("--parallel must be in 1..256, got {}", s.parallel);
  if (s.max_queue < 0 || s.max_queue > 65536) usage_error("--max-queue must be in 0..65536, got {}", s.max_queue);
  if (s.max_sessions < 1 || s.max_sessions > 65536)
    usage_error("--max-sessions must be in 1..65536, got {}", s.max_sessions);
  if (s.threads_http < 0 || s.threads_http > 4096)
    usage_error("--threads-http must be in 0..4096, got {}", s.threads_http);
  if (s.timeout_s < 1) usage_error("--timeout must be at least 1 second, got {}", s.timeout_s);
  if (s.max_body < 1024) usage_error("--max-body must be at least 1024 bytes, got {}", s.max_body);
  if (f.sampling.params.repeat_last_n < 0)
    usage_error("--repeat-last-n -1 (the whole history) grows without bound in a session that "
                "never ends: give a count");
  validate_token_count("--n-predict-max", f.n_predict_max, 1);
  if (f.n_predict < -1 || f.n_predict > f.n_predict_max)
    usage_error("--n-predict must be -1 or in 1..--n-predict-max ({}), got {}", f.n_predict_max,
                f.n_predict);
  if (f.n_predict == 0) usage_error("--n-predict must be -1 or at least 1, got 0");
  for (const std::string& o : split_keys(f.cors_origins, ','))
    if (o != "*" && o.rfind("http://", 0) != 0 && o.rfind("https://", 0) != 0)
      usage_error("--cors-origins takes origins such as http://localhost:3000 (or *), got '{}'", o);
  if (f.autosave != "turn" && f.autosave != "off")
    usage_error("--session-autosave must be turn or off, got '{}'", f.autosave);
}

int run_serve(ServeFlags& f) {
  validate(f);
  server::ServerOptions o = f.server;
  o.model_path = f.model.model;
  o.session = session_options(f.model, f.cache);
  o.defaults.sampling = f.sampling.params;
  o.defaults.n_predict = f.n_predict;
  o.defaults.n_predict_max = f.n_predict_max;
  o.autosave = f.autosave == "turn";
  o.cors_origins = split_keys(f.cors_origins, ',');
  o.api_keys = split_keys(f.api_key, ',');
  if (!f.api_key_file.empty())
    for (const std::string& key : split_keys(read_text_file(f.api_key_file, "API key file"), '\n'))
      o.api_keys.push_back(key);
  if (!f.api_key_file.empty() && o.api_keys.empty())
    fail("API key file '{}' holds no key", f.api_key_file);

  // SIGINT and SIGTERM go to one thread that stops the server; every other thread, made after
  // this, has them blocked.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const auto model = load_model(o.model_path);
  server::HttpServer http(*model, o);
  const int port = http.bind();
  std::fprintf(stderr,
               "kvcascade serve: listening on http://%s:%d (model %s, cache %s, %d slots%s)\n",
               o.host.c_str(), port, o.model_path.c_str(), describe_cache(o.session.cache).c_str(),
               o.parallel, o.api_keys.empty() ? "" : ", API key required");
  std::fflush(stderr);

  std::atomic<bool> served{false};
  std::thread watcher([&] {
    const timespec tick{0, 200 * 1000 * 1000};
    while (!served.load()) {
      if (sigtimedwait(&stop_signals, nullptr, &tick) > 0) {
        http.stop();
        return;
      }
    }
  });
  const bool ok = http.run();
  served = true;
  watcher.join();
  std::fprintf(stderr, "kvcascade serve: stopped\n");
  return ok ? 0 : 1;
}

}  // namespace

Command add_serve(CLI::App& root) {
  auto flags = std::make_shared<ServeFlags>();
  CLI::App* app = root.add_subcommand(
      "serve", "OpenAI-compatible HTTP server; sessions keep their cache, so chats never end");
  add_model_flags(*app, flags->model);
  add_cache_flags(*app, flags->cache);
  add_sampling_flags(*app, flags->sampling);
  server::ServerOptions& s = flags->server;
  app->add_option("--host", s.host, "address to listen on");
  app->add_option("--port", s.port, "port to listen on (0: any free port, printed at start)");
  app->add_option("--parallel", s.parallel, "-np: replies generated at once");
  app->add_option("-a,--alias", s.alias, "the model's id in the API (default: the file's stem)");
  app->add_option("--api-key", flags->api_key, "API key clients must send (several: comma-separated)");
  app->add_option("--api-key-file", flags->api_key_file, "file of API keys, one per line");
  app->add_option("--timeout", s.timeout_s, "-to: socket read/write timeout in seconds");
  app->add_option("--threads-http", s.threads_http,
                  "HTTP worker threads (0: --parallel + --max-queue + 4)");
  app->add_option("--max-queue", s.max_queue, "requests that may wait for a slot; more get 503");
  app->add_option("--max-sessions", s.max_sessions,
                  "sessions kept in memory; the least recently used idle one is dropped beyond it");
  app->add_option("--max-body", s.max_body, "largest request body in bytes (413 beyond)");
  app->add_option("-n,--n-predict", flags->n_predict,
                  "max_tokens when a request gives none (-1: until the end of the turn)");
  app->add_option("--n-predict-max", flags->n_predict_max, "the most max_tokens a request may ask");
  app->add_flag("--verbose", s.verbose, "log request bodies (prompt text) on stderr");
  app->add_option("--cors-origins", flags->cors_origins,
                  "origins whose web pages may call the API, comma-separated (* for any); CORS is "
                  "off without it");
  app->add_option("--session-dir", s.session_dir,
                  "keep every session in a file here (made if missing): saved after each turn and "
                  "at shutdown, found again after a restart");
  app->add_option("--session-autosave", flags->autosave,
                  "with --session-dir: turn (save after every turn) or off (on request, on "
                  "eviction and at shutdown only)");
  return {app, [flags] { return run_serve(*flags); }};
}

}  // namespace kvc::cli
