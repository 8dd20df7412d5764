#include "server/http_server.h"

#include <charconv>
#include <cstdio>
#include <filesystem>

#include <httplib.h>

#include "base/error.h"
#include "server/api_error.h"
#include "server/api_keys.h"
#include "server/chat_page.h"
#include "server/completion_request.h"
#include "server/engine.h"
#include "server/job.h"
#include "server/metrics.h"
#include "server/openai_responses.h"
#include "server/session_api.h"

namespace kvc::server {

namespace {

using nlohmann::json;
using std::chrono::milliseconds;

void write_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(dump_json(body), "application/json; charset=utf-8");
}

void write_error(httplib::Response& res, const ApiError& e) {
  write_json(res, e.status, e.to_json());
  if (e.status == 503) res.set_header("Retry-After", "1");
}

std::string sse(const json& j) { return "data: " + dump_json(j) + "\n\n"; }

ApiError busy_error() {
  return ApiError{503, "unavailable_error",
                  "the server is busy: every slot and the whole queue are taken, retry shortly",
                  "", json::object()};
}

// The text and the end of a reply, gathered from the job's events.
struct Collected {
  std::string text, finish_reason;
  json usage;
};

}  // namespace

struct HttpServer::Impl {
  Impl(const Model& model, const ServerOptions& o)
      : model(model), options(o), keys(o.api_keys), engine(model, o, metrics) {
    model_id = o.alias.empty() ? std::filesystem::path(o.model_path).stem().string() : o.alias;
  }

  const Model& model;
  const ServerOptions options;
  ApiKeys keys;
  Metrics metrics;
  Engine engine;
  std::string model_id;
  httplib::Server http;
  int port = 0;

  void routes();
  void completion(const httplib::Request& req, httplib::Response& res, bool chat);
  void stream(std::shared_ptr<Job> job, std::vector<JobEvent> early, httplib::Response& res);
  std::string owner_of(const httplib::Request& req) const;
  std::string too_large(const httplib::Request& req) const;
  json models() const;
  json props() const;
};

std::string HttpServer::Impl::owner_of(const httplib::Request& req) const {
  return keys.owner(req.get_header_value("Authorization"), req.get_header_value("X-Api-Key"))
      .value_or("");
}

void HttpServer::Impl::completion(const httplib::Request& req, httplib::Response& res, bool chat) {
  const json body = parse_json_object(req.body);
  CompletionRequest r = chat ? parse_chat_request(body, options.defaults)
                             : parse_completion_request(body, options.defaults);
  std::string session_id = req.get_header_value("X-Session-Id");
  if (!session_id.empty()) {
    if (!valid_session_id(session_id))
      bad_request("X-Session-Id", "X-Session-Id must be 1 to 64 letters, digits, '-' or '_'");
    if (!r.session_id.empty() && r.session_id != session_id)
      bad_request("session_id", "the body's session_id and the X-Session-Id header differ");
  } else {
    session_id = r.session_id;
  }
  if (options.verbose) std::fprintf(stderr, "kvcascade serve: %s %s\n", req.path.c_str(), req.body.c_str());
  auto job = std::make_shared<Job>(std::move(r), owner_of(req), session_id);
  if (!engine.submit(job)) throw busy_error();

  // Wait for the engine to bind the job: a failure before the first token is a plain HTTP error.
  std::vector<JobEvent> events;
  while (events.empty()) events = job->take(milliseconds(1000));
  if (events.front().kind == JobEvent::Kind::Failed) throw events.front().error;
  res.set_header("X-Session-Id", events.front().session_id);
  events.erase(events.begin());
  if (job->request.stream) {
    stream(job, std::move(events), res);
    return;
  }
  Collected c;
  for (bool done = false; !done;) {
    for (JobEvent& e : events) {
      if (e.kind == JobEvent::Kind::Failed) throw e.error;
      if (e.kind == JobEvent::Kind::Text) c.text += e.text;
      if (e.kind == JobEvent::Kind::Done) {
        c.finish_reason = e.finish_reason;
        c.usage = e.usage;
        done = true;
      }
    }
    if (!done) events = job->take(milliseconds(1000));
  }
  write_json(res, 200, whole_reply(make_reply_header(chat, model_id), c.text, c.finish_reason, c.usage));
}

