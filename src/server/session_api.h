// /v1/sessions: the conversations a key owns, listed, created, read, deleted, saved to their
// file, restored from it and forked. Each function
// runs on the engine thread (Engine::with_sessions), which alone touches the store. A session
// of another key does not exist for the caller: 404, as for an id never made.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "server/api_error.h"
#include "server/session_store.h"

namespace kvc::server {

ApiError session_not_found(const std::string& id);

// What GET /v1/sessions/{id} answers: the id, whether it is generating, and what its cache
// holds (the same figures as a reply's usage.kvcascade).
nlohmann::json session_object(const ServedSession& s);

// {"object": "list", "data": [...]}: the caller's sessions, most recently used first.
nlohmann::json list_sessions(SessionStore& store, const std::string& owner);
// POST /v1/sessions: a new empty session under body.id (letters, digits, '-', '_', at most 64)
// or a random 128-bit id; 409 when the id is taken.
nlohmann::json create_session(SessionStore& store, const std::string& owner,
                              const nlohmann::json& body);
nlohmann::json get_session(SessionStore& store, const std::string& owner, const std::string& id);
// DELETE /v1/sessions/{id}: 409 while a request generates on it (as for the three below). The
// session's file goes too.
nlohmann::json delete_session(SessionStore& store, const std::string& owner, const std::string& id);
// POST /v1/sessions/{id}/save: writes its file now (400 without --session-dir); bytes and seconds.
nlohmann::json save_session(SessionStore& store, const std::string& owner, const std::string& id);
// POST /v1/sessions/{id}/restore: back to what its file holds (404 when it has none).
nlohmann::json restore_session(SessionStore& store, const std::string& owner,
                               const std::string& id);
// POST /v1/sessions/{id}/fork: a new session (body.id, or a random id) that continues from a copy
// of this one's state; the two then go their own ways.
nlohmann::json fork_session(SessionStore& store, const std::string& owner, const std::string& id,
                            const nlohmann::json& body);

}  // namespace kvc::server
