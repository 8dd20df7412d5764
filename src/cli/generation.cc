#include "cli/generation.h"

#include <chrono>

#include "tokenizer/stream_decoder.h"

namespace kvc::cli {

namespace {

// The full cache is the only policy that runs out of room.
bool context_full(const Session& session) {
  const CacheConfig& cache = session.options().cache;
  return cache.policy == "full" && session.n_past() >= cache.context;
}

}  // namespace

Generation generate(Session& session, Sampler& sampler, const Tokenizer& tokenizer,
                    std::vector<int32_t>& history, int n_predict, bool feed_last,
                    const std::function<void(std::string_view)>& on_text) {
  Generation g;
  StreamDecoder decoder(tokenizer);
  const auto emit = [&](const std::string& piece) {
    if (piece.empty()) return;
    g.text += piece;
    on_text(piece);
  };
  const auto start = std::chrono::steady_clock::now();
  g.stop = "limit";
  while (n_predict < 0 || static_cast<int>(g.tokens.size()) < n_predict) {
    const int32_t id = sampler.sample(session.logits(), history);
    if (tokenizer.is_eog(id)) {
      g.stop = "eog";
      break;
    }
    g.tokens.push_back(id);
    history.push_back(id);
    emit(decoder.push(id));
    const bool last = n_predict >= 0 && static_cast<int>(g.tokens.size()) == n_predict;
    if (last && !feed_last) break;
    if (context_full(session)) {
      g.stop = "context";
      break;
    }
    session.feed(std::span<const int32_t>(&id, 1));
  }
  emit(decoder.flush());
  g.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return g;
}

}  // namespace kvc::cli
