// The rankers' memory estimates (memory_estimates.hpp): against a hand computation of their
// formula, and against the peak resident memory measured while the ranker runs (the estimate must
// bound it, and not by a wide margin). Also the size syntax of --memory-limit.
#include <gtest/gtest.h>
#include <malloc.h>

#include <fstream>
#include <random>
#include <string>

#include "caulk/context.hpp"
#include "caulk/error.hpp"
#include "caulk/parallel.hpp"
#include "caulk/transferability/feature_stats.hpp"
#include "caulk/transferability/logme.hpp"
#include "rankers/algorithms/memory_estimates.hpp"
#include "rankers/algorithms/transferability.hpp"

namespace caulk::rank {
namespace {

// H-score on 200 x 50000 features with 3 classes, by hand. D = 50000 > 2048, so the scatter is
// accumulated in one D x D matrix (2e10 bytes) and the peak is the decomposition: the scatter,
// its copy, and dsyevd's workspace of 1 + 6D + 2D^2 doubles and 3 + 5D ints (+ D eigenvalues):
//   8 (D^2 + D^2 + 1 + 6D + 2D^2 + D) + 4 (3 + 5D) = 32 D^2 + 76 D + 20,
// plus the mean and eigenvalues (2 D doubles), the class sums, means, between-class factor and
// its projection (4 C D doubles) and two row blocks of 512 x D doubles.
TEST(MemoryEstimates, HScoreOnWideFeaturesByHand) {
  const std::size_t D = 50000, C = 3;
  const std::size_t expected = 32 * D * D + 76 * D + 20 + 16 * D + 8 * (4 * C * D + 2 * 512 * D);
  EXPECT_EQ(hscore_memory(200, D, C).bytes, expected);
  EXPECT_EQ(expected, 80419000020u);  // 74.9 GiB
  // Up to 2048 columns each of the four lanes holds its own D x D accumulator.
  EXPECT_EQ(moments_peak_bytes(2048), 8 * (4 * 2048 * 2048 + 2 * 4 * 512 * 2048 + 4 * 2048));
  // Beyond, one accumulator: for D = 8000, 8000 x 8000 doubles and four blocks of 65 rows (4 MiB / D).
  EXPECT_EQ(moments_peak_bytes(8000), 8 * (8000 * 8000 + 4 * 65 * 8000 + 4 * 8000));
  // PARC's pairwise matrices for max_samples = 1048576 rows: P = n (n - 1) / 2 pairs, 5 P doubles.
  const std::size_t n = 1048576, pairs = n * (n - 1) / 2;
  EXPECT_GE(parc_memory(2000000, 16, 10, 32, n).bytes, 5 * pairs * 8);
}

// Peak resident memory of this process since the last reset (Linux: VmHWM, reset by writing 5 to
// /proc/self/clear_refs).
std::size_t read_status_kib(const std::string& key) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind(key + ":", 0) == 0) return std::stoul(line.substr(key.size() + 1));
  return 0;
}

// Runs `fn` and returns the growth of the peak resident memory over the resident memory before it.
// Allocations of 64 KiB and more are mapped and unmapped (glibc would otherwise raise its threshold
// after the first free and keep freed memory resident for the next case), and free memory is
// returned before measuring.
template <class Fn>
std::size_t measured_peak_bytes(Fn fn) {
  mallopt(M_MMAP_THRESHOLD, 64 * 1024);
  mallopt(M_TRIM_THRESHOLD, 128 * 1024);
  malloc_trim(0);
  std::ofstream("/proc/self/clear_refs") << "5";
  const std::size_t before = read_status_kib("VmRSS");
  fn();
  const std::size_t peak = read_status_kib("VmHWM");
  return (peak > before ? peak - before : 0) * 1024;
}

Matrix random_features(int N, int D, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  Matrix F(N, D);
  for (int j = 0; j < D; ++j)
    for (int i = 0; i < N; ++i) F(i, j) = normal(rng);
  return F;
}

std::vector<int> labels(int N, int C) {
  std::vector<int> y(static_cast<std::size_t>(N));
  for (int i = 0; i < N; ++i) y[static_cast<std::size_t>(i)] = i % C;
  return y;
}

