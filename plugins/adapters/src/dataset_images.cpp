// dataset.images: an image-folder tree (one sub-folder per class, or list files) as a Dataset whose
// inputs are N x C x H x W float32 tensors (docs/datasets.md). The listing, decoding and cache are
// plain functions (adapters/algorithms/image_*.hpp); this node reads the parameters, checks that
// the splits agree on their classes, and publishes.
#include <fmt/format.h>

#include "adapters/algorithms/image_tensor.hpp"
#include "adapters/src/nodes.hpp"
#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"
#include "caulk/figures/summaries.hpp"

namespace fs = std::filesystem;

namespace caulk::adapters {

namespace {

std::string check_numbers(const Value& v) {
  if (!v.is_array() || v.as_array().empty()) return "must be an array of numbers, one per channel";
  for (const auto& x : v.as_array())
    if (!x.is_number()) return "must be an array of numbers, one per channel";
  return "";
}

std::vector<double> numbers(const Params& p, const std::string& name) {
  std::vector<double> out;
  if (p.has(name))
    for (const auto& x : p.get(name).as_array()) out.push_back(x.as_number());
  return out;
}

std::vector<std::pair<std::string, std::string>> check_params(const Params& p) {
  std::vector<std::pair<std::string, std::string>> problems;
  const auto channels = static_cast<std::size_t>(p.integer("channels"));
  for (const char* name : {"mean", "std"}) {
    const auto v = numbers(p, name);
    if (!v.empty() && v.size() != channels)
      problems.emplace_back(name, fmt::format("has {} values but channels is {}: give one per channel", v.size(), channels));
  }
  for (double s : numbers(p, "std"))
    if (!(s > 0)) problems.emplace_back("std", "values must be positive (the images are divided by them)");
  if (p.integer("crop") > 0 && p.integer("resize") > 0 && p.integer("crop") > p.integer("resize"))
    problems.emplace_back("crop", fmt::format("{} is larger than resize ({}): the shorter side would be smaller than the crop",
                                              p.integer("crop"), p.integer("resize")));
  return problems;
}

images::Preprocess preprocess_of(const Params& p) {
  images::Preprocess pre;
  pre.channels = static_cast<int>(p.integer("channels"));
  pre.resize = static_cast<int>(p.integer("resize"));
  pre.crop = static_cast<int>(p.integer("crop"));
  pre.interpolation = p.string("interpolation") == "area" ? images::Interpolation::Area : images::Interpolation::Bilinear;
  pre.mean = numbers(p, "mean");
  pre.std = numbers(p, "std");
  return pre;
}

class DatasetImages : public Node {
 public:
  static NodeSpec spec() {
    NodeSpec s("dataset.images",
               "Load an image-folder tree (one sub-folder per class, or list files) as a Dataset of N x C x H x W float32 inputs");
    s.output("data", "Dataset", "the task: class labels per split, and the preprocessed images as its inputs");
    s.output("summary", "Table", "per split: rows and classes present");
    s.param(ParamSpec::split_paths("splits",
                                   "image folder (one sub-folder per class) or list file (\"PATH LABEL\" lines), or "
                                   "{ split = folder or list file, ... }"));
    s.param(ParamSpec::integer("channels", 3, "3: RGB; 1: grayscale (ITU-R 601 luma, as PIL's convert(\"L\"))")
                .range(1, 3)
                .validate([](const Value& v) { return v.as_int() == 2 ? std::string("must be 1 or 3") : std::string(); }));
    s.param(ParamSpec::integer("resize", 0, "resize so the shorter side has this many pixels (torchvision's Resize(int)); 0 keeps the size")
                .range(0, 16384));
    s.param(ParamSpec::integer("crop", 0, "center crop to crop x crop pixels after resizing (torchvision's CenterCrop); 0 keeps the image")
                .range(0, 16384));
    s.param(ParamSpec::choice("interpolation", "bilinear", {"bilinear", "area"},
                              "resizing: bilinear (OpenCV INTER_LINEAR, no antialiasing) or area (INTER_AREA, averages when downscaling)"));
    s.param(ParamSpec::list("mean", "per-channel mean subtracted after scaling to [0, 1] (ImageNet: [0.485, 0.456, 0.406]); default 0")
                .validate(check_numbers));
    s.param(ParamSpec::list("std", "per-channel divisor after subtracting the mean (ImageNet: [0.229, 0.224, 0.225]); default 1")
                .validate(check_numbers));
    s.param(ParamSpec::flag("cache", true, "keep each split's decoded tensor as .npy in .caulk-images/ beside its images, and reuse it"));
    s.check = check_params;
    add_images_data_check(s);
    return s;
  }

