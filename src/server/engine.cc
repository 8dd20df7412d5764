#include "server/engine.h"

#include <algorithm>
#include <cstdio>

#include "base/cancelled.h"
#include "base/error.h"
#include "server/session_api.h"

namespace kvc::server {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

ApiError server_error(const std::string& message) {
  return ApiError{500, "server_error", message, "", nlohmann::json::object()};
}

JobEvent failed(ApiError error) {
  JobEvent e;
  e.kind = JobEvent::Kind::Failed;
  e.error = std::move(error);
  return e;
}

// Keeps the penalty's look-back and no more, so a session's memory stays flat.
void trim_history(std::vector<int32_t>& history, int look_back) {
  if (look_back >= 0 && static_cast<int64_t>(history.size()) > look_back)
    history.erase(history.begin(), history.end() - look_back);
}

// With --cache full, llama-server's 400 for a conversation the context cannot hold.
void check_fits(const Session& session, size_t n_tokens, const char* param) {
  if (session_fits(session, static_cast<int64_t>(n_tokens))) return;
  const int64_t n = session.n_past() + static_cast<int64_t>(n_tokens);
  const int64_t n_ctx = session.options().cache.context;
  throw ApiError{400, "exceed_context_size_error",
                 fmt::format("request ({} tokens) exceeds the available context size ({} tokens), "
                             "try increasing it or use a bounded --cache",
                             n, n_ctx),
                 param, {{"n_prompt_tokens", n}, {"n_ctx", n_ctx}}};
}

SessionOptions sharing(SessionOptions options, ThreadPool& pool) {
  options.shared_pool = &pool;
  return options;
}

}  // namespace

Engine::Engine(const Model& model, const ServerOptions& options, Metrics& metrics)
    : model_(model),
      options_(options),
      metrics_(metrics),
      pool_(options.session.threads),
      store_(model, sharing(options.session, pool_),
             std::max(options.max_sessions, options.parallel), options.session_dir) {
  thread_ = std::thread([this] { loop(); });
}

Engine::~Engine() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
  store_.save_all();  // SIGTERM loses nothing: every idle session goes to its file
}

bool Engine::submit(std::shared_ptr<Job> job) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || static_cast<int>(queue_.size()) >= options_.max_queue) return false;
    queue_.push_back(std::move(job));
  }
  wake_.notify_one();
  return true;
}

nlohmann::json Engine::with_sessions(std::function<nlohmann::json(SessionStore&)> task) {
  auto t = std::make_shared<SessionTask>();
  t->run = std::move(task);
  std::future<nlohmann::json> result = t->result.get_future();
  {
    std::lock_guard lock(mutex_);
    if (stopping_)
      throw ApiError{503, "unavailable_error", "the server is shutting down", "",
                     nlohmann::json::object()};
    session_tasks_.push_back(std::move(t));
  }
  wake_.notify_one();
  return result.get();
}

void Engine::run_session_tasks() {
  std::deque<std::shared_ptr<SessionTask>> tasks;
  {
    std::lock_guard lock(mutex_);
    tasks.swap(session_tasks_);
  }
  for (auto& t : tasks) {
    try {
      t->result.set_value(t->run(store_));
    } catch (...) {
      t->result.set_exception(std::current_exception());
    }
  }
  if (!tasks.empty()) publish_load();
}

int64_t Engine::queued() const {
  std::lock_guard lock(mutex_);
  return static_cast<int64_t>(queue_.size());
}

bool Engine::session_busy(const Job& job) {
  if (job.session_id.empty()) return false;
  const ServedSession* s = store_.find(job.session_id);
  return s && s->busy;
}

void Engine::publish_load() {
  metrics_.set_load(static_cast<int64_t>(running_.size()), queued());
  metrics_.set_sessions({static_cast<int64_t>(store_.size()), static_cast<int64_t>(store_.bytes()),
                         store_.dropped(), store_.saved_on_disk()});
}

void Engine::loop() {
  while (true) {
    run_session_tasks();
    // Admit what fits, one job at a time: starting one may make another's session busy.
    while (static_cast<int>(running_.size()) < options_.parallel) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock lock(mutex_);
        if (running_.empty())
          wake_.wait(lock, [&] { return stopping_ || !queue_.empty() || !session_tasks_.empty(); });
        if (stopping_ || !session_tasks_.empty()) break;
        for (auto it = queue_.begin(); it != queue_.end(); ++it)
          if ((*it)->cancelled || !session_busy(**it)) {
            job = *it;
            queue_.erase(it);
            break;
          }
      }
      if (!job) break;
      if (job->cancelled) {
        metrics_.failed();
        continue;
      }
      if (auto r = start(std::move(job))) running_.push_back(std::move(r));
      publish_load();
    }
    {
      std::lock_guard lock(mutex_);
      if (stopping_) break;
    }
    if (!running_.empty()) metrics_.decode_step(static_cast<int64_t>(running_.size()));
    for (auto it = running_.begin(); it != running_.end();) {
      bool more = false;
      try {
        more = step(**it);
      } catch (const std::exception& e) {
        (*it)->job->post(failed(server_error(e.what())));
        (*it)->session->busy = false;
        store_.forget(*(*it)->session);
        metrics_.failed();
      }
      it = more ? std::next(it) : running_.erase(it);
    }
    publish_load();
  }
  // Shutting down: nobody waits for an answer that will not come.
  const ApiError gone{503, "unavailable_error", "the server is shutting down", "",
                      nlohmann::json::object()};
  for (auto& r : running_) r->job->post(failed(gone));
  std::lock_guard lock(mutex_);
  for (auto& job : queue_) job->post(failed(gone));
  queue_.clear();
  for (auto& t : session_tasks_) t->result.set_exception(std::make_exception_ptr(gone));
  session_tasks_.clear();
}

