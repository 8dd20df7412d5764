#include "eval/passkey_stats.h"

#include <algorithm>
#include <cmath>

namespace kvc {

Interval wilson_interval(int64_t k, int64_t n, double z) {
  if (n <= 0) return {0.0, 1.0};
  const double p = static_cast<double>(k) / static_cast<double>(n), nn = static_cast<double>(n);
  const double denom = 1.0 + z * z / nn;
  const double centre = (p + z * z / (2 * nn)) / denom;
  const double half = z * std::sqrt(p * (1 - p) / nn + z * z / (4 * nn * nn)) / denom;
  return {std::max(0.0, centre - half), std::min(1.0, centre + half)};
}

Interval bootstrap_mean(const std::vector<double>& values, int rounds, uint64_t seed) {
  if (values.empty()) return {0.0, 1.0};
  uint64_t state = seed * 0x9e3779b97f4a7c15ull + 1;
  const auto next = [&] {  // xorshift64*
    state ^= state >> 12, state ^= state << 25, state ^= state >> 27;
    return state * 0x2545f4914f6cdd1dull;
  };
  std::vector<double> means(static_cast<size_t>(rounds));
  for (double& m : means) {
    double sum = 0.0;
    for (size_t i = 0; i < values.size(); ++i) sum += values[next() % values.size()];
    m = sum / static_cast<double>(values.size());
  }
  std::sort(means.begin(), means.end());
  const auto at = [&](double q) { return means[static_cast<size_t>(q * (rounds - 1) + 0.5)]; };
  return {at(0.025), at(0.975)};
}

double mcnemar_p(int64_t b, int64_t c) {
  const int64_t n = b + c;
  if (n == 0) return 1.0;
  // Sum the binomial tail in log space: P(X <= min(b, c)) doubled, capped at 1.
  const int64_t k = std::min(b, c);
  double tail = 0.0;
  for (int64_t i = 0; i <= k; ++i)
    tail += std::exp(std::lgamma(n + 1.0) - std::lgamma(i + 1.0) - std::lgamma(n - i + 1.0) -
                     static_cast<double>(n) * std::log(2.0));
  return std::min(1.0, 2.0 * tail);
}

PasskeySummary summarize(const std::vector<PasskeySample>& samples, int64_t length) {
  PasskeySummary s;
  std::vector<double> digits;
  int64_t exact = 0;
  for (const PasskeySample& x : samples) {
    if (x.length != length) continue;
    ++s.n;
    exact += x.exact;
    digits.push_back(x.score);
    s.kept += x.key_kept;
    s.intact += x.key_intact;
    s.retained += retained(x);
    s.formed += well_formed(x);
    s.read += retained(x) && x.exact;
  }
  if (s.n == 0) return s;
  const double n = static_cast<double>(s.n);
  s.exact = static_cast<double>(exact) / n;
  s.exact_ci = wilson_interval(exact, s.n);
  for (double d : digits) s.digits += d / n;
  s.digits_ci = bootstrap_mean(digits, 2000, static_cast<uint64_t>(length));
  s.kept /= n;
  s.intact /= n;
  return s;
}

}  // namespace kvc
