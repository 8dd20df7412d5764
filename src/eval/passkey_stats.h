// The statistics a passkey figure carries: exact match with a Wilson 95% interval, per-digit
// accuracy with a bootstrap over prompts (a prompt's digits are correlated, so prompts are the
// unit), the three-way split of failures, and McNemar's exact test for two policies run on the
// same prompts.
#pragma once

#include <cstdint>
#include <vector>

#include "eval/passkey.h"

namespace kvc {

struct Interval {
  double lo = 0.0, hi = 0.0;
};

// Wilson score interval of k successes in n trials (z = 1.96: 95%); [0, 1] when n = 0.
Interval wilson_interval(int64_t k, int64_t n, double z = 1.96);
// Percentile bootstrap (95%) of the mean of `values`, resampling them `rounds` times.
Interval bootstrap_mean(const std::vector<double>& values, int rounds = 2000, uint64_t seed = 1);
// Two-sided exact McNemar test: b and c are the discordant pairs (A right and B wrong, and the
// reverse); p = P(|X - n/2| >= |b - n/2|) for X ~ Binomial(b + c, 1/2). 1 when b + c = 0.
double mcnemar_p(int64_t b, int64_t c);

// Everything reported for the samples of one length.
struct PasskeySummary {
  int64_t n = 0;
  double exact = 0.0;      // share answered exactly
  Interval exact_ci;       // Wilson
  double digits = 0.0;     // mean per-digit accuracy
  Interval digits_ci;      // bootstrap over prompts
  double kept = 0.0;       // mean share of key tokens held
  double intact = 0.0;     // mean share of caches holding a whole statement
  int64_t retained = 0;    // samples whose every cache held a whole statement
  int64_t formed = 0;      // samples whose answer had the key's form
  int64_t read = 0;        // retained samples answered exactly
};
PasskeySummary summarize(const std::vector<PasskeySample>& samples, int64_t length);

}  // namespace kvc
