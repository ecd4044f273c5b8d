#include "caulk/plugin.hpp"

#include "reports/src/nodes.hpp"

CAULK_PLUGIN("reports", CAULK_VERSION_STRING, "Reports a person reads: ranking tables and the HTML report of a run") {
  caulk::reports::register_ranking_report(registrar);
  caulk::reports::register_html_report(registrar);
}
