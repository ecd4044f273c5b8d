// Optional outputs (NodeSpec::output_optional): a node may leave one unpublished; it feeds only
// optional inputs, which then come without it; a required input fed by one is a pipeline error.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "caulk/io/npy.hpp"
#include "cli.hpp"

using namespace caulk::testing;
using ::testing::HasSubstr;

namespace {

// labels, then test.maybe_extra with `extra` as given, then `consumer`'s lines.
std::string pipeline(const std::string& extra, const std::string& consumer) {
  return "[pipeline]\nname = \"optional\"\n[[node]]\nid = \"task\"\ntype = \"dataset.load\"\nparams = { labels = \"y.npy\" }\n"
         "[[node]]\nid = \"maybe\"\ntype = \"test.maybe_extra\"\ninputs = { in = \"task\" }\nparams = { extra = " +
         extra + " }\n" + consumer;
}

class OptionalOutputs : public ::testing::Test {
 protected:
  void SetUp() override { caulk::io::write_npy(dir_ / "y.npy", std::vector<std::int64_t>{0, 1, 0, 1}); }
  CliResult caulk(const std::string& command, const std::string& text, const std::string& out = "out") {
    const auto file = dir_.write("p.toml", text);
    std::vector<std::string> args{command, file.string(), "--plugin-path", test_plugin("test_nodes").parent_path().string()};
    if (command == "run") args.insert(args.end(), {"--out", (dir_ / out).string()});
    return run_caulk(args, "", dir_.path());
  }
  nlohmann::json summary(const std::string& out, const std::string& node) {
    return nlohmann::json::parse(read_file(dir_ / out / "run.json"))["nodes"][node];
  }
  TempDir dir_;
};

TEST_F(OptionalOutputs, AnUnpublishedOptionalOutputLeavesTheOptionalInputWithout) {
  const std::string consumer = "[[node]]\nid = \"use\"\ntype = \"test.optional_in\"\ninputs = { in = \"maybe.extra\" }\n";
  auto r = caulk("run", pipeline("false", consumer), "without");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(summary("without", "maybe")["status"], "ok");
  EXPECT_EQ(summary("without", "use")["summary"]["got_input"], false);
  r = caulk("run", pipeline("true", consumer), "with");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(summary("with", "use")["summary"]["got_input"], true);
}

TEST_F(OptionalOutputs, ARequiredInputFedByAnOptionalOutputIsAPipelineError) {
  const std::string consumer = "[[node]]\nid = \"use\"\ntype = \"test.pass\"\ninputs = { in = \"maybe.extra\" }\n";
  for (const char* command : {"check", "run"}) {
    const auto r = caulk(command, pipeline("true", consumer));
    EXPECT_EQ(r.exit_code, 2) << command << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr("p.toml:15:"));
    EXPECT_THAT(r.err, HasSubstr("input 'in' of node 'use' is required but 'maybe.extra' is an optional output, published only sometimes "
                                 "(the same dataset again, published only when the parameter extra is true)"));
  }
}

TEST_F(OptionalOutputs, NodesSaysWhichOutputsAreOptional) {
  const auto r = run_caulk({"nodes", "--plugin-path", test_plugin("test_nodes").parent_path().string(), "test.maybe_extra"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("extra"));
  EXPECT_THAT(r.out, HasSubstr("(optional)"));
}

}  // namespace
