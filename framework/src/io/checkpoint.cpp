// Checkpoints: one .safetensors file, or shards named by model.safetensors.index.json.
#include <algorithm>
#include <new>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <system_error>

#include "caulk/error.hpp"
#include "caulk/io/input_file.hpp"
#include "caulk/json_text.hpp"
#include "caulk/io/safetensors.hpp"
#include "messages.hpp"

namespace caulk::io {

namespace {

using nlohmann::json;

constexpr const char* kIndexName = "model.safetensors.index.json";
constexpr const char* kSingleName = "model.safetensors";

bool is_file(const std::filesystem::path& p) {
  std::error_code ec;
  return std::filesystem::is_regular_file(p, ec);
}

// Parses the index, refusing a tensor named twice in "weight_map" (a plain parse keeps the last).
json parse_index(const std::filesystem::path& index) {
  const std::string file = index.string();
  const std::string text = read_text_file(index);
  if (text.empty()) throw DataError(file, "empty file");
  std::string top_key;
  std::set<std::string> tensors;
  auto guard = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth > 8) throw DataError(file, "index JSON nests more than 8 levels deep");
    if (event != json::parse_event_t::key) return true;
    if (depth == 1) top_key = parsed.get<std::string>();
    if (depth == 2 && top_key == "weight_map" && !tensors.insert(parsed.get<std::string>()).second)
      throw DataError(file, "the index lists tensor '" + parsed.get<std::string>() + "' twice");
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), guard);
  } catch (const json::exception& e) {
    throw DataError(file, "index is not valid JSON: " + detail::json_error_text(e));
  }
}

// A shard named by the index must be a file inside the checkpoint's folder, as written ...
bool stays_inside(const std::filesystem::path& relative) {
  if (relative.empty() || relative.is_absolute() || relative.has_root_name()) return false;
  return std::none_of(relative.begin(), relative.end(), [](const auto& part) { return part == ".."; });
}

bool is_within(const std::filesystem::path& canonical_file, const std::filesystem::path& canonical_folder) {
  const auto relative = canonical_file.lexically_relative(canonical_folder);
  return !relative.empty() && *relative.begin() != ".." && !relative.is_absolute();
}

// ... and once symbolic links are resolved: inside the index's folder, or inside the folder the
// index itself resolves to. The second is the Hugging Face cache's layout, where the index and
// every shard are links from snapshots/REVISION/ to files in one blobs/ folder. A link to anywhere
// else (a home folder, another model) is refused: the checkpoint's author does not choose what
// else on this machine caulk reads.
std::filesystem::path checked_shard_path(const std::filesystem::path& index, const std::string& shard) {
  const std::string file = index.string();
  const std::string shown = detail::excerpt(shard);
  if (!stays_inside(shard)) throw DataError(file, "shard '" + shown + "' is not a file in the checkpoint's folder");
  const auto path = index.parent_path() / shard;
  if (auto problem = input_file_problem(path)) {
    if (*problem == "no such file") throw DataError(file, "shard '" + shown + "' is missing (" + path.string() + ")");
    throw DataError(file, "shard '" + shown + "' (" + path.string() + "): " + *problem);
  }
  std::error_code ec, folder_ec, index_ec;
  const auto target = std::filesystem::canonical(path, ec);
  if (ec) throw DataError(file, "shard '" + shown + "': cannot resolve " + path.string() + ": " + ec.message());
  const auto folder = std::filesystem::canonical(index.parent_path().empty() ? "." : index.parent_path(), folder_ec);
  const auto index_folder = std::filesystem::canonical(index, index_ec).parent_path();
  const bool inside = (!folder_ec && is_within(target, folder)) || (!index_ec && is_within(target, index_folder));
  if (!inside)
    throw DataError(file,
                    "shard '" + shown + "' resolves (through a symbolic link) to " + target.string() + ", outside the checkpoint's folder");
  return path;
}

}  // namespace

Checkpoint Checkpoint::open(const std::filesystem::path& path) {
  try {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
      if (is_file(path / kIndexName)) return open_index(path, path / kIndexName);
      if (is_file(path / kSingleName)) return open_single(path, path / kSingleName);
      throw DataError(path.string(), std::string("the folder holds neither ") + kIndexName + " nor " + kSingleName);
    }
    const std::string name = path.filename().string();
    if (name.size() > 11 && name.ends_with(".index.json")) return open_index(path, path);
    return open_single(path, path);
  } catch (const std::bad_alloc&) {
    throw DataError(path.string(), "not enough memory to open the checkpoint");
  }
}

