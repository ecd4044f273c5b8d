#include "mergers/algorithms/merge_methods.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>

#include "caulk/error.hpp"
#include "caulk/seeding/seeding.hpp"
#include "mergers/algorithms/element_codec.hpp"
#include "mergers/algorithms/non_finite.hpp"

namespace caulk::merge {

namespace {

void check_weight_count(const std::vector<TensorParameter>& weights, const MergeInputs& in, const std::string& method) {
  if (weights.size() != in.model_count())
    throw Error(fmt::format("internal: {} got {} weights for {} models", method, weights.size(), in.model_count()));
}

// Coefficients read once per tensor.
struct WeightedState : TensorState {
  std::vector<double> w;
  double lambda = 1, density = 1, sum_w = 0;
};

std::unique_ptr<WeightedState> weighted_state(const std::vector<TensorParameter>& weights, const std::string& tensor) {
  auto s = std::make_unique<WeightedState>();
  for (const auto& w : weights) {
    s->w.push_back(w.at(tensor));
    s->sum_w += s->w.back();
  }
  return s;
}

WeightedState& as_weighted(TensorState* s) { return static_cast<WeightedState&>(*s); }

}  // namespace

// ------------------------------------------------------------------------------ linear

void LinearMerge::check(const MergeInputs& in) const { check_weight_count(weights_, in, name()); }

std::unique_ptr<TensorState> LinearMerge::start(const std::string& tensor, std::size_t, std::size_t) const {
  auto s = weighted_state(weights_, tensor);
  if (normalize_ && s->sum_w == 0) throw Error(fmt::format("tensor '{}': the weights sum to 0, so they cannot be normalised", tensor));
  return s;
}

namespace {
template <class S>
void linear_combine(const WeightedState& s, bool normalize, const Chunk<S>& c, S* out) {
  const S scale = normalize ? static_cast<S>(1.0 / s.sum_w) : S(1);
  // Blocks small enough to stay in L1 while every model is added in (vectorised loops).
  constexpr std::size_t kBlock = 1024;
  for (std::size_t begin = 0; begin < c.count; begin += kBlock) {
    const std::size_t end = std::min(c.count, begin + kBlock);
    for (std::size_t j = begin; j < end; ++j) out[j] = 0;
    for (std::size_t i = 0; i < c.models.size(); ++i) {
      const S w = static_cast<S>(s.w[i]);
      const S* x = c.models[i];
      for (std::size_t j = begin; j < end; ++j) out[j] += w * x[j];
    }
    if (normalize)
      for (std::size_t j = begin; j < end; ++j) out[j] *= scale;
  }
}
}  // namespace

void LinearMerge::combine(TensorState* s, const Chunk<float>& c, float* out) const { linear_combine(as_weighted(s), normalize_, c, out); }
void LinearMerge::combine(TensorState* s, const Chunk<double>& c, double* out) const { linear_combine(as_weighted(s), normalize_, c, out); }

// ------------------------------------------------------------------------------ task arithmetic

void TaskArithmeticMerge::check(const MergeInputs& in) const { check_weight_count(weights_, in, name()); }

std::unique_ptr<TensorState> TaskArithmeticMerge::start(const std::string& tensor, std::size_t, std::size_t) const {
  auto s = weighted_state(weights_, tensor);
  s->lambda = lambda_.at(tensor);
  if (normalize_ && s->sum_w == 0) throw Error(fmt::format("tensor '{}': the weights sum to 0, so they cannot be normalised", tensor));
  return s;
}

namespace {
// out = base + lambda * sum_i w_i d_i (/ sum w), with d_i = x_i - base, or the given task vectors.
template <class S, class TaskVector>
void task_sum(const WeightedState& s, bool normalize, const Chunk<S>& c, S* out, TaskVector task_vector) {
  const S lambda = static_cast<S>(normalize ? s.lambda / s.sum_w : s.lambda);
  for (std::size_t j = 0; j < c.count; ++j) {
    S sum = 0;
    for (std::size_t i = 0; i < c.models.size(); ++i) sum += static_cast<S>(s.w[i]) * task_vector(i, j);
    out[j] = c.base[j] + lambda * sum;
  }
}
}  // namespace

void TaskArithmeticMerge::combine(TensorState* s, const Chunk<float>& c, float* out) const {
  task_sum(as_weighted(s), normalize_, c, out, [&](std::size_t i, std::size_t j) { return c.models[i][j] - c.base[j]; });
}
void TaskArithmeticMerge::combine(TensorState* s, const Chunk<double>& c, double* out) const {
  task_sum(as_weighted(s), normalize_, c, out, [&](std::size_t i, std::size_t j) { return c.models[i][j] - c.base[j]; });
}

// ------------------------------------------------------------------------------ TIES

namespace {

// A magnitude as an unsigned key whose order is the order of magnitudes (for non-negative IEEE
// numbers the bit patterns sort like the values).
template <class S>
std::uint64_t magnitude_key(S d) {
  if constexpr (sizeof(S) == 4)
    return std::bit_cast<std::uint32_t>(std::fabs(d));
  else
    return std::bit_cast<std::uint64_t>(std::fabs(d));
}

constexpr int kDigitBits = 16;
constexpr std::size_t kDigits = std::size_t{1} << kDigitBits;

// Exact selection of the k-th largest magnitude by most-significant-digit radix passes (16 bits
// per pass), with memory independent of the tensor size.
struct MagnitudeSelection {
  std::uint64_t k = 0;          // how many entries to keep
  std::uint64_t remaining = 0;  // rank sought among entries matching `prefix`
  std::uint64_t prefix = 0, mask = 0;
  int shift = 0;
  std::vector<std::uint64_t> histogram;
  // Results: keep entries with key > threshold, and the first keep_equal entries == threshold.
  std::uint64_t threshold = 0, keep_equal = 0, equal_seen = 0;
  bool keep_all = false, keep_none = false;

