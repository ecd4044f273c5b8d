// What the run folder keeps beside run.json so a finished run can be reported on later
// (`caulk report`): the tables and figures nodes published and the pipeline's graph (internal to the engine).
#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "caulk/context.hpp"

namespace caulk {

struct Pipeline;

// Every Table among a node's published outputs, as {port: {title, columns, rows}}; cells are
// strings, numbers or null (empty, or not finite).
Json tables_to_json(const std::vector<std::pair<std::string, std::shared_ptr<const Artifact>>>& published);

// Every Figure among a node's published outputs, as {port: {title, caption, spec?, images?}}
// (images: paths relative to the run's output folder, with forward slashes).
Json figures_to_json(const std::vector<std::pair<std::string, std::shared_ptr<const Artifact>>>& published);

}  // namespace caulk
