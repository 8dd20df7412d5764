// The token loop that generate, chat and the server share: sample, stop at end of generation,
// stream the text, feed the token back. One step is one token, so a caller that serves many
// streams (the server's engine thread) can interleave them; generate() runs one to the end.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/session.h"
#include "sampling/sampler.h"
#include "tokenizer/stream_decoder.h"
#include "tokenizer/tokenizer.h"

namespace kvc {

struct Generation {
  int64_t n_generated = 0;      // the end-of-generation token left out
  std::vector<int32_t> tokens;  // generated ids (only when StreamOptions::keep)
  std::string text;             // (only when StreamOptions::keep)
  std::string stop;             // "eog", "limit", "context", "interrupted" or the caller's reason
  double seconds = 0.0;         // sampling and decoding of all generated tokens
};

// n_predict -1 means until an end-of-generation token (or a full context). With feed_last false
// the final generated token is not fed when the limit stops generation (nothing will read its
// logits); a conversation that goes on passes true so the session has seen every token of the
// reply.
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

// One reply in progress after whatever `session` was fed last (its logits must be current).
// `history` holds the tokens so far, for the repetition penalty, and grows by the generated
// ones; it, the session, the sampler and the tokenizer must outlive the generator. on_text gets
// each piece of text as soon as it forms whole UTF-8 characters.
class Generator {
 public:
  using TextSink = std::function<void(std::string_view)>;
  Generator(Session& session, Sampler& sampler, const Tokenizer& tokenizer,
            std::vector<int32_t>& history, int64_t n_predict, bool feed_last, TextSink on_text,
            StreamOptions stream = {});

  // Samples, emits and (unless it was the last) feeds one token. False once generation has
  // stopped: then result() is final and the decoder's held-back bytes have been emitted.
  bool step();
  // Stops before the next token with `reason` (a stop string matched, the client left).
  void stop(const std::string& reason);
  bool done() const { return done_; }
  const Generation& result() const { return g_; }

 private:
  void emit(const std::string& piece);
  void finish();
  double elapsed() const;

  Session& session_;
  Sampler& sampler_;
  const Tokenizer& tokenizer_;
  std::vector<int32_t>& history_;
  int64_t n_predict_;
  bool feed_last_;
  TextSink on_text_;
  StreamOptions stream_;
  StreamDecoder decoder_;
  Generation g_;
  bool done_ = false;
  std::chrono::steady_clock::time_point start_;
};

// Runs a Generator to its end.
Generation generate(Session& session, Sampler& sampler, const Tokenizer& tokenizer,
                    std::vector<int32_t>& history, int64_t n_predict, bool feed_last,
                    const std::function<void(std::string_view)>& on_text,
                    const StreamOptions& stream = {});

// False when `session` cannot take `n_tokens` more: only the full cache runs out of room.
bool session_fits(const Session& session, int64_t n_tokens);

}  // namespace kvc