  bool kept(std::uint64_t key) {
    if (keep_all) return true;
    if (keep_none) return false;
    if (key > threshold) return true;
    if (key == threshold && equal_seen < keep_equal) {
      ++equal_seen;
      return true;
    }
    return false;
  }
};

struct TiesState : WeightedState {
  std::vector<MagnitudeSelection> select;  // per model
};

template <class S>
void ties_observe(TiesState& s, int pass, const Chunk<S>& c) {
  const int width = static_cast<int>(sizeof(S) * 8);
  for (std::size_t i = 0; i < c.models.size(); ++i) {
    MagnitudeSelection& m = s.select[i];
    if (m.keep_all || m.keep_none) continue;
    m.shift = width - kDigitBits * (pass + 1);
    if (m.histogram.empty()) m.histogram.assign(kDigits, 0);
    const S* x = c.models[i];
    for (std::size_t j = 0; j < c.count; ++j) {
      const std::uint64_t key = magnitude_key<S>(x[j] - c.base[j]);
      if ((key & m.mask) == m.prefix) ++m.histogram[(key >> m.shift) & (kDigits - 1)];
    }
  }
}

// Elects the sign and sums the agreeing kept values with their weights; `normalize` divides the
// sum by the agreeing weights (the disjoint mean of TIES). 0 where none agrees.
template <class S>
S disjoint_merge(const std::vector<double>& w, const S* kept, std::size_t k, bool normalize) {
  S vote = 0;
  for (std::size_t i = 0; i < k; ++i) vote += static_cast<S>(w[i]) * kept[i];
  const bool positive = vote >= 0;  // a zero sum elects +
  S sum = 0, weight = 0;
  for (std::size_t i = 0; i < k; ++i) {
    if (kept[i] == 0 || (kept[i] > 0) != positive) continue;
    sum += static_cast<S>(w[i]) * kept[i];
    weight += static_cast<S>(w[i]);
  }
  if (!normalize) return sum;
  return weight != 0 ? sum / weight : S(0);
}

template <class S>
void ties_combine(TiesState& s, bool normalize, const Chunk<S>& c, S* out) {
  const std::size_t k = c.models.size();
  std::vector<S> kept(k);
  const S lambda = static_cast<S>(s.lambda);
  for (std::size_t j = 0; j < c.count; ++j) {
    for (std::size_t i = 0; i < k; ++i) {
      const S d = c.models[i][j] - c.base[j];
      kept[i] = s.select[i].kept(magnitude_key<S>(d)) ? d : S(0);
    }
    out[j] = c.base[j] + lambda * disjoint_merge(s.w, kept.data(), k, normalize);
  }
}

}  // namespace

void TiesMerge::check(const MergeInputs& in) const { check_weight_count(weights_, in, name()); }

std::unique_ptr<TensorState> TiesMerge::start(const std::string& tensor, std::size_t elements, std::size_t models) const {
  auto s = std::make_unique<TiesState>();
  for (const auto& w : weights_) s->w.push_back(w.at(tensor));
  s->lambda = lambda_.at(tensor);
  s->density = density_.at(tensor);
  const auto k = static_cast<std::uint64_t>(std::llround(s->density * static_cast<double>(elements)));
  s->select.resize(models);
  for (auto& m : s->select) {
    m.k = m.remaining = k;
    m.keep_all = k >= elements;
    m.keep_none = k == 0;
  }
  return s;
}

void TiesMerge::observe(TensorState* s, int pass, const Chunk<float>& c) const { ties_observe(static_cast<TiesState&>(*s), pass, c); }
void TiesMerge::observe(TensorState* s, int pass, const Chunk<double>& c) const { ties_observe(static_cast<TiesState&>(*s), pass, c); }

void TiesMerge::end_pass(TensorState* state, int) const {
  for (MagnitudeSelection& m : static_cast<TiesState&>(*state).select) {
    if (m.keep_all || m.keep_none) continue;
    // The digit holding the remaining-th largest key among those matching the prefix.
    std::uint64_t above = 0;
    std::size_t digit = kDigits;
    while (digit-- > 0) {
      if (above + m.histogram[digit] >= m.remaining) break;
      above += m.histogram[digit];
    }
    m.remaining -= above;
    m.prefix |= static_cast<std::uint64_t>(digit) << m.shift;
    m.mask |= static_cast<std::uint64_t>(kDigits - 1) << m.shift;
    std::fill(m.histogram.begin(), m.histogram.end(), 0);
    if (m.shift == 0) {  // the last pass: the prefix is the k-th largest key itself
      m.threshold = m.prefix;
      m.keep_equal = m.remaining;
      m.histogram = {};
    }
  }
}

void TiesMerge::combine(TensorState* s, const Chunk<float>& c, float* out) const {
  ties_combine(static_cast<TiesState&>(*s), normalize_, c, out);
}
void TiesMerge::combine(TensorState* s, const Chunk<double>& c, double* out) const {
  ties_combine(static_cast<TiesState&>(*s), normalize_, c, out);
}

// ------------------------------------------------------------------------------ DARE

namespace {

struct DareState : WeightedState {
  std::vector<std::uint64_t> streams;  // per model
};

// One stream per (tensor, model) pair, named by their names so a mask does not depend on which
// other tensors or models are merged.
std::uint64_t dare_stream(std::uint64_t seed, const std::string& tensor, const std::string& model) {
  return seeding::derive_seed(seed, seeding::name_tag(tensor), seeding::name_tag(model));
}

double stream_draw(std::uint64_t stream, std::uint64_t element) {
  // SplitMix64 adds the golden gamma before each output: starting element * gamma further along
  // gives the stream's (element + 1)-th output directly.
  seeding::SeededUniform at(stream + element * seeding::kSplitMix64Gamma);
  return static_cast<double>(at.next_u64() >> 11) * 0x1.0p-53;
}

template <class S>
void dare_combine(const DareState& s, DareMerge::Combine combine, bool normalize, const Chunk<S>& c, S* out) {
  const std::size_t k = c.models.size();
  const S rescale = static_cast<S>(1.0 / s.density);
  auto dropped = [&](std::size_t i, std::size_t j) -> S {
    const S d = c.models[i][j] - c.base[j];
    return stream_draw(s.streams[i], c.first + j) < s.density ? d * rescale : S(0);
  };
  if (combine == DareMerge::Combine::Linear) {
    task_sum(s, normalize, c, out, dropped);
    return;
  }
  std::vector<S> kept(k);
  const S lambda = static_cast<S>(s.lambda);
  for (std::size_t j = 0; j < c.count; ++j) {
    for (std::size_t i = 0; i < k; ++i) kept[i] = dropped(i, j);
    out[j] = c.base[j] + lambda * disjoint_merge(s.w, kept.data(), k, normalize);
  }
}

}  // namespace

double DareMerge::draw(std::uint64_t seed, const std::string& tensor, const std::string& model, std::uint64_t element) {
  return stream_draw(dare_stream(seed, tensor, model), element);
}

void DareMerge::check(const MergeInputs& in) const { check_weight_count(weights_, in, name()); }

void DareMerge::prepare(const MergeInputs& in, std::size_t) {
  model_names_.clear();  // the streams are keyed by name, so reordering the models changes nothing
  for (std::size_t i = 0; i < in.model_count(); ++i) model_names_.push_back(in.model(i).name);
}

std::unique_ptr<TensorState> DareMerge::start(const std::string& tensor, std::size_t, std::size_t) const {
  auto s = std::make_unique<DareState>();
  for (const auto& w : weights_) {
    s->w.push_back(w.at(tensor));
    s->sum_w += s->w.back();
  }
  s->lambda = lambda_.at(tensor);
  s->density = density_.at(tensor);
  if (!(s->density > 0)) throw Error(fmt::format("tensor '{}': DARE needs density > 0 (the fraction of entries kept)", tensor));
  if (combine_ == Combine::Linear && normalize_ && s->sum_w == 0)
    throw Error(fmt::format("tensor '{}': the weights sum to 0, so they cannot be normalised", tensor));
  for (const auto& m : model_names_) s->streams.push_back(dare_stream(seed_, tensor, m));
  return s;
}

void DareMerge::combine(TensorState* s, const Chunk<float>& c, float* out) const {
  dare_combine(static_cast<DareState&>(*s), combine_, normalize_, c, out);
}
void DareMerge::combine(TensorState* s, const Chunk<double>& c, double* out) const {
  dare_combine(static_cast<DareState&>(*s), combine_, normalize_, c, out);
}

// ------------------------------------------------------------------------------ SLERP

namespace {

constexpr double kSlerpParallel = 0.9995;
constexpr double kSlerpNormEpsilon = 1e-8;

struct SlerpState : TensorState {
  double t = 0.5;
  double aa = 0, bb = 0, ab = 0;  // sums in double
  double sa = 0.5, sb = 0.5;
};

template <class S>
void slerp_observe(SlerpState& s, const Chunk<S>& c) {
  const S* a = c.models[0];
  const S* b = c.models[1];
  for (std::size_t j = 0; j < c.count; ++j) {
    const double x = a[j], y = b[j];
    s.aa += x * x;
    s.bb += y * y;
    s.ab += x * y;
  }
}

template <class S>
void slerp_combine(const SlerpState& s, const Chunk<S>& c, S* out) {
  const S sa = static_cast<S>(s.sa), sb = static_cast<S>(s.sb);
  for (std::size_t j = 0; j < c.count; ++j) out[j] = sa * c.models[0][j] + sb * c.models[1][j];
}

}  // namespace

std::pair<double, double> SlerpMerge::coefficients(double cosine, double t, bool* linear) {
  const bool parallel = std::fabs(cosine) > kSlerpParallel;
  if (linear) *linear = parallel;
  if (parallel) return {1 - t, t};
  const double omega = std::acos(std::clamp(cosine, -1.0, 1.0));
  const double sin_omega = std::sin(omega);
  return {std::sin((1 - t) * omega) / sin_omega, std::sin(t * omega) / sin_omega};
}

void SlerpMerge::check(const MergeInputs& in) const {
  if (in.model_count() != 2) throw Error(fmt::format("SLERP interpolates exactly two models; got {}", in.model_count()));
}

std::unique_ptr<TensorState> SlerpMerge::start(const std::string& tensor, std::size_t, std::size_t) const {
  auto s = std::make_unique<SlerpState>();
  s->t = t_.at(tensor);
  return s;
}

void SlerpMerge::observe(TensorState* s, int, const Chunk<float>& c) const { slerp_observe(static_cast<SlerpState&>(*s), c); }
void SlerpMerge::observe(TensorState* s, int, const Chunk<double>& c) const { slerp_observe(static_cast<SlerpState&>(*s), c); }

void SlerpMerge::end_pass(TensorState* state, int) const {
  auto& s = static_cast<SlerpState&>(*state);
  double na = std::sqrt(s.aa), nb = std::sqrt(s.bb);
  if (!(na > kSlerpNormEpsilon)) na = 1;  // mergekit leaves a (near-)zero vector unnormalised
  if (!(nb > kSlerpNormEpsilon)) nb = 1;
  std::tie(s.sa, s.sb) = coefficients(s.ab / (na * nb), s.t);
}

void SlerpMerge::combine(TensorState* s, const Chunk<float>& c, float* out) const { slerp_combine(static_cast<SlerpState&>(*s), c, out); }
void SlerpMerge::combine(TensorState* s, const Chunk<double>& c, double* out) const { slerp_combine(static_cast<SlerpState&>(*s), c, out); }

// ------------------------------------------------------------------------------ Fisher

double fisher_norm(const MergeInputs& in, std::size_t model, std::size_t chunk_elements) {
  double sum = 0;
  std::vector<double> buffer(std::max<std::size_t>(1, chunk_elements));
  for (const std::string& name : in.tensor_names()) {
    const auto bytes = in.fisher_bytes(model, name);
    const io::DType t = in.fisher_dtype(model, name);
    const std::size_t n = bytes.size() / io::dtype_size(t);
    for (std::size_t first = 0; first < n; first += buffer.size()) {
      const std::size_t count = std::min(buffer.size(), n - first);
      decode(bytes.data(), t, first, count, buffer.data());
      release_pages(bytes.data() + first * io::dtype_size(t), count * io::dtype_size(t));
      if (const std::size_t j = first_non_finite(buffer.data(), count); j < count)
        throw DataError(
            in.model(model).fisher.string(),
            fmt::format("the Fisher of model '{}': tensor '{}', element {}: Fisher value {} (it must be finite and non-negative)",
                        in.model(model).name, name, element_text(first + j, in.info(name).shape), value_text(buffer[j])));
      for (std::size_t j = 0; j < count; ++j) sum += buffer[j] * buffer[j];
    }
  }
  return std::sqrt(sum);
}

void FisherMerge::check(const MergeInputs& in) const { check_weight_count(lambdas_, in, name()); }

void FisherMerge::prepare(const MergeInputs& in, std::size_t chunk_elements) {
  fisher_files_.clear();
  norms_.assign(in.model_count(), 1.0);
  for (std::size_t i = 0; i < in.model_count(); ++i) {
    fisher_files_.push_back(in.model(i).fisher.string());
    if (!normalize_) continue;
    norms_[i] = fisher_norm(in, i, chunk_elements);
    if (!std::isfinite(norms_[i]))
      throw DataError(fisher_files_[i],
                      fmt::format("the Fisher of model '{}' has an L2 norm beyond the range of a double: it cannot be normalised "
                                  "(normalize_fisher = false merges it unnormalised)",
                                  in.model(i).name));
    // FusionBench divides by the norm plus the floor, which also keeps an all-zero Fisher finite.
    if (mode_ == FloorMode::Add) norms_[i] += floor_;
    if (!(norms_[i] > 0))
      throw DataError(fisher_files_[i],
                      fmt::format("the Fisher of model '{}' is zero everywhere: it cannot be normalised (normalize_fisher = false, "
                                  "or floor = \"add\" with floor > 0, merges it)",
                                  in.model(i).name));
  }
}

void FisherMerge::adopt_prepared(const MergeInputs& in, const std::vector<double>& norms, std::size_t chunk_elements) {
  if (norms.size() != in.model_count()) {
    prepare(in, chunk_elements);
    return;
  }
  fisher_files_.clear();
  for (std::size_t i = 0; i < in.model_count(); ++i) fisher_files_.push_back(in.model(i).fisher.string());
  norms_ = norms;
}

namespace {

struct FisherState : TensorState {
  std::vector<double> c;  // lambda_i / norm_i
  double sum_c = 0;
};

template <class S>
void fisher_combine(const FisherState& s, double floor, FisherMerge::FloorMode mode, const std::vector<std::string>& files,
                    const Chunk<S>& c, S* out) {
  const std::size_t k = c.models.size();
  const S fl = static_cast<S>(floor);
  for (std::size_t i = 0; i < k; ++i)
    for (std::size_t j = 0; j < c.count; ++j) {
      const S f = c.fishers[i][j];
      if (!(f >= 0) || !std::isfinite(f))
        throw DataError(files[i], fmt::format("tensor '{}', element {}: Fisher value {} (it must be finite and non-negative)", c.tensor,
                                              c.first + j, static_cast<double>(f)));
    }
  for (std::size_t j = 0; j < c.count; ++j) {
    S num = 0, den = 0;
    for (std::size_t i = 0; i < k; ++i) {
      const S floored = mode == FisherMerge::FloorMode::Max ? std::max(c.fishers[i][j], fl) : c.fishers[i][j] + fl;
      const S f = static_cast<S>(s.c[i]) * floored;
      num += f * c.models[i][j];
      den += f;
    }
    if (den > 0) {
      out[j] = num / den;
    } else {  // no Fisher mass at all here: the coefficient-weighted average
      S avg = 0;
      for (std::size_t i = 0; i < k; ++i) avg += static_cast<S>(s.c[i]) * c.models[i][j];
      out[j] = avg / static_cast<S>(s.sum_c);
    }
  }
}

}  // namespace

std::unique_ptr<TensorState> FisherMerge::start(const std::string& tensor, std::size_t, std::size_t) const {
  auto s = std::make_unique<FisherState>();
  for (std::size_t i = 0; i < lambdas_.size(); ++i) {
    s->c.push_back(lambdas_[i].at(tensor) / norms_[i]);
    s->sum_c += s->c.back();
  }
  if (!(s->sum_c > 0)) throw Error(fmt::format("tensor '{}': the model coefficients (lambda) sum to 0", tensor));
  return s;
}

void FisherMerge::combine(TensorState* s, const Chunk<float>& c, float* out) const {
  fisher_combine(static_cast<FisherState&>(*s), floor_, mode_, fisher_files_, c, out);
}
void FisherMerge::combine(TensorState* s, const Chunk<double>& c, double* out) const {
  fisher_combine(static_cast<FisherState&>(*s), floor_, mode_, fisher_files_, c, out);
}

}  // namespace caulk::merge
