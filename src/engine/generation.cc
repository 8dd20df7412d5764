#include "engine/generation.h"

#include <utility>

namespace kvc {

bool session_fits(const Session& session, int64_t n_tokens) {
  const CacheConfig& cache = session.options().cache;
  return cache.policy != "full" || session.n_past() + n_tokens <= cache.context;
}

Generator::Generator(Session& session, Sampler& sampler, const Tokenizer& tokenizer,
                     std::vector<int32_t>& history, int64_t n_predict, bool feed_last,
                     TextSink on_text, StreamOptions stream)
    : session_(session),
      sampler_(sampler),
      tokenizer_(tokenizer),
      history_(history),
      n_predict_(n_predict),
      feed_last_(feed_last),
      on_text_(std::move(on_text)),
      stream_(std::move(stream)),
      decoder_(tokenizer),
      start_(std::chrono::steady_clock::now()) {
  g_.stop = "limit";
  if (n_predict_ == 0) finish();
}

double Generator::elapsed() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Generator::emit(const std::string& piece) {
  if (piece.empty()) return;
  if (stream_.keep) g_.text += piece;
  on_text_(piece);
}

void Generator::finish() {
  if (done_) return;
  done_ = true;
  emit(decoder_.flush());
  g_.seconds = elapsed();
}

void Generator::stop(const std::string& reason) {
  if (done_) return;
  g_.stop = reason;
  finish();
}

bool Generator::step() {
  if (done_) return false;
  if (stream_.cancel && stream_.cancel->load()) {
    stop("interrupted");
    return false;
  }
  const int32_t id = sampler_.sample(session_.logits(), history_);
  if (tokenizer_.is_eog(id)) {
    stop("eog");
    return false;
  }
  ++g_.n_generated;
  if (stream_.keep) g_.tokens.push_back(id);
  history_.push_back(id);
  // The penalty reads the last repeat_last_n tokens; without keep, history holds at most twice
  // that (trimmed in one go, so the cost per token stays constant).
  const int64_t look_back = sampler_.params().repeat_last_n;
  if (!stream_.keep && look_back >= 0 && static_cast<int64_t>(history_.size()) > 2 * look_back + 64)
    history_.erase(history_.begin(), history_.end() - look_back);
  emit(decoder_.push(id));
  if (stream_.report_every > 0 && g_.n_generated % stream_.report_every == 0 && stream_.on_report)
    stream_.on_report(g_.n_generated, elapsed());
  const bool last = n_predict_ >= 0 && g_.n_generated == n_predict_;
  if (last && !feed_last_) {
    finish();
    return false;
  }
  if (!session_fits(session_, 1)) {
    stop("context");
    return false;
  }
  session_.feed(std::span<const int32_t>(&id, 1));
  if (last) {
    finish();
    return false;
  }
  return true;
}

Generation generate(Session& session, Sampler& sampler, const Tokenizer& tokenizer,
                    std::vector<int32_t>& history, int64_t n_predict, bool feed_last,
                    const std::function<void(std::string_view)>& on_text,
                    const StreamOptions& stream) {
  Generator generator(session, sampler, tokenizer, history, n_predict, feed_last, on_text, stream);
  while (generator.step()) {
  }
  return generator.result();
}

}  // namespace kvc
