// The token loop that generate and chat share: sample, stop at end of generation, stream the
// text, feed the token back.
#pragma once

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
  std::vector<int32_t> tokens;  // generated ids, the end-of-generation token left out
  std::string text;
  std::string stop;             // "eog", "limit" or "context"
  double seconds = 0.0;         // sampling and decoding of all generated tokens
};

// Generates after whatever `session` was fed last (its logits must be current). `history` holds
// the tokens so far, for the repetition penalty, and grows by the generated ones. n_predict -1
// means until an end-of-generation token (or a full context). on_text gets each piece of text
// as soon as it forms whole UTF-8 characters. With feed_last false the final generated token
// is not fed when the limit stops generation (nothing will read its logits); a conversation
// that goes on passes true so the session has seen every token of the reply.
Generation generate(Session& session, Sampler& sampler, const Tokenizer& tokenizer,
                    std::vector<int32_t>& history, int n_predict, bool feed_last,
                    const std::function<void(std::string_view)>& on_text);

}  // namespace kvc::cli
