// The token loop that generate and chat share: sample, stop at end of generation, stream the
// text, feed the token back.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/session.h"
#include "sampling/sampler.h"
#include "tokenizer/tokenizer.h"

namespace kvc::cli {

struct Generation {
  int64_t n_generated = 0;      // the end-of-generation token left out
  std::vector<int32_t> tokens;  // generated ids (only when StreamOptions::keep)
  std::string text;             // (only when StreamOptions::keep)
  std::string stop;             // "eog", "limit", "context" or "interrupted"
  double seconds = 0.0;         // sampling and decoding of all generated tokens
};

// Generates after whatever `session` was fed last (its logits must be current). `history` holds
// the tokens so far, for the repetition penalty, and grows by the generated ones. n_predict -1
// means until an end-of-generation token (or a full context). on_text gets each piece of text
// as soon as it forms whole UTF-8 characters. With feed_last false the final generated token
// is not fed when the limit stops generation (nothing will read its logits); a conversation
// that goes on passes true so the session has seen every token of the reply.
// For endless streams: keep false holds memory flat (no text or ids collected, and `history`
// trimmed to what the repetition penalty reads); on_report runs after every report_every
// generated tokens with the count so far and the seconds since generation started.
// Once *cancel is set (Ctrl-C) generation stops before the next token, with stop "interrupted".
struct StreamOptions {
  bool keep = true;
  int64_t report_every = 0;
  std::function<void(int64_t generated, double seconds)> on_report;
  const std::atomic<bool>* cancel = nullptr;
};

Generation generate(Session& session, Sampler& sampler, const Tokenizer& tokenizer,
                    std::vector<int32_t>& history, int64_t n_predict, bool feed_last,
                    const std::function<void(std::string_view)>& on_text,
                    const StreamOptions& stream = {});

}  // namespace kvc::cli
