// The conversations the server keeps: each a Session (its cache, bounded by the policy) plus
// what is needed to continue it from a resent history: the template state of the last turn,
// the hash chain of the messages it holds, the penalty's look-back tokens. Owned and used by
// the engine thread alone. Beyond max_sessions the least recently used idle one is dropped.
//
// With a session directory (serve --session-dir) each session is one file <id>.kvcs there
// (engine/session_file.h plus a "conversation" section): saved on request, after every turn
// (autosave) and at shutdown; a dropped session is written out first and loaded again on its
// next request, and a restarted server finds every session of the directory, by id or by the
// chain of a resent history.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/state_fields.h"
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
  // The modification time of its file when this process last wrote or read it: a later one
  // means another server of the same directory went on with the conversation.
  std::filesystem::file_time_type file_time{};

  // The fields above that a saved session keeps (id, owner, turns, history, chain, first link,
  // refed tokens); busy and last_used belong to this process.
  void visit_conversation(StateFields& f);
};

// What a session file holds besides the caches, read without loading them: enough to find it
// by id or by the chain of a resent history.
struct SavedSession {
  std::string owner;
  uint64_t chain = kEmptyTranscript, first_link = 0;
};

// What saving one session cost.
struct SaveReport {
  size_t bytes = 0;
  double seconds = 0;
};

class SessionStore {
 public:
  // `dir`: the session directory ("" for none), made if missing; its sessions are indexed.
  SessionStore(const Model& model, const SessionOptions& options, int max_sessions,
               std::string dir = "");

  // The resident session under `id`, or null.
  ServedSession* find(const std::string& id);
  // The session under `id`, loaded from its file if it is not resident, or if another server
  // sharing the directory has written the file since this one last did; null when there is
  // none. A file that cannot be loaded (another model or configuration, truncated, corrupt)
  // throws ApiError 409 saying which, and is left as it is.
  ServedSession* get(const std::string& id);
  // A new, empty session; a random 128-bit id when `id` is empty. Drops the least recently
  // used idle sessions beyond the limit first.
  ServedSession& create(const std::string& id, const std::string& owner);
  // The idle session of `owner` whose chain equals links[k] for the largest k, with k; null
  // when none (links as chain_links gives them for a request's messages).
  ServedSession* match(const std::vector<uint64_t>& links, const std::string& owner, size_t* k);
  void touch(ServedSession& s) { s.last_used = ++tick_; }
  // The sessions `owner` made, in no particular order.
  std::vector<ServedSession*> owned_by(const std::string& owner);
  // Forgets the session under `id` (it must not be busy), its file too; false when there is
  // none.
  bool erase(const std::string& id);

  bool persistent() const { return !dir_.empty(); }
  // Writes the session's file (ApiError 400 without a session directory, 500 when writing fails).
  SaveReport save(ServedSession& s);
  // Every idle resident session (shutdown); what fails is reported on stderr.
  void save_all();
  // Replaces the resident state of `s` with its file's (404 when it has none).
  void restore(ServedSession& s);
  // A new session under `id` (random when empty) holding a copy of `from`'s state.
  ServedSession& fork(ServedSession& from, const std::string& id);
  // True when `id` names a session, resident or in the directory.
  bool exists(const std::string& id) const;
  // Forgets what a session holds (its stream, template state, look-back and chain); it stays
  // resident under its id, and its file as it is.
  void forget(ServedSession& s);
  // Chain bookkeeping: call when a session's chain changes.
  void set_chain(ServedSession& s, uint64_t chain);

  size_t size() const { return sessions_.size(); }
  size_t bytes() const;            // caches of every resident session
  int64_t dropped() const { return dropped_; }
  int64_t saved_on_disk() const { return static_cast<int64_t>(on_disk_.size()); }

 private:
  void drop_beyond_limit();
  std::string path_of(const std::string& id) const;
  // The file's bytes of `s`, in save_buffer_.
  const std::string& encode(ServedSession& s);
  // A session made from saved bytes; `what` names them in messages.
  std::unique_ptr<ServedSession> decode(std::string bytes, const std::string& what);
  ServedSession& insert(std::unique_ptr<ServedSession> s);
  void unindex(const std::string& id);  // drops `id` from the index of sessions on disk
  void erase_resident(const std::string& id);  // forgets the resident copy, keeps the file
  // True when the session's file changed since this process last wrote or read it.
  bool written_elsewhere(const ServedSession& s) const;
  void index_directory();

  const Model& model_;
  SessionOptions options_;
  size_t max_sessions_;
  std::string dir_;
  uint64_t fingerprint();          // model_fingerprint(model_), computed once
  std::optional<uint64_t> fingerprint_cache_;
  std::string save_buffer_;        // reused by every save
  std::string restore_buffer_;     // and by every restore
  uint64_t tick_ = 0;
  int64_t dropped_ = 0;
  std::map<std::string, std::unique_ptr<ServedSession>> sessions_;
  std::multimap<uint64_t, ServedSession*> by_chain_;  // chain -> sessions that end there
  // Sessions with a file that are not resident, and the chains they end in.
  std::map<std::string, SavedSession> on_disk_;
  std::multimap<uint64_t, std::string> disk_chains_;
};

// 32 hex digits from the system's random source.
std::string random_session_id();

}  // namespace kvc::server
