// Defect 13 of issue 18: files that are not files. A FIFO given as labels or as the pipeline hung
// caulk; folders and devices were reported as "no such file"; errors echoed the first bytes of a
// file; a shard that is a symbolic link escaped its checkpoint's folder.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <chrono>
#include <functional>
#include <thread>

#include "caulk/io/csv.hpp"
#include "caulk/io/input_file.hpp"
#include "caulk/io/npy.hpp"
#include "caulk/io/safetensors.hpp"
#include "caulk/manifest.hpp"
#include "caulk/pipeline.hpp"
#include "cli.hpp"
#include "io_test_support.hpp"
#include "npy_bytes.hpp"

namespace fs = std::filesystem;
using caulk::test::data_error_message;
using caulk::test::le_f32;
using caulk::test::le_uint;
using caulk::test::write_bytes;
using namespace caulk::testing;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

std::string st_image(const std::string& header, const std::string& data) { return le_uint(header.size(), 8) + header + data; }

const std::string kTensorA = st_image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", le_f32(1));

// Runs `fn` and returns the message of the DataError it throws. A reader that blocks on the FIFO
// is released after 5 s (opening it for reading and writing never blocks and ends the wait), and
// the test fails: before the fix, each of these waited forever.
std::string error_without_blocking(const fs::path& fifo, const std::function<void()>& fn) {
  std::atomic<bool> done{false};
  std::string message;
  std::thread reader([&] {
    message = data_error_message(fn);
    done = true;
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!done && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  if (!done) {
    ADD_FAILURE() << "the reader blocked on the FIFO " << fifo;
    const int release = ::open(fifo.c_str(), O_RDWR | O_NONBLOCK);
    reader.join();
    if (release >= 0) ::close(release);
    return message;
  }
  reader.join();
  return message;
}

class NotAFile : public ::testing::Test {
 protected:
  void SetUp() override {
    fifo_ = dir_ / "fifo";
    ASSERT_EQ(::mkfifo(fifo_.c_str(), 0600), 0);
    fs::create_directory(dir_ / "folder");
  }
  TempDir dir_;
  fs::path fifo_;
};

TEST_F(NotAFile, EveryReaderRefusesAFifoWithoutWaitingForAWriter) {
  const std::vector<std::pair<std::string, std::function<void()>>> readers = {
      {"npy", [&] { caulk::io::NpyArray::open(fifo_); }},
      {"npy header", [&] { caulk::io::NpyArray::read_header(fifo_); }},
      {"safetensors", [&] { caulk::io::SafetensorsFile::open(fifo_); }},
      {"checkpoint", [&] { caulk::io::Checkpoint::open(fifo_); }},
      {"csv", [&] { caulk::io::read_csv(fifo_); }},
      {"manifest", [&] { caulk::read_manifest(fifo_, caulk::hub_manifest_schema()); }},
      {"text", [&] { caulk::io::read_text_file(fifo_); }},
  };
  for (const auto& [what, read] : readers)
    EXPECT_EQ(error_without_blocking(fifo_, read), fifo_.string() + ": not a regular file (a FIFO)") << what;
  try {
    caulk::parse_pipeline_file(fifo_);
    ADD_FAILURE() << "no error";
  } catch (const caulk::PipelineError& e) {
    EXPECT_EQ(std::string(e.what()), fifo_.string() + ": error: not a regular file (a FIFO)");
  }
}

TEST_F(NotAFile, FoldersDevicesAndSocketsAreNamedNotMissing) {
  const fs::path folder = dir_ / "folder";
  EXPECT_EQ(data_error_message([&] { caulk::io::NpyArray::open(folder); }), folder.string() + ": not a regular file (a folder)");
  EXPECT_EQ(data_error_message([&] { caulk::io::read_csv("/dev/null"); }), "/dev/null: not a regular file (a character device)");
  EXPECT_EQ(data_error_message([&] { caulk::io::read_text_file("/dev/zero"); }), "/dev/zero: not a regular file (a character device)");
  EXPECT_EQ(caulk::io::input_file_problem(folder), "not a regular file (a folder)");
  EXPECT_EQ(caulk::io::input_file_problem(dir_ / "missing"), "no such file");
  EXPECT_EQ(caulk::io::input_file_problem(dir_ / "folder" / "x" / "y"), "no such file");
  EXPECT_EQ(caulk::io::input_file_problem(dir_.write("plain.txt", "x")), std::nullopt);

  const fs::path socket_path = dir_ / "s";
  const int s = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, socket_path.c_str(), sizeof address.sun_path - 1);
  if (socket_path.string().size() < sizeof address.sun_path && ::bind(s, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
    EXPECT_EQ(data_error_message([&] { caulk::io::read_text_file(socket_path); }),
              socket_path.string() + ": not a regular file (a socket)");
  }
  ::close(s);
}

TEST_F(NotAFile, ATextFileLargerThanItsLimitIsRefused) {
  const fs::path big = dir_.write("big.toml", std::string(2000, '#'));
  EXPECT_THAT(data_error_message([&] { caulk::io::read_text_file(big, 1000); }), HasSubstr("is larger than 1000 bytes"));
  EXPECT_EQ(caulk::io::read_text_file(big, 2000).size(), 2000u);
}

// Through the command line, each under `timeout`: exit 124 would mean caulk hung.
TEST_F(NotAFile, CaulkNamesAFifoPipelineOrLabelsFileAndDoesNotHang) {
  CliResult r = run_captured("timeout 20 " + shell_quote(caulk_binary().string()) + " check " + shell_quote(fifo_.string()));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("fifo: error: not a regular file (a FIFO)"));

  dir_.write("p.toml",
             "[pipeline]\nname = \"fifo\"\n[[node]]\nid = \"task\"\ntype = \"dataset.load\"\n"
             "params = { labels = \"fifo\", kind = \"classification\" }\n");
  r = run_captured("timeout 20 " + shell_quote(caulk_binary().string()) + " run " + shell_quote((dir_ / "p.toml").string()) + " --out " +
                   shell_quote((dir_ / "out").string()));
  EXPECT_EQ(r.exit_code, 2) << r.err;  // the data check, before running
  EXPECT_THAT(r.err, HasSubstr("fifo: not a regular file (a FIFO)"));
  r = run_captured("timeout 20 " + shell_quote(caulk_binary().string()) + " run " + shell_quote((dir_ / "p.toml").string()) + " --out " +
                   shell_quote((dir_ / "out").string()) + " --no-data-check");
  EXPECT_EQ(r.exit_code, 1) << r.err;  // the node itself, as it reads
  EXPECT_THAT(r.err, HasSubstr("fifo: not a regular file (a FIFO)"));
}

TEST_F(NotAFile, AManifestNamingAFolderOrADeviceSaysSo) {
  dir_.write("labels.npy", npy_i64({0, 1, 0, 1}));
  dir_.write("p.toml",
             "[pipeline]\nname = \"dev\"\n[[node]]\nid = \"hub\"\ntype = \"adapter.precomputed\"\n"
             "params = { manifest = \"hub.toml\" }\n");
  for (const auto& [features, problem] : std::vector<std::pair<std::string, std::string>>{
           {"folder", "not a regular file (a folder)"}, {"/dev/zero", "not a regular file (a character device)"}}) {
    dir_.write("hub.toml", "[hub]\nname = \"h\"\n[[model]]\nname = \"m\"\nfeatures = \"" + features + "\"\n");
    CliResult r = run_caulk({"run", (dir_ / "p.toml").string(), "--out", (dir_ / "out").string()});
    EXPECT_EQ(r.exit_code, 2) << r.err;  // the data check, before running
    EXPECT_THAT(r.err, HasSubstr(problem));
    EXPECT_THAT(r.err, Not(HasSubstr("no such file")));
    r = run_caulk({"run", (dir_ / "p.toml").string(), "--out", (dir_ / "out").string(), "--no-data-check"});
    EXPECT_EQ(r.exit_code, 1) << r.err;  // the node itself, as it reads
    EXPECT_THAT(r.err, HasSubstr(problem));
    EXPECT_THAT(r.err, Not(HasSubstr("no such file")));
  }
}

// ----------------------------------------------------------------- messages that do not echo files

const std::string kSecret = "SECRET-4f9a";

TEST(NoEcho, AFileOfAnotherKindIsDescribedNotQuoted) {
  TempDir dir;
  const fs::path text = dir.write("secret.npy", kSecret + " a private key\n");
  std::string message = data_error_message([&] { caulk::io::NpyArray::open(text); });
  EXPECT_EQ(message, text.string() + ": not a .npy file: it does not start with the .npy magic (\\x93NUMPY)");
  message = data_error_message([&] { caulk::io::NpyArray::open(dir.write("a.npz", "PK\x03\x04" + kSecret)); });
  EXPECT_THAT(message, HasSubstr("it is a ZIP archive"));
  EXPECT_THAT(message, Not(HasSubstr(kSecret)));

  // A small header size in the first 8 bytes, then text: refused before the JSON parser quotes it.
  const fs::path st = dir / "secret.safetensors";
  write_bytes(st, le_uint(12, 8) + kSecret + "\n");
  EXPECT_EQ(data_error_message([&] { caulk::io::SafetensorsFile::open(st); }),
            st.string() + ": header is not a JSON object (it does not start with '{'): not a .safetensors file?");
  write_bytes(st, st_image("{" + kSecret + "}", ""));
  message = data_error_message([&] { caulk::io::SafetensorsFile::open(st); });
  EXPECT_THAT(message, HasSubstr("header is not valid JSON: parse error at line 1, column 2"));
  EXPECT_THAT(message, Not(HasSubstr(kSecret)));

  const fs::path index = dir / "model.safetensors.index.json";
  write_bytes(index, "{\"weight_map\": " + kSecret + "}");
  message = data_error_message([&] { caulk::io::Checkpoint::open(dir.path()); });
  EXPECT_THAT(message, HasSubstr("index is not valid JSON"));
  EXPECT_THAT(message, Not(HasSubstr(kSecret)));
}

TEST(NoEcho, QuotedValuesOfAKnownFormatAreShortAndEscaped) {
  TempDir dir;
  const std::string long_value = std::string(500, 'x') + "\x01\xFF";
  const fs::path csv = dir.write("t.csv", "label\n" + long_value + "\n");
  std::string message = data_error_message([&] {
    const auto table = caulk::io::read_csv(csv);
    table.number(0, 0);
  });
  EXPECT_THAT(message, HasSubstr("column 'label': '" + std::string(40, 'x') + "...' is not a number"));
  EXPECT_LT(message.size(), 200u);

  const fs::path npy = dir / "d.npy";
  std::string descr = "<";  // appended: GCC 12 warns falsely (-Wrestrict) on "literal" + std::string
  descr.append(300, 'q');
  write_bytes(npy, npy_image(descr, "(1,)", "", 0));
  message = data_error_message([&] { caulk::io::NpyArray::open(npy); });
  EXPECT_THAT(message, HasSubstr("unsupported dtype '<" + std::string(39, 'q') + "...'"));
  EXPECT_LT(message.size(), 300u);

  const fs::path st = dir / "v.safetensors";
  write_bytes(st, st_image(R"({"a":{"dtype":")" + std::string(300, 'F') + R"(","shape":[1],"data_offsets":[0,4]}})", le_f32(1)));
  message = data_error_message([&] { caulk::io::SafetensorsFile::open(st); });
  EXPECT_THAT(message, HasSubstr("tensor 'a' has unsupported dtype \"" + std::string(39, 'F') + "...")) << message;
}

// ---------------------------------------------------------------- shards and symbolic links

class ShardLinks : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_ / "model");
    fs::create_directories(dir_ / "private");
    write_bytes(dir_ / "private" / "weights.safetensors", kTensorA);
    write_bytes(dir_ / "model" / "model.safetensors.index.json", R"({"weight_map": {"a": "shard.safetensors"}})");
  }
  TempDir dir_;
};