  void run(NodeContext& ctx) override {
    const Params& p = ctx.params();
    const images::Preprocess pre = preprocess_of(p);
    std::map<std::string, images::SplitListing> listings;
    std::size_t total = 0;
    for (const auto& [split, source] : p.split_paths("splits")) {
      listings.emplace(split, images::list_split(source));
      total += listings.at(split).images.size();
    }
    auto data = std::make_shared<Dataset>();
    data->kind = TaskKind::Classification;
    std::vector<std::pair<std::string, std::string>> problems;
    data->class_names = images::shared_classes(listings, problems);
    // The data check reported these before the run; the files may have changed since.
    if (!problems.empty()) throw Error(problems.front().second);

    std::string printed;
    std::vector<std::string> notes, not_cached;
    Json shapes = Json::object();
    Progress progress = ctx.progress("images", total);
    for (const auto& [split, listing] : listings) {
      const fs::path fallback = ctx.out_dir() / ctx.id() / (split + ".inputs.npy");
      if (pre.crop > 0)  // every image's tensor, then the stacked copy (without a crop the size is known only once decoded)
        ctx.check_memory(2 * listing.images.size() * static_cast<std::size_t>(pre.channels) * static_cast<std::size_t>(pre.crop) *
                             static_cast<std::size_t>(pre.crop) * sizeof(float),
                         fmt::format("the decoded images of split '{}'", split), "Lower crop, or divide the images into smaller splits.");
      const images::SplitTensor t = images::load_split_tensor(listing, pre, p.flag("cache"), fallback, [&] { progress.advance(); });
      if (!t.cache_note.empty()) notes.push_back(t.cache_note);
      if (!t.not_cached.empty()) not_cached.push_back(fmt::format("split '{}': {}", split, t.not_cached));
      printed += fmt::format("split '{}': {} images of {} classes from {}: {}\n", split, listing.images.size(), data->class_names.size(),
                             listing.source.string(),
                             t.from_cache ? "read the cached tensor " + t.file.string() + " (no image decoded)"
                                          : fmt::format("decoded {} images into {}", t.decoded, t.file.string()));
      DatasetSplit s;
      s.name = split;
      s.rows = listing.images.size();
      s.labels_file = listing.source;
      for (const auto& e : listing.images) s.classes.push_back(e.label);
      s.inputs = ArrayFile{t.file, {}};
      shapes[split] = t.shape;
      data->splits.push_back(std::move(s));
    }
    for (const auto& note : notes) printed += "note: " + note + "\n";
    // Once for the node, whichever splits it concerns.
    if (!not_cached.empty())
      printed += fmt::format(
          "note: running without the tensor cache, which cannot be written beside the images ({}); the tensors "
          "are in {}\n",
          fmt::join(not_cached, "; "), (ctx.out_dir() / ctx.id()).string());
    ctx.print(printed);

    Json& sum = ctx.summary();
    sum["kind"] = std::string(task_kind_name(data->kind));
    sum["classes"] = data->class_names.size();
    sum["class_labels"] = data->class_names;
    Json rows = Json::object();
    for (const auto& s : data->splits) rows[s.name] = s.rows;
    sum["rows"] = rows;
    sum["input_shapes"] = shapes;
    ctx.publish("summary", std::make_shared<Table>(figures::dataset_summary_table(*data)));
    ctx.publish("data", std::move(data));
  }
};

}  // namespace

void register_dataset_images(PluginRegistrar& r) { r.add_node<DatasetImages>(); }

}  // namespace caulk::adapters
