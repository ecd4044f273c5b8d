// data.subsample: seeded subsets of a split, added to the dataset as new splits, so that every node
// downstream (embeddings, rankers, tuners) sees exactly the same few labelled samples.
#include <fmt/format.h>

#include <cstring>

#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"
#include "caulk/error.hpp"
#include "caulk/io/npy.hpp"
#include "caulk/seeding/seeding.hpp"
#include "tuners/src/nodes.hpp"

namespace fs = std::filesystem;

namespace caulk::tuners {

namespace {

// Writes `rows` of a matrix as .npy, keeping float32 data float32.
ArrayFile write_matrix_rows(const ArrayFile& source, const std::vector<std::size_t>& rows, const fs::path& path, const std::string& what) {
  const MatrixView v = source.open(what);
  const Matrix m = v.gather_rows(rows);
  if (v.scalar_type() == ScalarType::F32)
    io::write_npy(path, RowMatrixF(m.cast<float>()));
  else
    io::write_npy(path, m);
  return ArrayFile{path, {}};
}

// Writes `rows` of an array file as .npy with its element type and trailing shape: model inputs
// may be images (N x C x H x W, float32) or token ids (N x L, int64), not only matrices.
ArrayFile write_rows(const ArrayFile& source, const std::vector<std::size_t>& rows, const fs::path& path, const std::string& what) {
  if (source.in_memory()) return write_matrix_rows(source, rows, path, what);
  const io::NpyArray a = io::NpyArray::open(source.path);
  const std::string file = source.path.string();
  if (a.ndim() == 0) throw DataError(file, fmt::format("{} is a scalar: an array with one row per sample (N, ...) is needed", what));
  if (a.fortran_order() && a.ndim() == 2) return write_matrix_rows(source, rows, path, what);
  if (a.fortran_order() && a.ndim() > 2)
    throw DataError(file, fmt::format("{} are in Fortran (column-major) order with {} dimensions: save them in C order "
                                      "(numpy.ascontiguousarray)",
                                      what, a.ndim()));
  // C order (or 1-D): each sample is one contiguous run of bytes.
  const std::size_t count = a.shape()[0];
  const std::size_t row_bytes = count == 0 ? 0 : a.size() / count * io::dtype_size(a.dtype());
  std::vector<std::byte> bytes(rows.size() * row_bytes);
  const auto* data = static_cast<const std::byte*>(a.data());
  for (std::size_t k = 0; k < rows.size(); ++k) {
    if (rows[k] >= count)
      throw DataError(file, fmt::format("{} have {} rows; the split has more (row {} was asked for)", what, count, rows[k]));
    std::memcpy(bytes.data() + k * row_bytes, data + rows[k] * row_bytes, row_bytes);
  }
  a.mapping()->check_intact();
  std::vector<std::size_t> shape = a.shape();
  shape[0] = rows.size();
  io::write_npy(path, a.dtype(), shape, bytes.data());
  return ArrayFile{path, {}};
}

class Subsample : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("data.subsample",
               "Add seeded subsets of a split to a dataset as new splits SPLIT_nSIZE_sSEED (nested: for one seed, the smaller "
               "subsets are part of the larger)");
    s.input("data", "Dataset", "the dataset");
    s.output("data", "Dataset", "the same dataset with the new splits (their files in the node's folder)");
    s.param(ParamSpec::string("split", "train", "the split to draw from"));
    s.param(ParamSpec::list("sizes", "the subset sizes, e.g. [30, 300]").mandatory());
    s.param(ParamSpec::integer("seeds", 3, "how many subsets of each size (tags s0, s1, ...)").range(1, 1000));
    s.param(ParamSpec::integer("seed", 0, "seed of the draws").at_least(0));
    return s;
  }

  void run(NodeContext& ctx) override {
    const Params& p = ctx.params();
    const auto in = ctx.input<Dataset>("data");
    const DatasetSplit& source = in->split(p.string("split"));
    std::vector<std::size_t> sizes;
    for (const Value& v : p.get("sizes").as_array()) {
      const auto n = v.as_int();
      if (n < 1 || static_cast<std::size_t>(n) > source.rows)
        throw Error(fmt::format("{}: a subset of {} samples from split '{}', which has {}", v.where().str(), n, source.name, source.rows));
      sizes.push_back(static_cast<std::size_t>(n));
    }
    if (sizes.empty()) throw Error("`sizes` is empty: give at least one subset size");
    auto out = std::make_shared<Dataset>(*in);
    const fs::path dir = ctx.out_dir() / ctx.id();
    fs::create_directories(dir);
    const auto seeds = static_cast<std::size_t>(p.integer("seeds"));
    const std::uint64_t seed = static_cast<std::uint64_t>(p.integer("seed"));
    Json& sum = ctx.summary();
    for (std::size_t j = 0; j < seeds; ++j) {
      // One shuffle per seed; each size takes its prefix, so the subsets of one seed are nested.
      const std::vector<std::size_t> order = seeding::seeded_order(source.rows, seeding::derive_seed(seed, j));
      for (std::size_t n : sizes) {
        const std::vector<std::size_t> rows = seeding::first_of(order, n);
        DatasetSplit s;
        s.name = fmt::format("{}_n{}_s{}", source.name, n, j);
        if (in->find_split(s.name)) throw Error(fmt::format("the dataset already has a split '{}'", s.name));
        s.rows = n;
        const std::string stem = (dir / s.name).string();
        if (in->kind == TaskKind::Classification) {
          std::vector<std::int64_t> labels;
          for (std::size_t r : rows) {
            s.classes.push_back(source.classes[r]);
            labels.push_back(source.classes[r]);
          }
          s.labels_file = stem + "_labels.npy";
          io::write_npy(s.labels_file, labels);
        } else {
          s.targets.resize(static_cast<Eigen::Index>(n), source.targets.cols());
          for (std::size_t k = 0; k < n; ++k)
            s.targets.row(static_cast<Eigen::Index>(k)) = source.targets.row(static_cast<Eigen::Index>(rows[k]));
          s.labels_file = stem + "_targets.npy";
          io::write_npy(s.labels_file, s.targets);
        }
        if (source.inputs)
          s.inputs = write_rows(*source.inputs, rows, stem + "_inputs.npy", fmt::format("inputs of split '{}'", source.name));
        if (source.covariates)
          s.covariates =
              write_rows(*source.covariates, rows, stem + "_covariates.npy", fmt::format("covariates of split '{}'", source.name));
        std::vector<std::int64_t> positions(rows.begin(), rows.end());
        io::write_npy(stem + "_rows.npy", positions);
        sum[s.name] = n;
        out->splits.push_back(std::move(s));
      }
    }
    ctx.publish("data", std::move(out));
  }
};

}  // namespace

void register_subsample(PluginRegistrar& r) { r.add_node<Subsample>(); }

}  // namespace caulk::tuners
