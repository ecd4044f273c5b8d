// Registers a node type of its own, then one that a bundled plugin already provides: the engine
// must refuse this plugin whole (its own type too) and keep the bundled one.
#include "caulk/plugin.hpp"

namespace {
class OnlyHere : public caulk::Node {
 public:
  static caulk::NodeSpec spec() {
    caulk::NodeSpec s("duplicate.only_here", "a type no other plugin has");
    s.output("t", "Table", "a table");
    return s;
  }
  void run(caulk::NodeContext&) override {}
};

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

CAULK_PLUGIN("duplicate_node", "1.0", "registers rank.logme again") {
  registrar.add_node<OnlyHere>();
  registrar.add_node<Dup>();
}
