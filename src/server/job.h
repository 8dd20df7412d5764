// One request on its way through the engine: what it asks for, and the channel its results
// come back on. The HTTP thread that made it waits on the channel; the engine thread writes it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/api_error.h"
#include "server/completion_request.h"

namespace kvc::server {

struct JobEvent {
  enum class Kind { Started, Text, Done, Failed };
  Kind kind = Kind::Text;
  std::string text;                  // Text: the next piece of the reply
  std::string session_id;            // Started
  std::string finish_reason;         // Done: "stop" or "length"
  nlohmann::json usage;              // Done: the usage object of the reply
  ApiError error;                    // Failed
};

class Job {
 public:
  Job(CompletionRequest request, std::string owner, std::string session_id)
      : request(std::move(request)), owner(std::move(owner)), session_id(std::move(session_id)) {}

  const CompletionRequest request;
  const std::string owner;       // who sent it (a hash of the API key; "" without keys)
  const std::string session_id;  // X-Session-Id or body session_id; "" to match by content
  const std::chrono::steady_clock::time_point created = std::chrono::steady_clock::now();
  // Set by the HTTP side when the client is gone; the engine stops before its next token.
  std::atomic<bool> cancelled{false};

  // Engine side.
  void post(JobEvent event) {
    {
      std::lock_guard lock(mutex_);
      events_.push_back(std::move(event));
    }
    ready_.notify_one();
  }
  // HTTP side: whatever has arrived, waiting up to `timeout` for something.
  std::vector<JobEvent> take(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    ready_.wait_for(lock, timeout, [&] { return !events_.empty(); });
    std::vector<JobEvent> out(std::make_move_iterator(events_.begin()),
                              std::make_move_iterator(events_.end()));
    events_.clear();
    return out;
  }

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<JobEvent> events_;
};

}  // namespace kvc::server
