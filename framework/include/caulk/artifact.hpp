// Artifacts: the typed values that flow along the edges of a pipeline.
//
// Every artifact type has a name ("Dataset", "Embeddings", ...) that ports declare and that the
// engine checks when it validates a pipeline. The framework defines the common ones
// (artifacts.hpp); a plugin may register a new type by name and define its class.
#pragma once
#include <string>
#include <string_view>

namespace caulk {

class Artifact {
 public:
  virtual ~Artifact();
  // The registered type name; must equal the name its producing port declares.
  virtual std::string_view type_name() const = 0;

  // Set by the engine when the artifact is published: which node and port produced it.
  std::string producer_node;
  std::string producer_port;
};

// A named artifact type as `caulk nodes` shows it.
struct ArtifactType {
  std::string name;
  std::string doc;
  std::string plugin;  // "" for the framework's own
};

// A port declared with this type accepts every artifact type.
inline constexpr std::string_view kAnyArtifact = "Any";

}  // namespace caulk
