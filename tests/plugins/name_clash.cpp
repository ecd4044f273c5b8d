// A plugin that bears the name of another (test_nodes) but is another file: refused once the first
// one is loaded, even though its node type is new.
#include "caulk/plugin.hpp"

namespace {
class Other : public caulk::Node {
 public:
  static caulk::NodeSpec spec() {
    caulk::NodeSpec s("clash.other", "a type of the second plugin named test_nodes");
    s.output("t", "Table", "a table");
    return s;
  }
  void run(caulk::NodeContext&) override {}
};
}  // namespace

CAULK_PLUGIN("test_nodes", "2.0", "a second plugin named test_nodes") { registrar.add_node<Other>(); }
