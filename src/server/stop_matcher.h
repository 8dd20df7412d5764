// OpenAI's `stop`: text streams out as it is generated, except a tail that could still turn
// into one of the stop strings, which waits for the next piece. Once a stop string appears, the
// text before it is the rest of the reply and the stop string itself is never sent.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kvc::server {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);
  // Takes the next piece of generated text; returns what may be sent now.
  std::string push(std::string_view piece);
  // At the end of generation: whatever was held back (nothing once stopped).
  std::string flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace kvc::server
