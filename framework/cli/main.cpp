// The caulk command line: run, rerun, check, graph, nodes and report. Exit codes are a promise:
// 0 ok, 1 a node failed while running, 2 usage or pipeline error, 3 a plugin failed to load,
// 130 / 143 a run stopped by SIGINT / SIGTERM (docs/reliability.md).
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <set>
#include <thread>

#include "caulk/cancel.hpp"
#include "caulk/context.hpp"
#include "caulk/describe.hpp"
#include "caulk/distributed.hpp"
#include "caulk/data_check.hpp"
#include "caulk/executor.hpp"
#include "caulk/failures.hpp"
#include "caulk/io/input_file.hpp"
#include "caulk/json_text.hpp"
#include "caulk/run_folder.hpp"
#include "caulk/run_observer.hpp"
#include "caulk/pipeline.hpp"
#include "caulk/registry.hpp"
#include "caulk/version.hpp"

namespace fs = std::filesystem;
using namespace caulk;

namespace {

struct Options {
  std::vector<std::string> plugin_paths;
  std::string file;
  std::string out;
  std::vector<std::string> sets;
  unsigned jobs = 0;
  bool no_cache = false;
  std::string memory_limit;  // empty: default_memory_limit()
  std::string node_type;
  bool markdown = false;
  std::string title;
  std::string observer;  // `caulk report --observer TYPE`
  // `caulk rerun`: the recorded pipeline's text (parsed as if read from `file`) and run folder.
  std::optional<std::string> pipeline_text;
  std::string rerun_dir;
  std::vector<std::string> command;  // argv, for the run's provenance
  bool no_data_check = false;        // `caulk run --no-data-check`: the nodes meet their files as they run
};

void say_error(const std::string& message) { std::cerr << "caulk: error: " << message << "\n"; }

// Loads the plugins of the search path. What failed is reported once it is known whether the
// command needs it: a failure that a pipeline does not depend on is a warning, not an exit code 3.
void load_plugins(Registry& registry, const Options& o) {
  std::vector<fs::path> cli(o.plugin_paths.begin(), o.plugin_paths.end());
  registry.load_plugins(Registry::search_path(cli));
}

// Each failed or refused plugin that the diagnostics do not already describe, as a warning.
void warn_about_plugin_failures(const Registry& registry, const std::vector<Diagnostic>& described = {}) {
  for (const auto* p : registry.failed_plugins()) {
    const std::string problem = p->problem();
    bool said = false;
    for (const auto& d : described) said = said || d.message.find(problem) != std::string::npos;
    if (!said) std::cerr << "caulk: warning: " << problem << "\n";
  }
}

// What the plugins a pipeline uses warn about (built without optimisation, ...).
void warn_about_used_plugins(const Registry& registry, const Pipeline& pipeline) {
  std::set<std::string> used;
  for (const auto& node : pipeline.nodes) used.insert(node.type->plugin);
  for (const auto& observer : pipeline.observers) used.insert(observer.type->plugin);
  for (const auto& p : registry.plugins())
    if (p.loaded() && used.count(p.name))
      for (const auto& w : p.warnings) std::cerr << fmt::format("caulk: warning: plugin '{}' ({}): {}\n", p.name, p.path.string(), w);
}

int report_pipeline_error(const PipelineError& e) {
  for (const auto& d : e.diagnostics()) std::cerr << d.str() << "\n";
  std::size_t n = e.diagnostics().size();
  std::cerr << fmt::format("caulk: {} problem{} found; nothing was run\n", n, n == 1 ? "" : "s");
  return kExitUsage;
}

// Parses the pipeline, loads the plugins it names, and validates it. On success fills `pipeline`
// and returns nothing; otherwise reports why and returns the exit code: 3 when the pipeline needs
// a plugin that could not be loaded (one it names, or one that may provide a node type it uses),
// else 2. Plugin failures the pipeline does not depend on are warnings.
// With `check_data`, the nodes' data checks (caulk/data_check.hpp) run too: a problem with the data
// files is exit 2, nothing run.
std::optional<int> load_pipeline(Registry& registry, const Options& o, Pipeline& pipeline, std::string* text_out = nullptr,
                                 bool check_data = false) {
  PipelineConfig config;
  try {
    // Read once: what is parsed is what the run folder keeps a copy of.
    std::string text;
    if (o.pipeline_text) {
      text = *o.pipeline_text;
    } else {
      try {
        text = io::read_text_file(o.file);
      } catch (const DataError& e) {
        Diagnostic d;
        d.where.file = o.file;
        d.message = e.problem() == "cannot open: no such file" ? std::string("no such pipeline file") : e.problem();
        throw PipelineError({d});
      }
    }
    config = parse_pipeline_text(text, o.file);
    if (text_out) *text_out = std::move(text);
    apply_overrides(config, o.sets);
  } catch (const PipelineError& e) {
    warn_about_plugin_failures(registry);
    return report_pipeline_error(e);
  }
  std::vector<Diagnostic> plugin_problems = load_pipeline_plugins(config, registry);
  if (!plugin_problems.empty()) {
    warn_about_plugin_failures(registry, plugin_problems);
    report_pipeline_error(PipelineError(std::move(plugin_problems)));
    return kExitPlugin;
  }
  try {
    pipeline = validate_pipeline(config, registry);
  } catch (const PipelineError& e) {
    warn_about_plugin_failures(registry, e.diagnostics());
    report_pipeline_error(e);
    for (const auto& n : config.nodes)
      if (!registry.find_node(n.type) && !registry.failed_plugins_that_may_provide(n.type).empty()) return kExitPlugin;
    return kExitUsage;
  }
  warn_about_plugin_failures(registry);
  warn_about_used_plugins(registry, pipeline);
  if (check_data) {
    try {
      run_data_checks(pipeline);
    } catch (const PipelineError& e) {
      return report_pipeline_error(e);
    }
  }
  return std::nullopt;
}

int cmd_run(const Options& o, int& argc, char**& argv) {
  // Under mpirun every rank loads the same plugins; rank 0 runs the pipeline and the others serve
  // its units (caulk/distributed.hpp). Declared first: the session ends (and stops the workers)
  // after everything else is released.
  std::unique_ptr<DistributedSession> mpi;
  if (started_by_mpirun()) mpi = open_distributed_session(argc, argv);
  const unsigned jobs = o.jobs ? o.jobs : std::max(1u, std::thread::hardware_concurrency());
  Registry registry;
  load_plugins(registry, o);
  if (mpi && mpi->rank() != 0) {
    // The pipeline's own plugins too, so their units run here; rank 0 reports any problem with them.
    // A unit whose function is still missing fails on this rank, named.
    try {
      load_pipeline_plugins(o.pipeline_text ? parse_pipeline_text(*o.pipeline_text, o.file) : parse_pipeline_file(o.file), registry);
    } catch (const std::exception&) {
    }
    return mpi->serve(registry, jobs);
  }
  // From here a SIGINT or SIGTERM stops the run cooperatively; a second one at once. Under
  // mpirun, mpirun owns those signals: it tears the whole job down (docs/scaling.md).
  std::optional<InterruptHandling> interrupts;
  if (!mpi) interrupts.emplace();
  Pipeline pipeline;
  std::string pipeline_text;
  if (auto exit_code = load_pipeline(registry, o, pipeline, &pipeline_text, /*check_data=*/!o.no_data_check)) return *exit_code;
  const RunInvocation invocation = describe_invocation(o.command, o.sets, o.plugin_paths, pipeline_text, pipeline, registry);
  RunOptions run;
  run.invocation = &invocation;
  run.out_dir = o.out.empty() ? fs::path("runs") / pipeline.config.name : fs::path(o.out);
  run.jobs = jobs;
  run.use_cache = !o.no_cache;
  run.memory_limit = o.memory_limit.empty() ? default_memory_limit() : parse_memory_size(o.memory_limit);
  run.progress_bars = ::isatty(STDERR_FILENO);
  if (mpi) run.units = &mpi->dispatcher();
  RunReport report = run_pipeline(pipeline, run);
  const std::string record = (run.out_dir / "run.json").string();
  // Each cause once, with what it hit (caulk/failures.hpp); run.json keeps each node's own error.
  std::vector<NodeFailure> failed;
  for (const auto& n : report.nodes)
    if (n.status == NodeStatus::Failed) failed.push_back({n.id, n.type, n.error});
  for (const auto& cause : group_failures(failed)) say_error(cause.str());
  for (const auto& [observer, why] : report.observer_errors) say_error(fmt::format("the run observer {}: {}", observer, why));
  // The nodes' outcome decides the exit code; a run.json that could not be written (a full disk)
  // is reported beside it and never hides it.
  if (!report.record_error.empty()) say_error(fmt::format("the run record {} could not be written: {}", record, report.record_error));
  const std::string where = report.record_error.empty() ? "; partial results in " + record : "";
  if (report.interrupted_by) {
    std::cerr << fmt::format("caulk: {} interrupted by {}{}\n", pipeline.config.name, signal_name(report.interrupted_by), where);
    return exit_code_for_signal(report.interrupted_by);
  }
  if (report.ok && report.record_error.empty()) {
    const auto reused = std::count_if(report.nodes.begin(), report.nodes.end(), [](const auto& n) { return n.cached; });
    const std::string reused_note = reused ? fmt::format("; {} of {} nodes reused from an earlier run", reused, report.nodes.size()) : "";
    std::cerr << fmt::format("caulk: {} ok; results in {} ({} and {} output{} of its nodes and observers){}\n", pipeline.config.name,
                             run.out_dir.string(), record, report.outputs_written, report.outputs_written == 1 ? "" : "s", reused_note);
    return kExitOk;
  }
  std::cerr << fmt::format("caulk: {} failed{}\n", pipeline.config.name, where);
  return kExitNodeFailed;
}

// `caulk rerun RUN_DIR`: the pipeline RUN_DIR keeps (pipeline.toml), read as if from the file it
// was copied from (so relative paths mean what they meant), with the recorded overrides, plugin
// folders and working folder; into RUN_DIR itself unless --out says otherwise.
int cmd_rerun(Options o, int& argc, char**& argv) {
  const fs::path dir = fs::absolute(o.rerun_dir).lexically_normal();
  Json record;
  try {
    record = Json::parse(io::read_text_file(dir / "run.json"));
  } catch (const std::exception& e) {
    say_error(
        fmt::format("{} holds no readable run record (run.json): {}; give the output folder of a `caulk run`", dir.string(), e.what()));
    return kExitUsage;
  }
  const Json provenance = record.value("provenance", Json::object());
  if (!provenance.contains("pipeline_file") || !provenance.contains("overrides")) {
    say_error(
        fmt::format("{}/run.json records no pipeline to run again (it was written by a caulk without provenance, or "
                    "not by `caulk run`)",
                    dir.string()));
    return kExitUsage;
  }
  try {
    o.pipeline_text = io::read_text_file(dir / provenance.value("pipeline_copy", std::string("pipeline.toml")));
    o.file = provenance.at("pipeline_file").get<std::string>();
    o.sets = provenance.at("overrides").get<std::vector<std::string>>();
    o.plugin_paths = provenance.value("plugin_paths", std::vector<std::string>());
    // The recorded folders come first, so the plugins found are those of the run.
    const std::string env = provenance.value("plugin_path_env", std::string());
    if (env.empty())
      ::unsetenv("CAULK_PLUGIN_PATH");
    else
      ::setenv("CAULK_PLUGIN_PATH", env.c_str(), 1);
  } catch (const std::exception& e) {
    say_error(fmt::format("{}: cannot read the recorded pipeline: {}", dir.string(), e.what()));
    return kExitUsage;
  }
  o.out = o.out.empty() ? dir.string() : fs::absolute(o.out).lexically_normal().string();
  // Relative paths of the recorded command line (overrides) meant the folder it ran in.
  const std::string cwd = provenance.value("working_dir", std::string());
  std::error_code ec;
  if (!cwd.empty() && fs::is_directory(cwd, ec)) fs::current_path(cwd, ec);
  std::cerr << fmt::format("caulk: running again {} as recorded in {} ({} override{})\n", o.file, dir.string(), o.sets.size(),
                           o.sets.size() == 1 ? "" : "s");
  // Plugins that changed since the run are said: the results may differ.
  Registry probe;
  load_plugins(probe, o);
  for (const auto& p : provenance.value("plugins", Json::array())) {
    if (!p.value("used", false)) continue;
    const std::string name = p.value("name", std::string());
    const PluginInfo* now = nullptr;
    for (const auto& q : probe.plugins())
      if (q.loaded() && q.name == name) now = &q;
    if (!now) {
      std::cerr << fmt::format("caulk: warning: plugin '{}' of the recorded run is not found now\n", name);
      continue;
    }
    FileHashCache hashes;
    const auto h = hashes.hash(now->path);
    if (now->version != p.value("version", std::string()) || !h || *h != p.value("xxh3_128", std::string()))
      std::cerr << fmt::format("caulk: warning: plugin '{}' differs from the recorded run's (version {} then, {} now; file {})\n", name,
                               p.value("version", std::string()), now->version, now->path.string());
  }
  return cmd_run(o, argc, argv);
}

int cmd_check(const Options& o) {
  Registry registry;
  load_plugins(registry, o);
  Pipeline p;
  if (auto exit_code = load_pipeline(registry, o, p, nullptr, /*check_data=*/true)) return *exit_code;
  const std::size_t observers = p.observers.size();
  std::cout << fmt::format("{}: ok ({} nodes{})\n", o.file, p.nodes.size(),
                           observers ? fmt::format(" and {} run observer{}", observers, observers == 1 ? "" : "s") : "");
  return kExitOk;
}

int cmd_graph(const Options& o) {
  Registry registry;
  load_plugins(registry, o);
  Pipeline p;
  if (auto exit_code = load_pipeline(registry, o, p)) return *exit_code;
  std::cout << pipeline_to_dot(p);
  return kExitOk;
}

// Lists (or describes) node types, and lists every plugin that failed or was refused, and why;
// exits 3 when one did (`caulk nodes TYPE`: only when TYPE is missing and such a plugin may have it).
int cmd_nodes(const Options& o) {
  Registry registry;
  load_plugins(registry, o);
  const auto failed = registry.failed_plugins();
  if (!o.node_type.empty()) {
    if (const NodeType* t = registry.find_node(o.node_type)) {
      warn_about_plugin_failures(registry);
      std::cout << describe_node_type(*t, registry);
      return kExitOk;
    }
    const auto may_provide = registry.failed_plugins_that_may_provide(o.node_type);
    warn_about_plugin_failures(registry);
    auto close = closest_names(o.node_type, registry.node_type_names());
    std::string searched;
    for (const auto& f : registry.searched()) searched += (searched.empty() ? "" : ", ") + f.string();
    say_error("unknown node type '" + o.node_type + "'" + (close.empty() ? "" : " (did you mean '" + close.front() + "'?)") +
              (may_provide.empty() ? "" : "; a plugin that failed to load may provide it (above)") +
              "; plugin folders searched: " + searched + "; add one with --plugin-path DIR or CAULK_PLUGIN_PATH");
    return may_provide.empty() ? kExitUsage : kExitPlugin;
  }
  std::cout << (o.markdown ? node_reference_markdown(registry) : list_node_types(registry));
  if (failed.empty()) return kExitOk;
  if (o.markdown) {
    warn_about_plugin_failures(registry);
  } else {
    std::cout << fmt::format("\n{} plugin{} could not be loaded:\n", failed.size(), failed.size() == 1 ? "" : "s");
    for (const auto* p : failed) std::cout << "  " << p->problem() << "\n";
  }
  say_error(
      fmt::format("{} plugin{} could not be loaded{}", failed.size(), failed.size() == 1 ? "" : "s", o.markdown ? "" : " (listed above)"));
  return kExitPlugin;
}

// `caulk report RUN_DIR`: the loaded run observers (caulk/run_observer.hpp; report.html among
// them) on a finished or failed run's folder, as if that run had just ended there: each gets the
// run read back from RUN_DIR/run.json and writes into RUN_DIR. `--observer TYPE` picks one;
// `--title` goes to those that take a title. The CLI knows no observer by name.
int cmd_report(const Options& o) {
  Registry registry;
  load_plugins(registry, o);
  warn_about_plugin_failures(registry);
  std::vector<const NodeType*> chosen;
  std::vector<std::string> all;
  for (const auto* t : registry.node_types())
    if (t->spec.observer) {
      all.push_back(t->spec.type);
      if (o.observer.empty() || t->spec.type == o.observer) chosen.push_back(t);
    }
  if (chosen.empty()) {
    if (o.observer.empty())
      say_error("no loaded plugin provides a run observer; `caulk nodes` lists what is loaded");
    else
      say_error(fmt::format("no loaded run observer '{}'{}", o.observer,
                            all.empty() ? std::string() : fmt::format(" (the loaded ones: {})", fmt::join(all, ", "))));
    return kExitPlugin;
  }
  const fs::path dir = o.file;
  RunReport report;
  Json record;
  try {
    record = Json::parse(io::read_text_file(dir / "run.json"));
    report = RunReport::from_json(record);
  } catch (const std::exception& e) {
    say_error(fmt::format("{} holds no readable run record: {}; give the output folder of a `caulk run` (its --out)",
                          (dir / "run.json").string(), e.what()));
    return kExitUsage;
  }
  // Not while a run writes into the folder (caulk/run_folder.hpp).
  const RunFolderLock lock(dir);
  // The chosen observers as a pipeline's [[observer]] entries, validated like one: their defaults
  // filled in and --title checked against each spec.
  PipelineConfig config;
  config.file = dir / "run.json";
  for (const auto* type : chosen) {
    const bool needs_a_pipeline = std::any_of(type->spec.params.begin(), type->spec.params.end(), [](const auto& p) { return p.required; });
    if (needs_a_pipeline) {
      std::cerr << fmt::format("caulk: skipped the observer {}: it has required parameters, which only a pipeline sets\n", type->spec.type);
      continue;
    }
    NodeConfig entry;
    entry.id = entry.type = type->spec.type;
    if (!o.title.empty() && type->spec.find_param("title"))
      entry.params.emplace_back("title", Value(o.title).located(SourceLocation{"--title", 0, 0}));
    config.observers.push_back(std::move(entry));
  }
  const Pipeline observers = validate_pipeline(std::move(config), registry);
  int code = kExitOk;
  for (const auto& declared : observers.observers) {
    const std::string& type = declared.type->spec.type;
    ObserverContext ctx(type, declared.params, dir);
    ctx.set_record(&record);
    try {
      const auto observer = declared.type->make_observer();
      if (!observer) throw Error("its plugin made no observer");
      observer->run_finished(report, ctx);
    } catch (const std::exception& e) {
      say_error(fmt::format("the observer {} failed on {}: {}", type, dir.string(), e.what()));
      code = kExitNodeFailed;
    }
  }
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  // OpenBLAS must run single-threaded: its eigensolver gives different bits with different
  // thread counts, and results must not depend on --jobs. Parallelism comes from the engine's
  // pool instead. Set before any plugin (and so OpenBLAS) is loaded.
  ::setenv("OPENBLAS_NUM_THREADS", "1", 1);

  Options o;
  CLI::App app{"caulk: rank, tune, merge and average the models of a hub, as TOML pipelines"};
  app.name("caulk");
  app.set_version_flag("--version", std::string("caulk ") + CAULK_VERSION_STRING);
  app.require_subcommand(1);
  app.fallthrough();
  app.add_option("--plugin-path", o.plugin_paths, "Also load plugins from this folder or file (repeatable)")
      ->allow_extra_args(false)
      ->type_name("DIR");

  auto* run = app.add_subcommand("run", "Validate and run a pipeline");
  run->add_option("file", o.file, "Pipeline file (TOML)")->required()->type_name("FILE");
  run->add_option("--out", o.out, "Output folder (default runs/<pipeline name>)")->type_name("DIR");
  run->add_option("--set", o.sets, "Override a parameter: ID.PARAM=VALUE (repeatable)")
      ->type_name("ID.PARAM=VALUE")
      ->allow_extra_args(false);
  run->add_option("--jobs,-j", o.jobs, "Threads (default: the number of cores)")->check(CLI::Range(1u, 4096u));
  run->add_flag("--no-cache", o.no_cache,
                "Run every node; by default a node whose type, plugin, parameters and input files are unchanged since a run "
                "into the same --out is not run again, its results read back from OUT/.caulk/cache");
  run->add_flag("--no-data-check", o.no_data_check,
                "Skip the check of the data files before running (docs/pipeline-format.md); each node still checks what it reads");
  run->add_option("--memory-limit", o.memory_limit,
                  "Memory one node may plan to use, e.g. 512M, 8G; a node whose estimate is larger stops with advice "
                  "(default: half of MemAvailable in /proc/meminfo; 0 = no limit)")
      ->type_name("SIZE")
      ->check([](const std::string& v) {
        try {
          parse_memory_size(v);
          return std::string();
        } catch (const Error& e) {
          return std::string(e.what());
        }
      });

  auto* rerun = app.add_subcommand("rerun", "Run again the pipeline a run folder recorded, with its overrides and plugins");
  rerun->add_option("run_dir", o.rerun_dir, "A run's output folder (with its run.json and pipeline.toml)")
      ->required()
      ->type_name("RUN_DIR");
  rerun->add_option("--out", o.out, "Output folder (default: RUN_DIR itself)")->type_name("DIR");
  rerun->add_option("--jobs,-j", o.jobs, "Threads (default: the number of cores)")->check(CLI::Range(1u, 4096u));
  rerun->add_option("--memory-limit", o.memory_limit, "As for run")->type_name("SIZE");
  rerun->add_flag("--no-cache", o.no_cache, "As for run: run every node");

  auto* check = app.add_subcommand("check", "Validate a pipeline without running it");
  check->add_option("file", o.file, "Pipeline file (TOML)")->required()->type_name("FILE");
  check->add_option("--set", o.sets, "Override a parameter: ID.PARAM=VALUE (repeatable)")
      ->type_name("ID.PARAM=VALUE")
      ->allow_extra_args(false);

  auto* graph = app.add_subcommand("graph", "Print a pipeline as Graphviz DOT, edges labelled with artifact types");
  graph->add_option("file", o.file, "Pipeline file (TOML)")->required()->type_name("FILE");
  graph->add_option("--set", o.sets, "Override a parameter: ID.PARAM=VALUE (repeatable)")
      ->type_name("ID.PARAM=VALUE")
      ->allow_extra_args(false);

  auto* nodes = app.add_subcommand("nodes", "List node types, or describe one (ports, parameters, defaults)");
  nodes->add_option("type", o.node_type, "A node type to describe")->type_name("TYPE");
  nodes->add_flag("--markdown", o.markdown, "Print the node reference as Markdown (docs/nodes.md)");

  auto* report = app.add_subcommand(
      "report", "Run the loaded run observers (report.html among them) on a finished (or failed) run's folder, writing into it");
  report->add_option("run_dir", o.file, "A run's output folder (with its run.json)")->required()->type_name("RUN_DIR");
  report->add_option("--title", o.title, "The title, for observers that take one (default: the pipeline's name)")->type_name("TEXT");
  report->add_option("--observer", o.observer, "Run only this observer type (default: every loaded one)")->type_name("TYPE");

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help, --version
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }

  o.command.assign(argv, argv + argc);
  try {
    if (*run) return cmd_run(o, argc, argv);
    if (*rerun) return cmd_rerun(o, argc, argv);
    if (*check) return cmd_check(o);
    if (*graph) return cmd_graph(o);
    if (*nodes) return cmd_nodes(o);
    if (*report) return cmd_report(o);
  } catch (const PluginError& e) {
    say_error(e.what());
    return kExitPlugin;
  } catch (const PipelineError& e) {
    return report_pipeline_error(e);
  } catch (const RunFolderBusy& e) {
    say_error(e.what());
    return kExitUsage;
  } catch (const std::bad_alloc&) {
    say_error("out of memory");
    return kExitNodeFailed;
  } catch (const std::exception& e) {
    say_error(e.what());
    return kExitUsage;
  }
  return kExitUsage;
}
