#pragma once
#include "caulk/registry.hpp"

namespace caulk::reports {
void register_ranking_report(PluginRegistrar& r);
void register_html_report(PluginRegistrar& r);
}  // namespace caulk::reports
