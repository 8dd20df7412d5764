#include "server/session_store.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <random>
#include <system_error>

#include <fmt/format.h>

#include "base/error.h"
#include "engine/session_file.h"
#include "server/api_error.h"
#include "server/completion_request.h"

namespace kvc::server {

namespace {

constexpr const char* kSuffix = ".kvcs";
// Far above any real count (the penalty look-back is a few hundred tokens).
constexpr size_t kMaxSavedHistory = size_t{1} << 24;

ApiError file_error(int status, const std::string& message) {
  return ApiError{status, status == 409 ? "conflict_error" : "server_error", message, "session_id",
                  nlohmann::json::object()};
}

// 409 for a saved session that this server cannot continue: made for another model or
// configuration, truncated or corrupt. The message says which.
ApiError load_error(const std::string& message) {
  return file_error(409, fmt::format("cannot load the saved session: {} (the file is left as it is)",
                                     message));
}

}  // namespace

std::string random_session_id() {
  std::random_device device;
  std::string id;
  for (int i = 0; i < 4; ++i) id += fmt::format("{:08x}", static_cast<uint32_t>(device()));
  return id;
}

void ServedSession::visit_conversation(StateFields& f) {
  f.text("id", id, 64);
  f.text("owner", owner, 256);
  bool chat = turns.has_value();
  f.value("chat", chat);
  if (f.loading()) {
    if (chat)
      turns.emplace(ChatFormat::ChatML, std::string());
    else
      turns.reset();
  }
  if (chat) turns->visit_state(f);
  f.list("history", history, kMaxSavedHistory);
  f.value("chain", chain);
  f.value("first_link", first_link);
  f.value("refed_tokens", refed_tokens);
}

SessionStore::SessionStore(const Model& model, const SessionOptions& options, int max_sessions,
                           std::string dir)
    : model_(model),
      options_(options),
      max_sessions_(static_cast<size_t>(max_sessions)),
      dir_(std::move(dir)) {
  if (!dir_.empty()) index_directory();
}

void SessionStore::index_directory() {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (!std::filesystem::is_directory(dir_))
    fail("--session-dir {}: not a directory that can be made ({})", dir_, ec.message());
  int skipped = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    const std::filesystem::path& p = entry.path();
    if (!entry.is_regular_file() || p.extension() != kSuffix) continue;
    const std::string id = p.stem().string();
    if (!valid_session_id(id)) continue;
    try {
      // The header and the conversation: a few kilobytes, not the caches.
      const SessionFileReader head = SessionFileReader::read_leading_sections(p.string(), 2);
      ServedSession s;
      head.section("conversation", [&](StateFields& f) { s.visit_conversation(f); });
      on_disk_[id] = {s.owner, s.chain, s.first_link};
      if (s.chain != kEmptyTranscript) disk_chains_.emplace(s.chain, id);
    } catch (const Error& e) {
      // Kept in the index, so that its id reports what is wrong instead of starting afresh.
      on_disk_[id] = {};
      ++skipped;
      std::fprintf(stderr, "kvcascade serve: session file %s: %s\n", p.c_str(), e.what());
    }
  }
  std::fprintf(stderr, "kvcascade serve: %zu saved sessions in %s%s\n", on_disk_.size(),
               dir_.c_str(), skipped ? " (some unreadable, see above)" : "");
}

uint64_t SessionStore::fingerprint() {
  // On first use: a server that never saves or forks a session never reads the whole file.
  if (!fingerprint_cache_) fingerprint_cache_ = model_fingerprint(model_);
  return *fingerprint_cache_;
}

std::string SessionStore::path_of(const std::string& id) const {
  return (std::filesystem::path(dir_) / (id + kSuffix)).string();
}

ServedSession* SessionStore::find(const std::string& id) {
  const auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : it->second.get();
}

bool SessionStore::exists(const std::string& id) const {
  return sessions_.count(id) > 0 || on_disk_.count(id) > 0;
}

ServedSession* SessionStore::get(const std::string& id) {
  ServedSession* resident = find(id);
  std::error_code ec;
  const std::string path = dir_.empty() ? std::string() : path_of(id);
  const auto time = dir_.empty() ? std::filesystem::file_time_type{}
                                 : std::filesystem::last_write_time(path, ec);
  const bool on_disk = !dir_.empty() && !ec;
  if (resident && (!on_disk || resident->busy || time == resident->file_time)) return resident;
  if (!resident && !on_disk) {
    // Indexed but gone (another server deleted it), or never made.
    unindex(id);
    return nullptr;
  }
  std::unique_ptr<ServedSession> s;
  try {
    s = decode(read_whole_file(path), path);
  } catch (const Error& e) {
    throw load_error(e.what());
  }
  if (s->id != id) throw load_error(fmt::format("{}: holds session '{}'", path, s->id));
  s->file_time = time;
  if (resident) erase_resident(id);
  drop_beyond_limit();
  return &insert(std::move(s));
}

