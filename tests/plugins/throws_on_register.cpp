// Registration fails half-way: nothing it registered may remain.
#include "caulk/plugin.hpp"

namespace {
class Nothing : public caulk::Node {
 public:
  static caulk::NodeSpec spec() {
    caulk::NodeSpec s("broken.first", "registered before the failure");
    s.output("t", "Table", "a table");
    return s;
  }
  void run(caulk::NodeContext&) override {}
};
}  // namespace

CAULK_PLUGIN("throws_on_register", "1.0", "fails while registering") {
  registrar.add_node<Nothing>();
  registrar.add_node(caulk::NodeSpec("broken.second", "bad port type").output("x", "NoSuchType", "x"),
                     [] { return std::unique_ptr<caulk::Node>(); });
}