std::unique_ptr<Engine::Running> Engine::start(std::shared_ptr<Job> job) {
  auto r = std::make_unique<Running>();
  r->job = std::move(job);
  const CompletionRequest& req = r->job->request;
  try {
    const auto t0 = Clock::now();
    if (req.chat)
      bind_chat(*r);
    else
      bind_completion(*r);
    ServedSession& s = *r->session;
    metrics_.prompt(r->fed, r->cached, r->refed, seconds_since(t0));
    r->sampler = std::make_unique<Sampler>(req.sampling, s.session->vocab_size());
    if (!req.stop.empty()) r->stop.emplace(req.stop);
    const int64_t n_predict = req.max_tokens < 0 ? options_.defaults.n_predict_max : req.max_tokens;
    StreamOptions so;
    so.keep = false;  // the reply's text is collected here, as sent
    so.cancel = &r->job->cancelled;
    Running* raw = r.get();
    r->generator = std::make_unique<Generator>(
        *s.session, *r->sampler, model_.tokenizer(), s.history, n_predict, /*feed_last=*/true,
        [this, raw](std::string_view piece) { send_text(*raw, piece); }, so);
    r->last_token = Clock::now();
    JobEvent started;
    started.kind = JobEvent::Kind::Started;
    started.session_id = s.id;
    r->job->post(std::move(started));
    return r;
  } catch (const ApiError& e) {
    r->job->post(failed(e));
  } catch (const Cancelled&) {
    r->job->post(failed(ApiError{499, "cancelled", "the client went away", "",
                                          nlohmann::json::object()}));
  } catch (const std::exception& e) {
    r->job->post(failed(server_error(e.what())));
  }
  if (r->session) {
    // A prompt that failed half-fed leaves the cache out of step with the chain: start afresh.
    if (r->session->session->n_past() != r->cached) store_.forget(*r->session);
    r->session->session->set_cancel(nullptr);
    r->session->busy = false;
  }
  metrics_.failed();
  return nullptr;
}

void Engine::bind_chat(Running& r) {
  const Job& job = *r.job;
  const std::vector<ChatMessage>& messages = job.request.messages;
  r.links = chain_links(messages);
  ServedSession* s = nullptr;
  size_t from = 0;  // the first message the session has not seen
  bool diverged = false;
  if (!job.session_id.empty()) {
    s = store_.get(job.session_id);
    if (s && s->owner != job.owner) throw session_not_found(job.session_id);
    if (!s) {
      s = &store_.create(job.session_id, job.owner);
    } else if (s->chain != kEmptyTranscript) {
      const auto at = std::find(r.links.begin(), r.links.end(), s->chain);
      if (at != r.links.end()) {
        from = static_cast<size_t>(at - r.links.begin()) + 1;  // the whole history, resent
      } else if (messages.size() > 1 && r.links.front() == s->first_link) {
        // The same start, then something else: an edited history. A lone message equal to the
        // first is a new turn that repeats it (a client sending only new messages).
        diverged = true;
      } else {
        r.links = chain_links(messages, s->chain);  // only the new messages
      }
    } else if (s->session->n_past() > 0) {
      diverged = true;  // it holds a completion's text, not a chat
    }
  } else {
    size_t k = 0;
    s = store_.match(r.links, job.owner, &k);
    if (s)
      from = k + 1;
    else
      s = &store_.create("", job.owner);
  }
  r.session = s;
  s->busy = true;
  store_.touch(*s);
  if (diverged) store_.forget(*s);

  const std::vector<ChatMessage> fresh(messages.begin() + static_cast<std::ptrdiff_t>(from),
                                       messages.end());
  std::optional<ChatTurns> turns = s->turns;
  std::vector<ChatMessage> turn = fresh;
  if (!turns) {
    // The system message opens the conversation and stays in the sinks, ahead of every turn.
    const bool head = fresh.size() > 1 && fresh.front().role == "system";
    turns.emplace(model_.chat_format(), head ? fresh.front().content : std::string());
    if (head) turn.erase(turn.begin());
  }
  ChatTurns::Next next = turns->turn(turn);
  if (next.restart && s->session->n_past() > 0) {
    // The template rewrote what the cache holds: feed the whole history the request carries.
    diverged = true;
    store_.forget(*s);
    const bool head = messages.size() > 1 && messages.front().role == "system";
    turns.emplace(model_.chat_format(), head ? messages.front().content : std::string());
    next = turns->turn(std::vector<ChatMessage>(messages.begin() + (head ? 1 : 0), messages.end()));
    r.links = chain_links(messages);
  }
  const std::vector<int32_t> tokens =
      model_.tokenizer().encode(next.text, /*add_special=*/next.restart, /*parse_special=*/true);
  Session& session = *s->session;
  r.cached = session.n_past();
  check_fits(session, tokens.size(), "messages");
  if (r.cached == 0) s->first_link = r.links.front();
  session.set_cancel(&r.job->cancelled);
  session.feed(tokens);
  session.set_cancel(nullptr);
  s->turns = std::move(turns);
  r.fed = static_cast<int64_t>(tokens.size());
  if (diverged) {
    r.refed = r.fed;
    s->refed_tokens += r.fed;
  }
  s->history.insert(s->history.end(), tokens.begin(), tokens.end());
  trim_history(s->history, job.request.sampling.repeat_last_n);
}

