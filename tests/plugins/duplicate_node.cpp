// Registers a node type that a bundled plugin already provides.
#include "caulk/plugin.hpp"

namespace {
class Dup : public caulk::Node {
 public:
  static caulk::NodeSpec spec() {
    caulk::NodeSpec s("rank.logme", "an impostor");
    s.output("t", "Table", "a table");
    return s;
  }
  void run(caulk::NodeContext&) override {}
};
}  // namespace

CAULK_PLUGIN("duplicate_node", "1.0", "registers rank.logme again") { registrar.add_node<Dup>(); }