// The estimate bounds the measured peak, within a factor of three (sizes where the estimated
// matrices dominate; the allocator's and libraries' own overheads are a few MiB; the estimates
// count every lane's buffers at once, while a pool of two threads runs two lanes at a time).
void expect_bounds(std::size_t estimate, std::size_t measured, const char* what) {
  EXPECT_LE(measured, estimate) << what;
  EXPECT_GE(3 * measured, estimate) << what;
}

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;  // its redzones and quarantine change what is resident
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif
#else
constexpr bool kAddressSanitizer = false;
#endif

TEST(MemoryEstimates, BoundTheMeasuredPeak) {
  if (kAddressSanitizer) GTEST_SKIP() << "resident memory under AddressSanitizer is not the program's";
  if (read_status_kib("VmHWM") == 0) GTEST_SKIP() << "no /proc/self/status";
  ThreadPool pool(2);
  ScopedPool scoped(&pool);
  {
    const Matrix F = random_features(1500, 900, 1);
    const std::vector<int> y = labels(1500, 4);
    const std::size_t measured = measured_peak_bytes([&] { hscore(MatrixView::borrow(F), y, 4); });
    expect_bounds(hscore_memory(1500, 900, 4).bytes, measured, "H-score, four lanes");
  }
  {
    const Matrix F = random_features(200, 2100, 2);
    const std::size_t measured = measured_peak_bytes([&] { moments(MatrixView::borrow(F)); });
    expect_bounds(moments_peak_bytes(2100), measured, "scatter by panels");
  }
  {
    const Matrix F = random_features(200, 4000, 3);
    const std::vector<int> y = labels(200, 3);
    const std::size_t measured = measured_peak_bytes([&] { logme_classification(MatrixView::borrow(F), y, 3); });
    expect_bounds(logme_memory(200, 4000, 3).bytes, measured, "LogME, thin SVD");
  }
  {
    const Matrix F = random_features(1000, 400, 4);
    const std::vector<int> y = labels(1000, 5);
    const std::size_t measured = measured_peak_bytes([&] { sfda(MatrixView::borrow(F), y, 5); });
    expect_bounds(sfda_memory(1000, 400, 5).bytes, measured, "SFDA");
  }
  {
    const Matrix F = random_features(2000, 20, 5);
    const std::vector<int> y = labels(2000, 5);
    const std::size_t measured = measured_peak_bytes([&] { parc(MatrixView::borrow(F), y, 5, 32, 1500, 0); });
    expect_bounds(parc_memory(2000, 20, 5, 32, 1500).bytes, measured, "PARC");
  }
}

TEST(MemoryBudget, SizesOnTheCommandLine) {
  EXPECT_EQ(parse_memory_size("1024"), 1024u);
  EXPECT_EQ(parse_memory_size("512M"), 512u << 20);
  EXPECT_EQ(parse_memory_size("8G"), std::size_t{8} << 30);
  EXPECT_EQ(parse_memory_size("8gb"), std::size_t{8} << 30);
  EXPECT_EQ(parse_memory_size("1.5GiB"), std::size_t{3} << 29);
  EXPECT_EQ(parse_memory_size("2T"), std::size_t{2} << 40);
  EXPECT_EQ(parse_memory_size("64K"), 64u << 10);
  EXPECT_EQ(parse_memory_size("0"), 0u);
  for (const char* bad : {"", "lots", "8X", "-1G", "1..5G", "G"}) EXPECT_THROW(parse_memory_size(bad), Error) << bad;
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(80419000020.0), "74.9 GiB");
  // The default: half of MemAvailable, which this machine reports.
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  std::size_t kib = 0, expected = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit)
    if (key == "MemAvailable:") expected = kib * 1024 / 2;
  const std::size_t got = default_memory_limit();
  EXPECT_NEAR(static_cast<double>(got), static_cast<double>(expected), 0.05 * static_cast<double>(expected) + (64 << 20));
}

}  // namespace
}  // namespace caulk::rank
