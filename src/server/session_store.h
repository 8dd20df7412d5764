// The conversations the server keeps: each a Session (its cache, bounded by the policy) plus
// what is needed to continue it from a resent history: the template state of the last turn,
// the hash chain of the messages it holds, the penalty's look-back tokens. Owned and used by
// the engine thread alone. Beyond max_sessions the least recently used idle one is dropped.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/session.h"
#include "model/model.h"
#include "server/transcript_hash.h"
#include "tokenizer/chat_turns.h"

namespace kvc::server {

struct ServedSession {
  std::string id;
  std::string owner;                 // the key hash of whoever created it
  std::unique_ptr<Session> session;
  std::optional<ChatTurns> turns;    // set once a chat request fed it
  std::vector<int32_t> history;      // the last tokens fed, for the repetition penalties
  // The chain over every message the cache holds, the reply it generated last included;
  // kEmptyTranscript when it holds none, or what it holds is not a chat (a completion).
  uint64_t chain = kEmptyTranscript;
  uint64_t first_link = 0;           // the chain's first link: a resent history starts with it
  bool busy = false;                 // a request is generating on it
  uint64_t last_used = 0;            // a tick of the store, for LRU
  int64_t refed_tokens = 0;          // tokens fed again after a history diverged
};

class SessionStore {
 public:
  SessionStore(const Model& model, const SessionOptions& options, int max_sessions);

  // The session under `id`, or null.
  ServedSession* find(const std::string& id);
  // A new, empty session; a random 128-bit id when `id` is empty. Drops the least recently
  // used idle sessions beyond the limit first.
  ServedSession& create(const std::string& id, const std::string& owner);
  // The idle session of `owner` whose chain equals links[k] for the largest k, with k; null
  // when none (links as chain_links gives them for a request's messages).
  ServedSession* match(const std::vector<uint64_t>& links, const std::string& owner, size_t* k);
  void touch(ServedSession& s) { s.last_used = ++tick_; }
  // The sessions `owner` made, in no particular order.
  std::vector<ServedSession*> owned_by(const std::string& owner);
  // Forgets the session under `id` (it must not be busy); false when there is none.
  bool erase(const std::string& id);
  // Chain bookkeeping: call when a session's chain changes.
  void set_chain(ServedSession& s, uint64_t chain);

  size_t size() const { return sessions_.size(); }
  size_t bytes() const;            // caches of every resident session
  int64_t dropped() const { return dropped_; }

 private:
  void drop_beyond_limit();
  const Model& model_;
  SessionOptions options_;
  size_t max_sessions_;
  uint64_t tick_ = 0;
  int64_t dropped_ = 0;
  std::map<std::string, std::unique_ptr<ServedSession>> sessions_;
  std::multimap<uint64_t, ServedSession*> by_chain_;  // chain -> sessions that end there
};

// 32 hex digits from the system's random source.
std::string random_session_id();

}  // namespace kvc::server
