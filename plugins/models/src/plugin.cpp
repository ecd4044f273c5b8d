#include "caulk/plugin.hpp"

#include "nodes.hpp"

CAULK_PLUGIN("models", CAULK_VERSION_STRING,
             "Models: run, tune (parameter-efficient modes), analyse and pre-train native MLP checkpoints") {
}