void Engine::bind_completion(Running& r) {
  const Job& job = *r.job;
  ServedSession* s = nullptr;
  if (!job.session_id.empty()) {
    s = store_.get(job.session_id);
    if (s && s->owner != job.owner) throw session_not_found(job.session_id);
  }
  if (!s) s = &store_.create(job.session_id, job.owner);
  r.session = s;
  s->busy = true;
  store_.touch(*s);
  Session& session = *s->session;
  const std::vector<int32_t> tokens = model_.tokenizer().encode(
      job.request.prompt, /*add_special=*/session.n_past() == 0, /*parse_special=*/true);
  r.cached = session.n_past();
  check_fits(session, tokens.size(), "prompt");
  // A completion continues the raw stream; a chat's template state no longer describes it.
  s->turns.reset();
  store_.set_chain(*s, kEmptyTranscript);
  session.set_cancel(&r.job->cancelled);
  session.feed(tokens);
  session.set_cancel(nullptr);
  r.fed = static_cast<int64_t>(tokens.size());
  s->history.insert(s->history.end(), tokens.begin(), tokens.end());
  trim_history(s->history, job.request.sampling.repeat_last_n);
}

void Engine::send_text(Running& r, std::string_view piece) {
  const std::string out = r.stop ? r.stop->push(piece) : std::string(piece);
  if (out.empty()) return;
  r.reply += out;
  JobEvent e;
  e.kind = JobEvent::Kind::Text;
  e.text = out;
  r.job->post(std::move(e));
}

bool Engine::step(Running& r) {
  const int64_t before = r.generator->result().n_generated;
  bool more = r.generator->step();
  if (r.generator->result().n_generated > before) {
    if (!r.any_token)
      metrics_.first_token(seconds_since(r.job->created));
    else
      metrics_.token(seconds_since(r.last_token));
    r.any_token = true;
    r.last_token = Clock::now();
  }
  if (more && r.stop && r.stop->stopped()) {
    r.generator->stop("stop");
    more = false;
  }
  if (more) return true;
  finish(r);
  return false;
}

void Engine::finish(Running& r) {
  if (r.stop) {
    const std::string rest = r.stop->flush();
    if (!rest.empty()) {
      r.stop.reset();  // sends the rest as it is
      send_text(r, rest);
    }
  }
  ServedSession& s = *r.session;
  if (r.job->request.chat) {
    s.turns->assistant(r.reply);
    store_.set_chain(s, chain_hash(r.links.back(), {"assistant", r.reply}));
  }
  trim_history(s.history, r.job->request.sampling.repeat_last_n);
  s.busy = false;
  store_.touch(s);
  if (store_.persistent() && options_.autosave) {
    try {
      const SaveReport saved = store_.save(s);
      metrics_.saved(saved.bytes, saved.seconds);
    } catch (const ApiError& e) {
      // The reply has been sent; the file keeps the previous turn.
      std::fprintf(stderr, "kvcascade serve: autosave: %s\n", e.message.c_str());
    }
  }
  const Generation& g = r.generator->result();
  const bool ok = g.stop != "interrupted";
  metrics_.finished(g.n_generated, g.seconds, ok);
  JobEvent done;
  done.kind = JobEvent::Kind::Done;
  done.finish_reason = g.stop == "limit" || g.stop == "context" ? "length" : "stop";
  done.usage = usage(r);
  r.job->post(std::move(done));
}

nlohmann::json Engine::usage(const Running& r) const {
  const Session& session = *r.session->session;
  const int64_t n_past = session.n_past();
  const int64_t live = std::min(n_past, cache_slots(session.options().cache));
  const int64_t generated = r.generator->result().n_generated;
  return {{"prompt_tokens", r.cached + r.fed},
          {"completion_tokens", generated},
          {"total_tokens", r.cached + r.fed + generated},
          {"prompt_tokens_details", {{"cached_tokens", r.cached}}},
          {"kvcascade",
           {{"session_id", r.session->id},
            {"stream_tokens", n_past},
            {"fed_tokens", r.fed},
            {"refed_tokens", r.refed},
            {"live_cache_tokens", live},
            {"evicted_tokens", n_past - live},
            {"cache_bytes", session.kv_bytes()}}}};
}

}  // namespace kvc::server