void SessionStore::unindex(const std::string& id) {
  const auto it = on_disk_.find(id);
  if (it == on_disk_.end()) return;
  const auto [begin, end] = disk_chains_.equal_range(it->second.chain);
  for (auto c = begin; c != end; ++c)
    if (c->second == id) {
      disk_chains_.erase(c);
      break;
    }
  on_disk_.erase(it);
}

ServedSession& SessionStore::insert(std::unique_ptr<ServedSession> s) {
  unindex(s->id);  // resident now: the index holds only sessions that are not
  touch(*s);
  ServedSession& ref = *s;
  const uint64_t chain = ref.chain;
  ref.chain = kEmptyTranscript;
  sessions_[ref.id] = std::move(s);
  set_chain(ref, chain);
  return ref;
}

ServedSession& SessionStore::create(const std::string& id, const std::string& owner) {
  drop_beyond_limit();
  auto s = std::make_unique<ServedSession>();
  s->id = id.empty() ? random_session_id() : id;
  s->owner = owner;
  s->session = std::make_unique<Session>(model_, options_);
  return insert(std::move(s));
}

ServedSession* SessionStore::match(const std::vector<uint64_t>& links, const std::string& owner,
                                   size_t* k) {
  for (size_t i = links.size(); i-- > 0;) {
    const auto [begin, end] = by_chain_.equal_range(links[i]);
    for (auto it = begin; it != end; ++it) {
      ServedSession* s = it->second;
      if (s->busy || s->owner != owner) continue;
      *k = i;
      return s;
    }
    // A saved session that is not resident (dropped, or from before a restart).
    const auto [dbegin, dend] = disk_chains_.equal_range(links[i]);
    for (auto it = dbegin; it != dend; ++it) {
      if (on_disk_[it->second].owner != owner) continue;
      const std::string id = it->second;
      try {
        ServedSession* s = get(id);
        *k = i;
        return s;
      } catch (const ApiError& e) {
        // One bad file must not stop a conversation that can start afresh.
        std::fprintf(stderr, "kvcascade serve: %s\n", e.message.c_str());
        break;
      }
    }
  }
  return nullptr;
}

void SessionStore::forget(ServedSession& s) {
  s.session->reset();
  s.turns.reset();
  s.history.clear();
  set_chain(s, kEmptyTranscript);
  s.first_link = 0;
}

void SessionStore::set_chain(ServedSession& s, uint64_t chain) {
  const auto [begin, end] = by_chain_.equal_range(s.chain);
  for (auto it = begin; it != end; ++it)
    if (it->second == &s) {
      by_chain_.erase(it);
      break;
    }
  s.chain = chain;
  if (chain != kEmptyTranscript) by_chain_.emplace(chain, &s);
}

std::vector<ServedSession*> SessionStore::owned_by(const std::string& owner) {
  std::vector<ServedSession*> out;
  for (auto& [id, s] : sessions_)
    if (s->owner == owner) out.push_back(s.get());
  return out;
}

void SessionStore::erase_resident(const std::string& id) {
  ServedSession* s = find(id);
  if (!s) return;
  set_chain(*s, kEmptyTranscript);
  sessions_.erase(id);
}

bool SessionStore::erase(const std::string& id_ref) {
  const std::string id = id_ref;  // a copy: `id_ref` may be the erased node's own
  std::error_code ec;
  const bool had_file = !dir_.empty() && std::filesystem::remove(path_of(id), ec);
  if (!find(id) && !on_disk_.count(id) && !had_file) return false;
  erase_resident(id);
  unindex(id);
  return true;
}

const std::string& SessionStore::encode(ServedSession& s) {
  SessionFileWriter w(std::move(save_buffer_));
  save_session_header(*s.session, fingerprint(), w);
  w.section("conversation", [&](StateFields& f) { s.visit_conversation(f); });
  save_session_state(*s.session, w);
  save_buffer_ = w.finish();
  return save_buffer_;
}

std::unique_ptr<ServedSession> SessionStore::decode(std::string bytes, const std::string& what) {
  const SessionFileReader in(std::move(bytes), what);
  auto s = std::make_unique<ServedSession>();
  s->session = std::make_unique<Session>(model_, options_);
  load_session(*s->session, fingerprint(), in);
  in.section("conversation", [&](StateFields& f) { s->visit_conversation(f); });
  if (!valid_session_id(s->id)) fail("{}: holds an invalid session id", what);
  return s;
}

