#include "server/session_store.h"

#include <random>

#include <fmt/format.h>

namespace kvc::server {

std::string random_session_id() {
  std::random_device device;
  std::string id;
  for (int i = 0; i < 4; ++i) id += fmt::format("{:08x}", static_cast<uint32_t>(device()));
  return id;
}

SessionStore::SessionStore(const Model& model, const SessionOptions& options, int max_sessions)
    : model_(model), options_(options), max_sessions_(static_cast<size_t>(max_sessions)) {}

ServedSession* SessionStore::find(const std::string& id) {
  const auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : it->second.get();
}

ServedSession& SessionStore::create(const std::string& id, const std::string& owner) {
  drop_beyond_limit();
  auto s = std::make_unique<ServedSession>();
  s->id = id.empty() ? random_session_id() : id;
  s->owner = owner;
  s->session = std::make_unique<Session>(model_, options_);
  touch(*s);
  ServedSession& ref = *s;
  sessions_[ref.id] = std::move(s);
  return ref;
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
  }
  return nullptr;
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

bool SessionStore::erase(const std::string& id) {
  ServedSession* s = find(id);
  if (!s) return false;
  set_chain(*s, kEmptyTranscript);
  sessions_.erase(std::string(id));  // a copy: `id` may be the node's own
  return true;
}

void SessionStore::drop_beyond_limit() {
  while (sessions_.size() >= max_sessions_) {
    ServedSession* oldest = nullptr;
    for (auto& [id, s] : sessions_)
      if (!s->busy && (!oldest || s->last_used < oldest->last_used)) oldest = s.get();
    if (!oldest) return;  // all busy: the engine never runs more than -np at once
    erase(oldest->id);
    ++dropped_;
  }
}

size_t SessionStore::bytes() const {
  size_t total = 0;
  for (const auto& [id, s] : sessions_) total += s->session->kv_bytes();
  return total;
}

}  // namespace kvc::server
