#pragma once
#include "caulk/registry.hpp"

namespace caulk::models {
}  // namespace caulk::models
