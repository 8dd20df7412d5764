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
                    std::vector<int32_t>& history, int64_t n_predict, bool feed_last,
                    const std::function<void(std::string_view)>& on_text,
                    const StreamOptions& stream) {
  Generation g;
  StreamDecoder decoder(tokenizer);
  const auto emit = [&](const std::string& piece) {
    if (piece.empty()) return;
    if (stream.keep) g.text += piece;
    on_text(piece);
  };
  // The penalty reads the last repeat_last_n tokens; without keep, history holds at most twice
  // that (trimmed in one go, so the cost per token stays constant).
  const int64_t look_back = sampler.params().repeat_last_n;
  const auto start = std::chrono::steady_clock::now();
  const auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  g.stop = "limit";
  while (n_predict < 0 || g.n_generated < n_predict) {
    if (stream.cancel && stream.cancel->load()) {
      g.stop = "interrupted";
      break;
    }
    const int32_t id = sampler.sample(session.logits(), history);
    if (tokenizer.is_eog(id)) {
      g.stop = "eog";
      break;
    }
    ++g.n_generated;
    if (stream.keep) g.tokens.push_back(id);
    history.push_back(id);
    if (!stream.keep && look_back >= 0 && static_cast<int64_t>(history.size()) > 2 * look_back + 64)
      history.erase(history.begin(), history.end() - look_back);
    emit(decoder.push(id));
    if (stream.report_every > 0 && g.n_generated % stream.report_every == 0 && stream.on_report)
      stream.on_report(g.n_generated, elapsed());
    const bool last = n_predict >= 0 && g.n_generated == n_predict;
    if (last && !feed_last) break;
    if (context_full(session)) {
      g.stop = "context";
      break;
    }
    session.feed(std::span<const int32_t>(&id, 1));
  }
  emit(decoder.flush());
  g.seconds = elapsed();
  return g;
}

}  // namespace kvc::cli