void HttpServer::Impl::stream(std::shared_ptr<Job> job, std::vector<JobEvent> early,
                              httplib::Response& res) {
  // The provider's state lives as long as the response; if it goes before the reply is done
  // (the client left), the job is cancelled and its slot freed.
  struct State {
    std::shared_ptr<Job> job;
    std::vector<JobEvent> pending;
    ReplyHeader header;
    bool first = true, finished = false;
    ~State() {
      if (!finished) job->cancelled = true;
    }
  };
  auto state = std::make_shared<State>();
  state->job = job;
  state->pending = std::move(early);
  state->header = make_reply_header(job->request.chat, model_id);
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [state](size_t, httplib::DataSink& sink) {
        auto write = [&](const std::string& s) { return sink.write(s.data(), s.size()); };
        std::vector<JobEvent> events = std::move(state->pending);
        state->pending.clear();
        // Silence for a while: an SSE comment, which also finds a client that has gone.
        if (events.empty()) events = state->job->take(milliseconds(2000));
        if (events.empty()) return write(":\n\n");
        for (JobEvent& e : events) {
          if (e.kind == JobEvent::Kind::Text) {
            if (!write(sse(reply_chunk(state->header, e.text, state->first, "")))) return false;
            state->first = false;
          } else if (e.kind == JobEvent::Kind::Done) {
            if (state->first) write(sse(reply_chunk(state->header, "", true, "")));
            write(sse(reply_chunk(state->header, "", false, e.finish_reason)));
            if (state->job->request.include_usage) write(sse(usage_chunk(state->header, e.usage)));
            write("data: [DONE]\n\n");
            state->finished = true;
            sink.done();
            return true;
          } else if (e.kind == JobEvent::Kind::Failed) {
            write(sse(e.error.to_json()));
            state->finished = true;
            sink.done();
            return true;
          }
        }
        return true;
      },
      [state](bool success) {
        if (!success) state->job->cancelled = true;
      });
}

json HttpServer::Impl::models() const {
  const ModelConfig& c = model.config();
  const json meta = {{"n_ctx_train", c.context_length},
                     {"n_vocab", c.vocab_size},
                     {"cache", options.session.cache.policy},
                     {"session_bytes", model.transformer().kv_bytes(options.session.cache)}};
  return {{"object", "list"},
          {"data", json::array({{{"id", model_id},
                                 {"object", "model"},
                                 {"created", 0},
                                 {"owned_by", "kvcascade"},
                                 {"meta", meta}}})}};
}

json HttpServer::Impl::props() const {
  const CacheConfig& cache = options.session.cache;
  const SamplingParams& p = options.defaults.sampling;
  return {{"total_slots", options.parallel},
          {"model_path", options.model_path},
          {"model_alias", model_id},
          {"chat_template", chat_format_name(model.chat_format())},
          {"default_generation_settings",
           {{"n_predict", options.defaults.n_predict},
            {"n_predict_max", options.defaults.n_predict_max},
            {"temperature", p.temperature},
            {"top_k", p.top_k},
            {"top_p", p.top_p},
            {"min_p", p.min_p},
            {"repeat_penalty", p.repeat_penalty},
            {"repeat_last_n", p.repeat_last_n}}},
          {"cache",
           {{"policy", cache.policy},
            {"sinks", cache.sinks},
            {"size", cache.size},
            {"cascades", cache.cascades},
            {"context", cache.context},
            {"type_k", cache.type_k},
            {"type_v", cache.type_v},
            {"stride", options.session.stride}}},
          {"session_bytes", model.transformer().kv_bytes(cache)},
          {"max_sessions", std::max(options.max_sessions, options.parallel)},
          {"max_queue", options.max_queue},
          {"build_info", "kvcascade 0.1"}};
}

std::string HttpServer::Impl::too_large(const httplib::Request& req) const {
  // httplib caps form-encoded bodies at 8 KiB whatever --max-body says (curl -d sends that type).
  const bool form = req.get_header_value("Content-Type") == "application/x-www-form-urlencoded";
  const std::string length = req.get_header_value("Content-Length");
  uint64_t n = 0;
  const auto [end, ec] = std::from_chars(length.data(), length.data() + length.size(), n);
  if (form && ec == std::errc() && end == length.data() + length.size() && n <= options.max_body)
    return "a body sent as application/x-www-form-urlencoded may hold at most 8192 bytes: send it "
           "as Content-Type: application/json";
  return fmt::format("the body is larger than --max-body ({} bytes)", options.max_body);
}

