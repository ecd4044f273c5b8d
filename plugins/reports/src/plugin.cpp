#include "caulk/plugin.hpp"

#include "nodes.hpp"

CAULK_PLUGIN("reports", CAULK_VERSION_STRING, "Reports a person reads: ranking tables") {
  caulk::reports::register_ranking_report(registrar);
}
