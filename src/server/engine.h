// The one thread that owns the model and every session. Requests wait in a bounded queue; up
// to -np of them generate at once, a token each in turn (the engine's Generator steps), so
// streams progress together and each one's tokens are what it would get alone. A request is
// bound to its session here: by id, or by matching its messages against the sessions' hash
// chains, so only what the session has not seen is rendered, tokenized and fed.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>

#include "engine/generation.h"
#include "model/model.h"
#include "ops/thread_pool.h"
#include "server/job.h"
#include "server/metrics.h"
#include "server/server_options.h"
#include "server/session_store.h"
#include "server/stop_matcher.h"

namespace kvc::server {

class Engine {
 public:
  Engine(const Model& model, const ServerOptions& options, Metrics& metrics);
  ~Engine();  // stops the thread; requests still queued or running fail with 503

  // Queues a job; false when the queue is full (the caller answers 503).
  bool submit(std::shared_ptr<Job> job);
  int64_t queued() const;
  // Runs `task` on the engine thread between two steps (the sessions are that thread's alone)
  // and returns its result; what it throws (an ApiError) is thrown here. 503 when stopping.
  nlohmann::json with_sessions(std::function<nlohmann::json(SessionStore&)> task);

 private:
  // A job generating on its session.
  struct Running {
    std::shared_ptr<Job> job;
    ServedSession* session = nullptr;
    std::unique_ptr<Sampler> sampler;
    std::unique_ptr<Generator> generator;
    std::optional<StopMatcher> stop;
    std::string reply;              // the text sent, which a resent history will carry
    std::vector<uint64_t> links;    // chain links of the request's messages
    int64_t cached = 0, fed = 0, refed = 0;
    std::chrono::steady_clock::time_point last_token;
    bool any_token = false;
  };

  void loop();
  void run_session_tasks();
  // Binds the job to its session and feeds its prompt; posts Started, or Failed and returns null.
  std::unique_ptr<Running> start(std::shared_ptr<Job> job);
  void bind_chat(Running& r);
  void bind_completion(Running& r);
  // One token of a running job; false once it has finished (and posted Done).
  bool step(Running& r);
  void finish(Running& r);
  void send_text(Running& r, std::string_view piece);
  nlohmann::json usage(const Running& r) const;
  // A job whose session is busy waits for it.
  bool session_busy(const Job& job);
  void publish_load();

  const Model& model_;
  const ServerOptions options_;
  Metrics& metrics_;
  ThreadPool pool_;  // every session's: the engine thread runs one at a time
  SessionStore store_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> queue_;
  struct SessionTask {
    std::function<nlohmann::json(SessionStore&)> run;
    std::promise<nlohmann::json> result;
  };
  std::deque<std::shared_ptr<SessionTask>> session_tasks_;
  bool stopping_ = false;
  std::list<std::unique_ptr<Running>> running_;  // engine thread only
  std::thread thread_;
};

}  // namespace kvc::server
