#include "server/transcript_hash.h"

#include <string>

namespace kvc::server {

namespace {

constexpr uint64_t kPrime = 0x100000001b3ull;

uint64_t mix(uint64_t h, const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * kPrime;
  return h;
}

uint64_t mix_field(uint64_t h, const std::string& s) {
  const uint64_t n = s.size();
  return mix(mix(h, &n, sizeof n), s.data(), s.size());
}

}  // namespace

uint64_t chain_hash(uint64_t previous, const ChatMessage& message) {
  return mix_field(mix_field(previous, message.role), message.content);
}

std::vector<uint64_t> chain_links(const std::vector<ChatMessage>& messages, uint64_t start) {
  std::vector<uint64_t> links;
  links.reserve(messages.size());
  uint64_t h = start;
  for (const ChatMessage& m : messages) links.push_back(h = chain_hash(h, m));
  return links;
}

}  // namespace kvc::server
