// Pipeline text shared by the model tests: two rankers (LogME, LEEP) over the features of a node
// "embed" and the labels of a node "task", appended to a pipeline that has both.
#pragma once

namespace caulk::testing {

inline constexpr const char* kLogmeAndLeepOfEmbed = R"([[node]]
id = "logme"
type = "rank.logme"
inputs = { features = "embed.features", data = "task" }
[[node]]
id = "leep"
type = "rank.leep"
inputs = { features = "embed.features", data = "task" }
)";

}  // namespace caulk::testing