TEST_F(ShardLinks, AShardLinkingOutOfItsFolderIsRefused) {
  fs::create_symlink("../private/weights.safetensors", dir_ / "model" / "shard.safetensors");
  const std::string message = data_error_message([&] { caulk::io::Checkpoint::open(dir_ / "model"); });
  EXPECT_THAT(message, HasSubstr("shard 'shard.safetensors' resolves (through a symbolic link) to " +
                                 fs::canonical(dir_ / "private" / "weights.safetensors").string() + ", outside the checkpoint's folder"));

  fs::remove(dir_ / "model" / "shard.safetensors");  // a linked folder on the way escapes too
  fs::create_directory_symlink("../private", dir_ / "model" / "sub");
  write_bytes(dir_ / "model" / "model.safetensors.index.json", R"({"weight_map": {"a": "sub/weights.safetensors"}})");
  EXPECT_THAT(data_error_message([&] { caulk::io::Checkpoint::open(dir_ / "model"); }), HasSubstr("outside the checkpoint's folder"));
}

TEST_F(ShardLinks, LinksInsideTheFolderAndTheHuggingFaceCacheLayoutAreRead) {
  write_bytes(dir_ / "model" / "real.safetensors", kTensorA);
  fs::create_symlink("real.safetensors", dir_ / "model" / "shard.safetensors");
  EXPECT_EQ(caulk::io::Checkpoint::open(dir_ / "model").to_float("a"), std::vector<float>{1});

  // snapshots/REV/ holds links to blobs/, the index among them.
  fs::create_directories(dir_ / "hub" / "blobs");
  fs::create_directories(dir_ / "hub" / "snapshots" / "rev");
  write_bytes(dir_ / "hub" / "blobs" / "1111", R"({"weight_map": {"a": "shard.safetensors"}})");
  write_bytes(dir_ / "hub" / "blobs" / "2222", kTensorA);
  fs::create_symlink("../../blobs/1111", dir_ / "hub" / "snapshots" / "rev" / "model.safetensors.index.json");
  fs::create_symlink("../../blobs/2222", dir_ / "hub" / "snapshots" / "rev" / "shard.safetensors");
  const auto checkpoint = caulk::io::Checkpoint::open(dir_ / "hub" / "snapshots" / "rev");
  EXPECT_EQ(checkpoint.to_float("a"), std::vector<float>{1});
  EXPECT_EQ(checkpoint.location("a").file, dir_ / "hub" / "snapshots" / "rev" / "shard.safetensors");
}

TEST_F(ShardLinks, AShardThatIsAFolderOrAFifoIsNamed) {
  fs::create_directory(dir_ / "model" / "shard.safetensors");
  EXPECT_THAT(
      data_error_message([&] { caulk::io::Checkpoint::open(dir_ / "model"); }),
      HasSubstr("shard 'shard.safetensors' (" + (dir_ / "model" / "shard.safetensors").string() + "): not a regular file (a folder)"));
  fs::remove(dir_ / "model" / "shard.safetensors");
  ASSERT_EQ(::mkfifo((dir_ / "model" / "shard.safetensors").c_str(), 0600), 0);
  EXPECT_THAT(error_without_blocking(dir_ / "model" / "shard.safetensors", [&] { caulk::io::Checkpoint::open(dir_ / "model"); }),
              HasSubstr("not a regular file (a FIFO)"));
}

}  // namespace
