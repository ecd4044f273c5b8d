// One source, built twice with flags that differ from caulk's (tests/plugins/CMakeLists.txt):
// unoptimized (-O0: it loads, with a warning when a pipeline uses its node) and misaligned (another
// Eigen alignment: refused, since matrices cross the plugin boundary).
#include "caulk/artifacts.hpp"
#include "caulk/context.hpp"
#include "caulk/plugin.hpp"

namespace {
class Pass : public caulk::Node {
 public:
  static caulk::NodeSpec spec() {
    caulk::NodeSpec s(CAULK_TEST_PLUGIN_NAME ".pass", "Pass a dataset through");
    s.input("in", "Dataset", "a dataset");
    s.output("out", "Dataset", "the same dataset");
    return s;
  }
  void run(caulk::NodeContext& ctx) override { ctx.publish("out", std::make_shared<caulk::Dataset>(*ctx.input<caulk::Dataset>("in"))); }
};
}  // namespace

CAULK_PLUGIN(CAULK_TEST_PLUGIN_NAME, "1.0", "built with flags unlike caulk's") { registrar.add_node<Pass>(); }
