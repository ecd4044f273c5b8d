#include "run_record.hpp"

#include <cmath>

#include "caulk/artifacts.hpp"
#include "caulk/graph.hpp"
#include "caulk/io/atomic_file.hpp"
#include "caulk/pipeline.hpp"

namespace caulk {

namespace {
Json cell_to_json(const TableCell& cell) {
  if (const auto* s = std::get_if<std::string>(&cell)) return *s;
  if (const auto* d = std::get_if<double>(&cell)) return std::isfinite(*d) ? Json(*d) : Json(nullptr);
  if (const auto* i = std::get_if<long long>(&cell)) return *i;
  return nullptr;
}
}  // namespace

Json tables_to_json(const std::vector<std::pair<std::string, std::shared_ptr<const Artifact>>>& published) {
  Json out = Json::object();
  for (const auto& [port, artifact] : published) {
    const auto* table = dynamic_cast<const Table*>(artifact.get());
    if (!table) continue;
    Json rows = Json::array();
    for (const auto& row : table->rows) {
      Json r = Json::array();
      for (const auto& cell : row) r.push_back(cell_to_json(cell));
      rows.push_back(std::move(r));
    }
    out[port] = Json{{"title", table->title}, {"columns", table->columns}, {"rows", std::move(rows)}};
  }
  return out;
}

Json figures_to_json(const std::vector<std::pair<std::string, std::shared_ptr<const Artifact>>>& published) {
  Json out = Json::object();
  for (const auto& [port, artifact] : published) {
    const auto* figure = dynamic_cast<const Figure*>(artifact.get());
    if (!figure) continue;
    Json f{{"title", figure->title}, {"caption", figure->caption}};
    if (!figure->spec.is_null()) f["spec"] = figure->spec;
    if (!figure->images.empty()) {
      Json images = Json::array();
      for (const auto& image : figure->images) images.push_back(image.generic_string());
      f["images"] = std::move(images);
    }
    out[port] = std::move(f);
  }
  return out;
}

}  // namespace caulk
