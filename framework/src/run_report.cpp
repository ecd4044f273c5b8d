#include "caulk/run_report.hpp"

#include <csignal>

#include "caulk/cancel.hpp"
#include "caulk/error.hpp"

namespace caulk {

std::string_view to_string(NodeStatus status) {
  switch (status) {
    case NodeStatus::Pending:
      return "pending";
    case NodeStatus::Running:
      return "running";
    case NodeStatus::Ok:
      return "ok";
    case NodeStatus::Failed:
      return "failed";
    case NodeStatus::Skipped:
      return "skipped";
    case NodeStatus::Interrupted:
      return "interrupted";
  }
  return "unknown";
}

std::string_view to_string(RunStatus status) {
  switch (status) {
    case RunStatus::Running:
      return "running";
    case RunStatus::Ok:
      return "ok";
    case RunStatus::Failed:
      return "failed";
    case RunStatus::Interrupted:
      return "interrupted";
  }
  return "unknown";
}

RunStatus RunReport::status() const {
  if (!finished) return RunStatus::Running;
  if (interrupted_by) return RunStatus::Interrupted;
  return ok ? RunStatus::Ok : RunStatus::Failed;
}

Json RunReport::to_json() const {
  Json nodes_json = Json::object();
  for (const auto& n : nodes) {
    Json j = Json::object();
    j["type"] = n.type;
    j["status"] = to_string(n.status);
    if (n.cached) j["cached"] = true;
    j["seconds"] = n.seconds;
    if (!n.error.empty()) j["error"] = n.error;
    j["summary"] = n.summary;
    if (!n.tables.empty()) j["tables"] = n.tables;
    if (!n.figures.empty()) j["figures"] = n.figures;
    nodes_json[n.id] = std::move(j);
  }
  Json out = Json::object();
  out["pipeline"] = pipeline;
  out["status"] = to_string(status());
  if (interrupted_by) out["signal"] = signal_name(interrupted_by);
  out["nodes"] = std::move(nodes_json);
  if (!ranks.is_null()) out["ranks"] = ranks;
  if (!provenance.is_null()) out["provenance"] = provenance;
  for (const auto& [id, why] : observer_errors) out["observers"][id] = Json{{"status", "failed"}, {"error", why}};
  return out;
}

namespace {

template <class Enum, std::size_t N>
Enum parse_status(const std::string& text, const Enum (&all)[N], const char* what) {
  for (Enum e : all)
    if (to_string(e) == text) return e;
  throw Error(std::string("run.json: unknown ") + what + " status '" + text + "'");
}

}  // namespace

RunReport RunReport::from_json(const Json& record) {
  if (!record.is_object() || !record.contains("nodes") || !record["nodes"].is_object() || !record.contains("status"))
    throw Error("not a run record (run.json): it needs \"status\" and \"nodes\"");
  RunReport r;
  r.pipeline = record.value("pipeline", std::string());
  static constexpr RunStatus kRunStatuses[] = {RunStatus::Running, RunStatus::Ok, RunStatus::Failed, RunStatus::Interrupted};
  static constexpr NodeStatus kNodeStatuses[] = {NodeStatus::Pending, NodeStatus::Running, NodeStatus::Ok,
                                                 NodeStatus::Failed,  NodeStatus::Skipped, NodeStatus::Interrupted};
  const RunStatus status = parse_status(record["status"].get<std::string>(), kRunStatuses, "run");
  r.finished = status != RunStatus::Running;
  r.ok = status == RunStatus::Ok;
  if (status == RunStatus::Interrupted) {
    r.interrupted_by = SIGTERM;  // the record names the signal; one it does not name was a stop request all the same
    for (int signal : {SIGINT, SIGTERM, SIGHUP})
      if (record.value("signal", std::string()) == signal_name(signal)) r.interrupted_by = signal;
  }
  for (const auto& [id, n] : record["nodes"].items()) {
    NodeOutcome o;
    o.id = id;
    o.type = n.value("type", std::string());
    o.status = parse_status(n.value("status", std::string("pending")), kNodeStatuses, "node");
    o.seconds = n.value("seconds", 0.0);
    o.error = n.value("error", std::string());
    o.cached = n.value("cached", false);
    if (n.contains("summary")) o.summary = n["summary"];
    if (n.contains("tables")) o.tables = n["tables"];
    if (n.contains("figures")) o.figures = n["figures"];
    r.nodes.push_back(std::move(o));
  }
  if (record.contains("ranks")) r.ranks = record["ranks"];
  if (record.contains("provenance")) r.provenance = record["provenance"];
  if (record.contains("observers"))
    for (const auto& [type, o] : record["observers"].items())
      if (o.contains("error")) r.observer_errors.emplace_back(type, o["error"].get<std::string>());
  return r;
}

}  // namespace caulk