void HttpServer::Impl::routes() {
  // Every handler answers errors in OpenAI's shape; nothing escapes as a bare 500.
  // The key is checked here, after httplib has read the body, not in a pre-routing handler:
  // one that answers before the body is read leaves it in the socket, where a kept-alive
  // connection would read it as the next request line (and a worker waits -to seconds on it).
  const auto guarded = [this](auto handler, bool needs_key = true) {
    return [this, handler, needs_key](const httplib::Request& req, httplib::Response& res) {
      try {
        if (needs_key && !keys.owner(req.get_header_value("Authorization"),
                                     req.get_header_value("X-Api-Key")))
          throw ApiError{401, "authentication_error", "Invalid API Key", "", json::object()};
        handler(req, res);
      } catch (const ApiError& e) {
        write_error(res, e);
      } catch (const std::exception& e) {
        write_error(res, ApiError{500, "server_error", e.what(), "", json::object()});
      }
    };
  };
  if (!options.cors_origins.empty()) {
    // CORS, only for the origins given: the preflight is answered without a key (a browser sends
    // none with it), and every response to an allowed origin says so.
    const auto allowed = [this](const std::string& origin) {
      if (origin.empty()) return false;
      for (const std::string& o : options.cors_origins)
        if (o == "*" || o == origin) return true;
      return false;
    };
    http.set_post_routing_handler([allowed](const httplib::Request& req, httplib::Response& res) {
      const std::string origin = req.get_header_value("Origin");
      if (!allowed(origin)) return;
      res.set_header("Access-Control-Allow-Origin", origin);
      res.set_header("Access-Control-Allow-Credentials", "true");
      res.set_header("Access-Control-Expose-Headers", "X-Session-Id");
      res.set_header("Vary", "Origin");
    });
    http.Options(R"(/.*)", [allowed](const httplib::Request& req, httplib::Response& res) {
      res.status = 200;  // as llama-server answers a preflight (its tests check for 200)
      if (!allowed(req.get_header_value("Origin"))) return;
      res.set_header("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS");
      // The headers asked for, by name: a wildcard does not cover Authorization.
      const std::string asked = req.get_header_value("Access-Control-Request-Headers");
      res.set_header("Access-Control-Allow-Headers", asked.empty() ? "*" : asked);
      res.set_header("Access-Control-Max-Age", "600");
    });
  }
  // The chat page is public (a browser sends no key when it navigates); its requests carry one.
  // The policy lets it reach this server only, and nothing it was not built with.
  http.Get("/", guarded([](const auto&, auto& res) {
             res.set_header("Content-Security-Policy",
                            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                            "connect-src 'self'; base-uri 'none'; form-action 'none'");
             res.set_header("X-Content-Type-Options", "nosniff");
             const std::string_view page = chat_page();
             res.set_content(page.data(), page.size(), "text/html; charset=utf-8");
           }, /*needs_key=*/false));
  for (const char* path : {"/health", "/v1/health"})
    http.Get(path, guarded([](const auto&, auto& res) { write_json(res, 200, {{"status", "ok"}}); },
                           /*needs_key=*/false));
  for (const char* path : {"/v1/models", "/models"})
    http.Get(path, guarded([this](const auto&, auto& res) { write_json(res, 200, models()); }));
  for (const char* path : {"/props", "/v1/props"})
    http.Get(path, guarded([this](const auto&, auto& res) { write_json(res, 200, props()); }));
  http.Get("/metrics", guarded([this](const auto&, auto& res) {
             res.set_content(metrics.render(), "text/plain; version=0.0.4");
           }));
  for (const char* path : {"/v1/chat/completions", "/chat/completions"})
    http.Post(path, guarded([this](const auto& req, auto& res) { completion(req, res, true); }));
  for (const char* path : {"/v1/completions", "/completions"})
    http.Post(path, guarded([this](const auto& req, auto& res) { completion(req, res, false); }));
  // Sessions, as the caller's key sees them (session_api.h).
  for (const std::string prefix : {"/v1", ""}) {
    http.Get(prefix + "/sessions", guarded([this](const auto& req, auto& res) {
               const std::string owner = owner_of(req);
               write_json(res, 200, engine.with_sessions([&](SessionStore& s) { return list_sessions(s, owner); }));
             }));
    http.Post(prefix + "/sessions", guarded([this](const auto& req, auto& res) {
                const json body = req.body.empty() ? json::object() : parse_json_object(req.body);
                const std::string owner = owner_of(req);
                write_json(res, 201, engine.with_sessions([&](SessionStore& s) {
                  return create_session(s, owner, body);
                }));
              }));
    const std::string one = prefix + R"(/sessions/([^/]+))";
    http.Get(one, guarded([this](const auto& req, auto& res) {
               const std::string owner = owner_of(req), id = req.matches[1];
               write_json(res, 200, engine.with_sessions([&](SessionStore& s) { return get_session(s, owner, id); }));
             }));
    http.Delete(one, guarded([this](const auto& req, auto& res) {
                  const std::string owner = owner_of(req), id = req.matches[1];
                  write_json(res, 200, engine.with_sessions([&](SessionStore& s) {
                    return delete_session(s, owner, id);
                  }));
                }));
    http.Post(one + "/save", guarded([this](const auto& req, auto& res) {
                const std::string owner = owner_of(req), id = req.matches[1];
                write_json(res, 200, engine.with_sessions([&](SessionStore& s) {
                  return save_session(s, owner, id);
                }));
              }));
    http.Post(one + "/restore", guarded([this](const auto& req, auto& res) {
                const std::string owner = owner_of(req), id = req.matches[1];
                write_json(res, 200, engine.with_sessions([&](SessionStore& s) {
                  return restore_session(s, owner, id);
                }));
              }));
    http.Post(one + "/fork", guarded([this](const auto& req, auto& res) {
                const json body = req.body.empty() ? json::object() : parse_json_object(req.body);
                const std::string owner = owner_of(req), id = req.matches[1];
                write_json(res, 201, engine.with_sessions([&](SessionStore& s) {
                  return fork_session(s, owner, id, body);
                }));
              }));
  }
  http.Post("/tokenize", guarded([this](const auto& req, auto& res) {
              const json body = parse_json_object(req.body);
              const auto it = body.find("content");
              if (it == body.end() || !it->is_string()) bad_request("content", "'content' must be a string");
              bool add_special = false, parse_special = true, with_pieces = false;
              for (auto [name, flag] : {std::pair{"add_special", &add_special},
                                        std::pair{"parse_special", &parse_special},
                                        std::pair{"with_pieces", &with_pieces}}) {
                const auto f = body.find(name);
                if (f == body.end() || f->is_null()) continue;
                if (!f->is_boolean()) bad_request(name, "'{}' must be a boolean", name);
                *flag = f->template get<bool>();
              }
              const Tokenizer& tok = model.tokenizer();
              const std::vector<int32_t> ids =
                  tok.encode(it->template get<std::string>(), add_special, parse_special);
              json tokens = json::array();
              for (int32_t id : ids)
                tokens.push_back(with_pieces ? json{{"id", id}, {"piece", tok.token_piece(id)}}
                                             : json(id));
              write_json(res, 200, {{"tokens", tokens}});
            }));
  http.Post("/detokenize", guarded([this](const auto& req, auto& res) {
              const json body = parse_json_object(req.body);
              const auto it = body.find("tokens");
              if (it == body.end() || !it->is_array()) bad_request("tokens", "'tokens' must be an array");
              const int vocab = model.tokenizer().vocab_size();
              std::vector<int32_t> ids;
              for (const json& t : *it) {
                if (!t.is_number_integer() || t.template get<int64_t>() < 0 ||
                    t.template get<int64_t>() >= vocab)
                  bad_request("tokens", "'tokens' must hold token ids in [0, {})", vocab);
                ids.push_back(static_cast<int32_t>(t.template get<int64_t>()));
              }
              write_json(res, 200, {{"content", model.tokenizer().decode(ids)}});
            }));

  // What httplib answers by itself (no such route, a body too large) in OpenAI's shape too.
  http.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 404)
      write_error(res, ApiError{404, "not_found_error", "no route " + req.method + " " + req.path,
                                "", json::object()});
    else if (res.status == 413)
      write_error(res, ApiError{413, "invalid_request_error", too_large(req), "", json::object()});
    else
      write_error(res, ApiError{res.status, "invalid_request_error",
                                fmt::format("HTTP {}", res.status), "", json::object()});
  });
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    write_error(res, ApiError{500, "server_error", "internal error", "", json::object()});
  });
}

HttpServer::HttpServer(const Model& model, const ServerOptions& options)
    : impl_(std::make_unique<Impl>(model, options)) {
  Impl& s = *impl_;
  const int threads = options.threads_http > 0 ? options.threads_http
                                               : options.parallel + options.max_queue + 4;
  s.http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  s.http.set_payload_max_length(options.max_body);
  s.http.set_read_timeout(options.timeout_s, 0);
  s.http.set_write_timeout(options.timeout_s, 0);
  s.http.set_keep_alive_max_count(100);
  s.http.set_tcp_nodelay(true);
  s.routes();
}

HttpServer::~HttpServer() = default;

int HttpServer::bind() {
  Impl& s = *impl_;
  if (s.options.port == 0) {
    s.port = s.http.bind_to_any_port(s.options.host);
  } else {
    s.port = s.http.bind_to_port(s.options.host, s.options.port) ? s.options.port : -1;
  }
  if (s.port <= 0) fail("cannot listen on {}:{}", s.options.host, s.options.port);
  return s.port;
}

bool HttpServer::run() { return impl_->http.listen_after_bind(); }

void HttpServer::stop() { impl_->http.stop(); }

}  // namespace kvc::server
