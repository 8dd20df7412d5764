// A hash chain over a conversation's messages: link k hashes link k-1 with message k's role
// and content, so one 64-bit value stands for a whole history and a resent history is matched
// against a session's message by message. FNV-1a over length-prefixed fields: no two different
// (role, content) sequences share an encoding, so only a 64-bit collision could confuse two.
#pragma once

#include <cstdint>
#include <vector>

#include "tokenizer/chat_template.h"

namespace kvc::server {

inline constexpr uint64_t kEmptyTranscript = 0xcbf29ce484222325ull;  // the FNV offset basis

uint64_t chain_hash(uint64_t previous, const ChatMessage& message);

// links[k] stands for messages[0..k] (so links.size() == messages.size()).
std::vector<uint64_t> chain_links(const std::vector<ChatMessage>& messages,
                                  uint64_t start = kEmptyTranscript);

}  // namespace kvc::server
