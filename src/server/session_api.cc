#include "server/session_api.h"

#include <algorithm>

#include "cache/kv_cache.h"
#include "server/completion_request.h"

namespace kvc::server {

using nlohmann::json;

ApiError session_not_found(const std::string& id) {
  return ApiError{404, "not_found_error", fmt::format("session '{}' not found", id), "session_id",
                  json::object()};
}

json session_object(const ServedSession& s) {
  const Session& session = *s.session;
  const int64_t n_past = session.n_past();
  const int64_t live = std::min(n_past, cache_slots(session.options().cache));
  return {{"id", s.id},
          {"object", "session"},
          {"busy", s.busy},
          {"chat", s.turns.has_value()},
          {"stream_tokens", n_past},
          {"live_cache_tokens", live},
          {"evicted_tokens", n_past - live},
          {"refed_tokens", s.refed_tokens},
          {"cache_bytes", session.kv_bytes()}};
}

namespace {

ServedSession& owned(SessionStore& store, const std::string& owner, const std::string& id) {
  ServedSession* s = valid_session_id(id) ? store.get(id) : nullptr;
  if (!s || s->owner != owner) throw session_not_found(id);
  return *s;
}

void not_while_busy(const ServedSession& s, const char* what) {
  if (s.busy)
    throw ApiError{409, "conflict_error",
                   fmt::format("session '{}' is generating; {} it when the request ends", s.id, what),
                   "session_id", json::object()};
}

// The optional new id of a created or forked session: the body's `id` (checked, and free) or "".
std::string new_id(SessionStore& store, const json& body, const char* what) {
  std::string id;
  if (const auto it = body.find("id"); it != body.end() && !it->is_null()) {
    if (!it->is_string() || !valid_session_id(it->get<std::string>()))
      bad_request("id", "'id' must be 1 to 64 letters, digits, '-' or '_'");
    id = it->get<std::string>();
    if (store.exists(id))
      throw ApiError{409, "conflict_error", fmt::format("session '{}' already exists", id), "id",
                     json::object()};
  }
  for (const auto& [key, value] : body.items())
    if (key != "id") bad_request(key, "unknown field '{}': a session is {} with 'id' only", key, what);
  return id;
}

}  // namespace

json list_sessions(SessionStore& store, const std::string& owner) {
  std::vector<ServedSession*> mine = store.owned_by(owner);
  std::sort(mine.begin(), mine.end(),
            [](const ServedSession* a, const ServedSession* b) { return a->last_used > b->last_used; });
  json data = json::array();
  for (const ServedSession* s : mine) data.push_back(session_object(*s));
  return {{"object", "list"}, {"data", data}};
}

json create_session(SessionStore& store, const std::string& owner, const json& body) {
  return session_object(store.create(new_id(store, body, "created"), owner));
}

json get_session(SessionStore& store, const std::string& owner, const std::string& id) {
  return session_object(owned(store, owner, id));
}

json delete_session(SessionStore& store, const std::string& owner, const std::string& id) {
  ServedSession& s = owned(store, owner, id);
  not_while_busy(s, "delete");
  store.erase(id);
  return {{"id", id}, {"object", "session.deleted"}, {"deleted", true}};
}

json save_session(SessionStore& store, const std::string& owner, const std::string& id) {
  ServedSession& s = owned(store, owner, id);
  not_while_busy(s, "save");
  const SaveReport r = store.save(s);
  return {{"id", id}, {"object", "session.saved"}, {"bytes", r.bytes}, {"seconds", r.seconds}};
}

json restore_session(SessionStore& store, const std::string& owner, const std::string& id) {
  ServedSession& s = owned(store, owner, id);
  not_while_busy(s, "restore");
  store.restore(s);
  return session_object(s);
}

json fork_session(SessionStore& store, const std::string& owner, const std::string& id,
                  const json& body) {
  ServedSession& s = owned(store, owner, id);
  not_while_busy(s, "fork");
  const std::string to = new_id(store, body, "forked");
  return session_object(store.fork(s, to));
}

}  // namespace kvc::server
