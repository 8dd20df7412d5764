// Single-threaded quant kernels on the real model shapes: matvec (decode) in GB/s of weights,
// matmul (prefill) in GFLOP/s, and the machine's memory bandwidth as the ceiling for both.
//   build-*/quant_bench --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <vector>

#include "quant/quant.h"
#include "quant/reference.h"

namespace {

using kvc::GgmlType;
namespace quant = kvc::quant;

struct Matrix {
  GgmlType type;
  int64_t k, rows;
  size_t row_bytes;
  std::vector<uint8_t> data;
};

std::vector<float> random_floats(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = nd(rng);
  return x;
}

// A pool of distinct random rows tiled over the matrix: real weight bytes without quantizing
// hundreds of millions of values at start-up.
Matrix make_matrix(GgmlType t, int64_t k, int64_t rows) {
  Matrix m{t, k, rows, quant::row_bytes(t, k), {}};
  m.data.resize(m.row_bytes * static_cast<size_t>(rows));
  const int64_t pool = std::min<int64_t>(rows, 64);
  for (int64_t r = 0; r < pool; ++r) {
    const auto x = random_floats(k, static_cast<uint32_t>(r));
    quant::ref::quantize_row(t, x.data(), m.data.data() + r * m.row_bytes, k);
  }
  for (int64_t r = pool; r < rows; ++r)
    std::memcpy(m.data.data() + r * m.row_bytes, m.data.data() + (r % pool) * m.row_bytes,
                m.row_bytes);
  return m;
}

std::vector<uint8_t> make_activations(GgmlType weight, int64_t k, int64_t cols) {
  const size_t bytes = quant::row_bytes(quant::activation_type(weight), k);
  std::vector<uint8_t> a(bytes * static_cast<size_t>(cols));
  for (int64_t c = 0; c < cols; ++c) {
    const auto x = random_floats(k, 1000 + static_cast<uint32_t>(c));
    quant::quantize_activation(weight, x.data(), a.data() + c * bytes, k);
  }
  return a;
}

// Matrix-vector product over all rows, as one decode step does (activation quantized once).
void BM_Matvec(benchmark::State& state, GgmlType t, int64_t k, int64_t rows) {
  const Matrix m = make_matrix(t, k, rows);
  const auto x = random_floats(k, 7);
  std::vector<uint8_t> act(quant::row_bytes(quant::activation_type(t), k));
  std::vector<float> out(static_cast<size_t>(rows));
  for (auto _ : state) {
    quant::quantize_activation(t, x.data(), act.data(), k);
    quant::matmul(t, m.data.data(), m.row_bytes, 0, rows, act.data(), act.size(), 1, k,
                  out.data(), rows);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(m.data.size()));
  state.SetLabel(quant::simd_target());
}

// Many activation columns at once, as prefill does.
void BM_Matmul(benchmark::State& state, GgmlType t, int64_t k, int64_t rows) {
  const int64_t cols = state.range(0);
  const Matrix m = make_matrix(t, k, rows);
  const auto act = make_activations(t, k, cols);
  const size_t xcb = act.size() / static_cast<size_t>(cols);
  std::vector<float> out(static_cast<size_t>(rows * cols));
  for (auto _ : state) {
    quant::matmul(t, m.data.data(), m.row_bytes, 0, rows, act.data(), xcb, cols, k, out.data(),
                  rows);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["GFLOPS"] = benchmark::Counter(2.0 * static_cast<double>(k * rows * cols) * 1e-9,
                                                benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(quant::simd_target());
}

void BM_QuantizeActivation(benchmark::State& state, GgmlType t, int64_t k) {
  const auto x = random_floats(k, 3);
  std::vector<uint8_t> act(quant::row_bytes(quant::activation_type(t), k));
  for (auto _ : state) {
    quant::quantize_activation(t, x.data(), act.data(), k);
    benchmark::DoNotOptimize(act.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * k * 4);
}

// The ceiling: one thread streaming a buffer far larger than the caches.
void BM_MemoryRead(benchmark::State& state) {
  std::vector<uint64_t> buf(size_t{512} << 20 >> 3, 1);
  for (auto _ : state) {
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i < buf.size(); i += 4) {
      s0 += buf[i];
      s1 += buf[i + 1];
      s2 += buf[i + 2];
      s3 += buf[i + 3];
    }
    benchmark::DoNotOptimize(s0 + s1 + s2 + s3);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * buf.size() * 8));
}

void BM_MemoryCopy(benchmark::State& state) {
  std::vector<uint8_t> a(size_t{256} << 20, 1), b(size_t{256} << 20, 2);
  for (auto _ : state) {
    std::memcpy(b.data(), a.data(), a.size());
    benchmark::DoNotOptimize(b.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * a.size()));
}

}  // namespace

// SmolLM2-135M (Q4_1 blocks, Q8_0 tied output layer) and Gemma 3 270M (Q4_K_M mix).
// Arguments: input size k, output rows.
BENCHMARK_CAPTURE(BM_Matvec, smol_up_q4_1_576x1536, GgmlType::Q4_1, 576, 1536);
BENCHMARK_CAPTURE(BM_Matvec, smol_down_q4_1_1536x576, GgmlType::Q4_1, 1536, 576);
BENCHMARK_CAPTURE(BM_Matvec, smol_output_q8_0_576x49152, GgmlType::Q8_0, 576, 49152);
BENCHMARK_CAPTURE(BM_Matvec, gemma_up_q5_0_640x2048, GgmlType::Q5_0, 640, 2048);
BENCHMARK_CAPTURE(BM_Matvec, gemma_down_q6_K_2048x640, GgmlType::Q6_K, 2048, 640);
BENCHMARK_CAPTURE(BM_Matvec, gemma_attn_out_q4_K_1024x640, GgmlType::Q4_K, 1024, 640);
BENCHMARK_CAPTURE(BM_Matvec, gemma_output_q8_0_640x262144, GgmlType::Q8_0, 640, 262144);
BENCHMARK_CAPTURE(BM_Matvec, f16_576x1536, GgmlType::F16, 576, 1536);
BENCHMARK_CAPTURE(BM_Matvec, bf16_576x1536, GgmlType::BF16, 576, 1536);
BENCHMARK_CAPTURE(BM_Matvec, f32_576x1536, GgmlType::F32, 576, 1536);

BENCHMARK_CAPTURE(BM_Matmul, smol_up_q4_1_576x1536, GgmlType::Q4_1, 576, 1536)->Arg(64)->Arg(512);
BENCHMARK_CAPTURE(BM_Matmul, smol_down_q4_1_1536x576, GgmlType::Q4_1, 1536, 576)->Arg(64)->Arg(512);
BENCHMARK_CAPTURE(BM_Matmul, q8_0_576x4096, GgmlType::Q8_0, 576, 4096)->Arg(64)->Arg(512);
BENCHMARK_CAPTURE(BM_Matmul, gemma_up_q5_0_640x2048, GgmlType::Q5_0, 640, 2048)->Arg(2)->Arg(4)->Arg(8)->Arg(64)->Arg(512);
BENCHMARK_CAPTURE(BM_Matmul, gemma_down_q6_K_2048x640, GgmlType::Q6_K, 2048, 640)->Arg(64)->Arg(512);
BENCHMARK_CAPTURE(BM_Matmul, gemma_attn_out_q4_K_1024x640, GgmlType::Q4_K, 1024, 640)->Arg(64)->Arg(512);
BENCHMARK_CAPTURE(BM_Matmul, f16_576x1536, GgmlType::F16, 576, 1536)->Arg(64);

BENCHMARK_CAPTURE(BM_QuantizeActivation, q8_0_576, GgmlType::Q8_0, 576);
BENCHMARK_CAPTURE(BM_QuantizeActivation, q8_1_576, GgmlType::Q4_1, 576);
BENCHMARK_CAPTURE(BM_QuantizeActivation, q8_K_2048, GgmlType::Q6_K, 2048);

BENCHMARK(BM_MemoryRead)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MemoryCopy)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