SaveReport SessionStore::save(ServedSession& s) {
  if (dir_.empty())
    throw ApiError{400, "invalid_request_error",
                   "this server keeps no session files: start it with --session-dir DIR",
                   "session_id", nlohmann::json::object()};
  const auto t0 = std::chrono::steady_clock::now();
  const std::string& bytes = encode(s);
  try {
    write_file_atomically(path_of(s.id), bytes);
  } catch (const Error& e) {
    throw file_error(500, fmt::format("cannot save session '{}': {}", s.id, e.what()));
  }
  std::error_code ec;
  s.file_time = std::filesystem::last_write_time(path_of(s.id), ec);
  return {bytes.size(),
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()};
}

bool SessionStore::written_elsewhere(const ServedSession& s) const {
  std::error_code ec;
  const auto time = std::filesystem::last_write_time(path_of(s.id), ec);
  return !ec && time != s.file_time;
}

void SessionStore::save_all() {
  if (dir_.empty()) return;
  for (auto& [id, s] : sessions_) {
    if (s->busy) continue;  // mid-reply: its last autosave is the consistent state
    if (written_elsewhere(*s)) continue;  // another server went on with it: its file is newer
    try {
      save(*s);
    } catch (const ApiError& e) {
      std::fprintf(stderr, "kvcascade serve: %s\n", e.message.c_str());
    }
  }
}

void SessionStore::restore(ServedSession& s) {
  const std::string path = path_of(s.id);
  if (dir_.empty() || !std::filesystem::exists(path))
    throw ApiError{404, "not_found_error", fmt::format("session '{}' has no saved file", s.id),
                   "session_id", nlohmann::json::object()};
  // Every checksum and the header are checked before a field is loaded, so this loads in place
  // (no second cache to allocate); only a file forged to pass them can fail halfway, and then
  // the session starts afresh rather than continue from a half-loaded state.
  std::optional<SessionFileReader> in;
  ServedSession saved;
  try {
    in.emplace(read_whole_file(path, std::move(restore_buffer_)), path);
    in->section("conversation", [&](StateFields& f) { saved.visit_conversation(f); });
  } catch (const Error& e) {
    throw load_error(e.what());
  }
  if (saved.id != s.id || saved.owner != s.owner)
    throw load_error(fmt::format("{}: holds another session", path));
  try {
    load_session(*s.session, fingerprint(), *in);
  } catch (const Error& e) {
    const SessionFileHeader h = read_session_header(*in);
    // Past the header checks, fields were loaded: the session holds a mix of two states.
    if (h.model == fingerprint() && h.config == session_config_text(options_)) forget(s);
    throw load_error(e.what());
  }
  restore_buffer_ = in->release();
  std::error_code ec;
  s.file_time = std::filesystem::last_write_time(path, ec);
  s.turns = std::move(saved.turns);
  s.history = std::move(saved.history);
  s.first_link = saved.first_link;
  s.refed_tokens = saved.refed_tokens;
  set_chain(s, saved.chain);
  touch(s);
}

ServedSession& SessionStore::fork(ServedSession& from, const std::string& id) {
  std::unique_ptr<ServedSession> copy = decode(encode(from), "fork of " + from.id);
  copy->id = id.empty() ? random_session_id() : id;
  drop_beyond_limit();
  return insert(std::move(copy));
}

void SessionStore::drop_beyond_limit() {
  while (sessions_.size() >= max_sessions_) {
    ServedSession* oldest = nullptr;
    for (auto& [id, s] : sessions_)
      if (!s->busy && (!oldest || s->last_used < oldest->last_used)) oldest = s.get();
    if (!oldest) return;  // all busy: the engine never runs more than -np at once
    const std::string id = oldest->id;
    SavedSession saved{oldest->owner, oldest->chain, oldest->first_link};
    bool written = false;
    if (!dir_.empty() && written_elsewhere(*oldest)) {
      written = true;  // another server's file is newer than this copy: keep that one
    } else if (!dir_.empty()) {
      try {
        save(*oldest);  // written out: it comes back on its next request
        written = true;
      } catch (const ApiError& e) {
        std::fprintf(stderr, "kvcascade serve: %s; dropped unsaved\n", e.message.c_str());
      }
    }
    set_chain(*oldest, kEmptyTranscript);
    sessions_.erase(id);
    if (written) {
      on_disk_[id] = saved;
      if (saved.chain != kEmptyTranscript) disk_chains_.emplace(saved.chain, id);
    }
    ++dropped_;
  }
}

size_t SessionStore::bytes() const {
  size_t total = 0;
  for (const auto& [id, s] : sessions_) total += s->session->kv_bytes();
  return total;
}

}  // namespace kvc::server