Checkpoint Checkpoint::open_single(const std::filesystem::path& path, const std::filesystem::path& file) {
  Checkpoint c;
  c.path_ = path;
  c.shards_.push_back(std::make_shared<SafetensorsFile>(SafetensorsFile::open(file)));
  for (const TensorInfo& t : c.shards_[0]->tensors()) {
    c.names_.push_back(t.name);
    c.shard_index_[t.name] = 0;
  }
  std::sort(c.names_.begin(), c.names_.end());
  c.metadata_ = c.shards_[0]->metadata();
  return c;
}

Checkpoint Checkpoint::open_index(const std::filesystem::path& path, const std::filesystem::path& index) {
  const std::string file = index.string();
  const json root = parse_index(index);
  if (!root.is_object()) throw DataError(file, "index is not a JSON object");
  auto weight_map = root.find("weight_map");
  if (weight_map == root.end()) throw DataError(file, "index has no 'weight_map'");
  if (!weight_map->is_object()) throw DataError(file, "'weight_map' is not an object of tensor names to shard files");

  Checkpoint c;
  c.path_ = path;
  c.sharded_ = true;
  if (auto metadata = root.find("metadata"); metadata != root.end()) {
    if (!metadata->is_object()) throw DataError(file, "'metadata' is not an object");
    // Hugging Face writes numbers here ("total_size"); keep their JSON text.
    for (const auto& [key, value] : metadata->items()) c.metadata_[key] = value.is_string() ? value.get<std::string>() : json_text(value);
  }

  // Map every shard the index names, in the order of their names, and check that each exists.
  std::map<std::string, std::size_t> shard_numbers;
  for (const auto& [tensor, shard] : weight_map->items()) {
    if (!shard.is_string()) throw DataError(file, "tensor '" + tensor + "': the shard is not a file name: " + detail::json_excerpt(shard));
    shard_numbers.emplace(shard.get<std::string>(), 0);
  }
  std::vector<std::string> shard_names;
  for (auto& [shard, number] : shard_numbers) {
    const auto shard_path = checked_shard_path(index, shard);
    number = c.shards_.size();
    shard_names.push_back(shard);
    c.shards_.push_back(std::make_shared<SafetensorsFile>(SafetensorsFile::open(shard_path)));
  }

  // The index and the shards must agree exactly: each listed tensor in its shard, and no shard
  // holding a tensor the index puts elsewhere or nowhere (a merge would silently drop it).
  for (const auto& [tensor, shard] : weight_map->items()) {
    const std::size_t number = shard_numbers.at(shard.get<std::string>());
    if (!c.shards_[number]->find(tensor))
      throw DataError(file, "tensor '" + tensor + "' is listed in shard '" + shard_names[number] + "', which does not hold it");
    c.names_.push_back(tensor);
    c.shard_index_[tensor] = number;
  }
  for (std::size_t number = 0; number < c.shards_.size(); ++number) {
    for (const TensorInfo& t : c.shards_[number]->tensors()) {
      auto listed = c.shard_index_.find(t.name);
      if (listed == c.shard_index_.end())
        throw DataError(file, "shard '" + shard_names[number] + "' holds tensor '" + t.name + "', which the index does not list");
      if (listed->second != number)
        throw DataError(file, "tensor '" + t.name + "' is in two shards: '" + shard_names[listed->second] + "' (as the index says) and '" +
                                  shard_names[number] + "'");
    }
  }
  std::sort(c.names_.begin(), c.names_.end());
  return c;
}

const SafetensorsFile& Checkpoint::shard_of(const std::string& name) const {
  auto it = shard_index_.find(name);
  if (it == shard_index_.end()) throw DataError(path_.string(), "no tensor named '" + name + "'");
  return *shards_[it->second];
}

const TensorInfo& Checkpoint::info(const std::string& name) const { return shard_of(name).at(name); }

void Checkpoint::check_intact() const {
  for (const auto& shard : shards_) shard->check_intact();
}

TensorLocation Checkpoint::location(const std::string& name) const {
  const SafetensorsFile& shard = shard_of(name);
  return {shard.path(), shard.data_offset() + shard.at(name).begin};
}

std::span<const std::byte> Checkpoint::bytes(const std::string& name) const {
  const SafetensorsFile& shard = shard_of(name);
  return shard.bytes(shard.at(name));
}

std::vector<float> Checkpoint::to_float(const std::string& name) const { return shard_of(name).to_float(name); }

std::vector<double> Checkpoint::to_double(const std::string& name) const { return shard_of(name).to_double(name); }

}  // namespace caulk::io
