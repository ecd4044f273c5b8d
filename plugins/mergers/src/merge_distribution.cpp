// Merges under mpirun (docs/scaling.md): each output file of a merge is a unit of the merge node,
// written into the output rank 0 staged, with the method rebuilt on the unit's rank by the node's
// own build function.
#include <fmt/format.h>

#include <map>

#include "mergers/algorithms/merge_output.hpp"
#include "mergers/src/merge_node_support.hpp"

namespace fs = std::filesystem;

namespace caulk::mergers {

namespace {
Json merge_model_to_json(const merge::MergeModel& m) {
  return Json{{"name", m.name}, {"checkpoint", m.checkpoint.string()}, {"fisher", m.fisher.string()}};
}

merge::MergeModel merge_model_from_json(const Json& j) {
  return {j.at("name").get<std::string>(), j.at("checkpoint").get<std::string>(), j.at("fisher").get<std::string>()};
}
}  // namespace

Json merge_job_to_json(const MergeJob& job) {
  Json models = Json::array();
  for (const auto& m : job.models) models.push_back(merge_model_to_json(m));
  return Json{{"models", models},
              {"base", job.base ? merge_model_to_json(*job.base) : Json(nullptr)},
              {"module", job.module.string()},
              {"feature_method", job.feature_method}};
}

MergeJob merge_job_from_json(const Json& j) {
  MergeJob job;
  for (const Json& m : j.at("models")) job.models.push_back(merge_model_from_json(m));
  if (!j.at("base").is_null()) job.base = merge_model_from_json(j.at("base"));
  job.module = j.at("module").get<std::string>();
  job.feature_method = j.at("feature_method").get<std::string>();
  return job;
}

// One output file of a staged merge: the method is rebuilt by the node's build function from its
// parameters and the recipe's extra, adopts what rank 0 prepared (Fisher norms), and writes the
// file's tensors into the staged temporary, which rank 0 commits once every file is written.
Json merge_file_unit(UnitContext& ctx, const Json& d, MethodBuilder build) {
  const Params& p = ctx.params();
  const MergeJob merged = merge_job_from_json(d.at("job"));
  const auto method = build(p, d.at("extra"), merged.models);
  const merge::MergeInputs inputs = merge::MergeInputs::open(merged.models, merged.base, method->uses_fisher());
  const auto chunk = d.at("chunk_elements").get<std::size_t>();
  method->check(inputs);
  method->adopt_prepared(inputs, d.at("prepared").get<std::vector<double>>(), chunk);
  const Json& f = d.at("file");
  merge::OutputFileJob job;
  job.path = f.at("path").get<std::string>();
  job.tensors = f.at("tensors").get<std::vector<std::string>>();
  job.offsets = f.at("offsets").get<std::vector<std::uint64_t>>();
  for (const Json& t : f.at("dtypes")) {
    const auto dtype = io::dtype_from_safetensors_name(t.get<std::string>());
    if (!dtype) throw Error(fmt::format("the file job names an unknown dtype '{}'", t.get<std::string>()));
    job.dtypes.push_back(*dtype);
  }
  const merge::Precision precision = d.at("precision").get<std::string>() == "float64" ? merge::Precision::F64 : merge::Precision::F32;
  return Json{{"io_bytes", merge::merge_output_file(inputs, *method, job, precision, chunk, p.flag("allow_non_finite"))}};
}

merge::MergeReport run_distributed(const NodeContext& ctx, const MergeJob& job, const MethodRecipe& recipe, merge::MergeMethod& method,
                                   const fs::path& output, const merge::MergeOptions& options) {
  const merge::MergeInputs inputs = merge::MergeInputs::open(job.models, job.base, method.uses_fisher());
  merge::StagedMerge staged(inputs, method, output, options);
  Json common{{"extra", recipe.extra},
              {"job", merge_job_to_json(job)},
              {"prepared", method.prepared_values()},
              {"precision", options.precision == merge::Precision::F64 ? "float64" : "float32"},
              {"chunk_elements", options.chunk_elements}};
  std::vector<Json> descriptions;
  std::vector<std::string> names;
  for (std::size_t f = 0; f < staged.file_count(); ++f) {
    const merge::OutputFileJob file = staged.file_job(f);
    Json dtypes = Json::array();
    for (io::DType t : file.dtypes) dtypes.push_back(io::dtype_name(t));
    Json d = common;
    d["file"] = Json{{"path", file.path.string()}, {"tensors", file.tensors}, {"offsets", file.offsets}, {"dtypes", dtypes}};
    descriptions.push_back(std::move(d));
    names.push_back(staged.file_name(f));
  }
  const std::vector<Json> results = ctx.run_units("output file", names, descriptions);
  std::vector<std::uint64_t> io_bytes;
  for (const Json& r : results) io_bytes.push_back(r.at("io_bytes").get<std::uint64_t>());
  return staged.commit(io_bytes);
}

}  // namespace caulk::mergers
