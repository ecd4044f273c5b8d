// dataset.images through `caulk run` and `caulk check` (docs/datasets.md): the tensor it publishes
// against the pixels the test wrote, the same bytes with --jobs 1 and 2, the tensor cache (read on
// a second run, rewritten when an image changes or the cached file is damaged, skipped when its
// folder cannot be made), a consumer downstream (adapter.models on an MLP hub), and every bad input
// named by file (and FILE:LINE:COL of the parameter for what the data check finds).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "caulk/io/npy.hpp"
#include "cli.hpp"
#include "npy_bytes.hpp"

using namespace caulk::testing;
using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

namespace {

// Pixel (y, x) channel c of image `k`: distinct, known values.
int pixel(int k, int y, int x, int c) { return (k * 29 + y * 37 + x * 11 + c * 50 + 3) % 256; }

void write_png(const fs::path& file, int k, int height = 4, int width = 6) {
  cv::Mat bgr(height, width, CV_8UC3);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < 3; ++c) bgr.at<cv::Vec3b>(y, x)[2 - c] = static_cast<unsigned char>(pixel(k, y, x, c));
  fs::create_directories(file.parent_path());
  ASSERT_TRUE(cv::imwrite(file.string(), bgr));
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + what.size())) ++n;
  return n;
}

class DatasetImages : public ::testing::Test {
 protected:
  // train: classes cat (images 0, 1) and dog (2); test: cat (3) and dog (4). All 4 x 6 PNGs.
  void SetUp() override {
    write_png(dir_ / "pics/train/cat/a.png", 0);
    write_png(dir_ / "pics/train/cat/b.png", 1);
    write_png(dir_ / "pics/train/dog/c.png", 2);
    write_png(dir_ / "pics/test/cat/d.png", 3);
    write_png(dir_ / "pics/test/dog/e.png", 4);
  }

  std::string pipeline(const std::string& params = R"(splits = { train = "pics/train", test = "pics/test" })",
                       const std::string& extra = "") const {
    return "[pipeline]\nname = \"images\"\n[[node]]\nid = \"images\"\ntype = \"dataset.images\"\nparams = { " + params + " }\n" + extra;
  }

  CliResult run(const std::string& text, const std::string& out = "out", const std::vector<std::string>& extra = {}) {
    dir_.write("p.toml", text);
    std::vector<std::string> args{"run", (dir_ / "p.toml").string(), "--out", (dir_ / out).string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_caulk(args);
  }

  std::string at(const std::string& needle) const {
    const std::string text = read_file(dir_ / "p.toml");
    const std::size_t pos = text.find(needle);
    EXPECT_NE(pos, std::string::npos) << needle;
    int line = 1, col = 1;
    for (std::size_t i = 0; i < pos; ++i) {
      if (text[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return (dir_ / "p.toml").string() + ":" + std::to_string(line) + ":" + std::to_string(col);
  }

  std::vector<fs::path> cached(const std::string& split) const {
    std::vector<fs::path> out;
    const fs::path dir = dir_ / "pics" / split / ".caulk-images";
    if (!fs::exists(dir)) return out;
    for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path());
    return out;
  }

  TempDir dir_;
};

TEST_F(DatasetImages, TensorHoldsThePixelsScaledAndNormalisedInSortedOrder) {
  auto r = run(pipeline(R"(splits = { train = "pics/train", test = "pics/test" }, mean = [0.5, 0.25, 0.0], std = [0.5, 2.0, 1.0])"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto run_json = nlohmann::json::parse(read_file(dir_ / "out/run.json"));
  const auto& sum = run_json["nodes"]["images"]["summary"];
  EXPECT_EQ(sum["class_labels"], nlohmann::json::parse(R"(["cat", "dog"])"));
  EXPECT_EQ(sum["rows"]["train"], 3);
  EXPECT_EQ(sum["input_shapes"]["train"], nlohmann::json::parse("[3, 3, 4, 6]"));
  ASSERT_EQ(cached("train").size(), 1u);
  const auto a = caulk::io::NpyArray::open(cached("train").front());
  ASSERT_EQ(a.shape(), (std::vector<std::size_t>{3, 3, 4, 6}));
  ASSERT_EQ(a.dtype(), caulk::io::DType::F32);
  const float* v = static_cast<const float*>(a.data());
  const double mean[] = {0.5, 0.25, 0.0}, std[] = {0.5, 2.0, 1.0};
  for (int n = 0; n < 3; ++n)  // rows in sorted order: cat/a (0), cat/b (1), dog/c (2)
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < 4; ++y)
        for (int x = 0; x < 6; ++x) EXPECT_NEAR(v[((n * 3 + c) * 4 + y) * 6 + x], (pixel(n, y, x, c) / 255.0 - mean[c]) / std[c], 1e-6);
}

TEST_F(DatasetImages, SameBytesWithOneOrTwoJobs) {
  const std::string p = pipeline(R"(splits = { train = "pics/train", test = "pics/test" }, resize = 3, crop = 3, cache = false)");
  auto one = run(p, "one", {"--jobs", "1"});
  auto two = run(p, "two", {"--jobs", "2"});
  ASSERT_EQ(one.exit_code, 0) << one.err;
  ASSERT_EQ(two.exit_code, 0) << two.err;
  for (const char* split : {"train", "test"}) {
    const std::string f = std::string("images/") + split + ".inputs.npy";
    ASSERT_TRUE(fs::exists(dir_ / "one" / f)) << one.out;
    EXPECT_EQ(read_file(dir_ / "one" / f), read_file(dir_ / "two" / f)) << split;
  }
  EXPECT_TRUE(cached("train").empty());  // cache = false writes nothing beside the images
}

TEST_F(DatasetImages, SecondRunReadsTheCacheAndAChangedImageIsDecodedAgain) {
  const std::string p = pipeline();
  auto first = run(p, "first");
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_THAT(first.out, HasSubstr("split 'train': 3 images of 2 classes"));
  EXPECT_THAT(first.out, HasSubstr("decoded 3 images"));
  const auto files = cached("train");
  ASSERT_EQ(files.size(), 1u);
  const std::string bytes = read_file(files.front());

  auto second = run(p, "second");
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_EQ(count(second.out, "(no image decoded)"), 2u) << second.out;
  EXPECT_THAT(second.out, Not(HasSubstr("decoded 3")));

  // A changed image (other pixels, other size on disk): decoded again, the stale tensor replaced.
  write_png(dir_ / "pics/train/dog/c.png", 7, 4, 6);
  auto third = run(p, "third");
  ASSERT_EQ(third.exit_code, 0) << third.err;
  EXPECT_THAT(third.out, HasSubstr("decoded 3 images"));
  const auto now = cached("train");
  ASSERT_EQ(now.size(), 1u);
  EXPECT_NE(now.front(), files.front());
  const auto a = caulk::io::NpyArray::open(now.front());
  EXPECT_NEAR(static_cast<const float*>(a.data())[2 * 3 * 4 * 6], pixel(7, 0, 0, 0) / 255.0, 1e-6);
}

TEST_F(DatasetImages, DamagedCacheIsIgnoredAndRewritten) {
  ASSERT_EQ(run(pipeline(), "first").exit_code, 0);
  const fs::path file = cached("train").front();
  std::string bytes = read_file(file);
  const std::string good = bytes;
  for (std::size_t i = bytes.size() - 16; i < bytes.size(); ++i) bytes[i] = '\x7f';  // floats far outside [0, 1]
  dir_.write(file.lexically_relative(dir_.path()).string(), bytes);
  auto r = run(pipeline(), "second");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("was not used (it holds values no image gives"));
  EXPECT_THAT(r.out, HasSubstr("decoded 3 images"));
  EXPECT_EQ(read_file(file), good);
  // A truncated one too.
  dir_.write(file.lexically_relative(dir_.path()).string(), good.substr(0, good.size() / 2));
  r = run(pipeline(), "third");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("decoded 3 images"));
  EXPECT_EQ(read_file(file), good);
}

TEST_F(DatasetImages, UnwritableCacheFolderRunsWithoutCachingAndSaysSo) {
  dir_.write("pics/train/.caulk-images", "a file where the cache folder would go");
  dir_.write("pics/test/.caulk-images", "here too");
  auto r = run(pipeline());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(count(r.out, "running without the tensor cache"), 1u) << r.out;
  EXPECT_THAT(r.out, HasSubstr("split 'train': cannot create " + (dir_ / "pics/train/.caulk-images").string()));
  EXPECT_THAT(r.out, HasSubstr("split 'test': cannot create " + (dir_ / "pics/test/.caulk-images").string()));
  EXPECT_TRUE(fs::exists(dir_ / "out/images/train.inputs.npy"));
  EXPECT_TRUE(fs::exists(dir_ / "out/images/test.inputs.npy"));
}

TEST_F(DatasetImages, ListFilesGiveSplitsWithTheFoldersClasses) {
  dir_.write("pics/val.txt", "# path label\ntest/dog/e.png 1\ntest/cat/d.png 0\n");
  auto r = run(pipeline(R"(splits = { train = "pics/train", val = "pics/val.txt" }, channels = 1)"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto run_json = nlohmann::json::parse(read_file(dir_ / "out/run.json"));
  EXPECT_EQ(run_json["nodes"]["images"]["summary"]["rows"]["val"], 2);
  EXPECT_EQ(run_json["nodes"]["images"]["summary"]["input_shapes"]["val"], nlohmann::json::parse("[2, 1, 4, 6]"));
  fs::path file;
  for (const auto& e : fs::directory_iterator(dir_ / "pics/.caulk-images")) file = e.path();
  EXPECT_THAT(file.filename().string(), ::testing::StartsWith("val.txt."));
  const auto a = caulk::io::NpyArray::open(file);
  const float* v = static_cast<const float*>(a.data());
  // Row 0 is e.png (image 4), in the list's order; luma of RGB.
  EXPECT_NEAR(v[0], (0.299 * pixel(4, 0, 0, 0) + 0.587 * pixel(4, 0, 0, 1) + 0.114 * pixel(4, 0, 0, 2)) / 255.0, 1e-6);
  EXPECT_NEAR(v[24 + 7], (0.299 * pixel(3, 1, 1, 0) + 0.587 * pixel(3, 1, 1, 1) + 0.114 * pixel(3, 1, 1, 2)) / 255.0, 1e-6);
}

// (adapter.models on a TorchScript CNN takes the tensor as dataset.load's inputs; the MLPs of
// zoo.pretrain refuse samples of rank > 1, so the consumer here is a ranker on precomputed features.)
TEST_F(DatasetImages, RankersDownstreamTakeItsLabelsAndItsRowsAreChecked) {
  auto features = [](std::size_t rows) {
    std::vector<float> v(rows * 2);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>((i * 7) % 5) / 5.0f;
    return npy_f32(rows, 2, v);
  };
  dir_.write("f_train.npy", features(3));
  dir_.write("f_test.npy", features(2));
  dir_.write("hub.toml", "[hub]\nname = \"h\"\n[[model]]\nname = \"m\"\nfeatures = { train = \"f_train.npy\", test = \"f_test.npy\" }\n");
  const std::string p = pipeline(R"(splits = { train = "pics/train", test = "pics/test" })", R"([[node]]
id = "hub"
type = "adapter.precomputed"
params = { manifest = "hub.toml" }
[[node]]
id = "rank"
type = "rank.logme"
inputs = { features = "hub", data = "images.data" }
)");
  auto r = run(p);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto run_json = nlohmann::json::parse(read_file(dir_ / "out/run.json"));
  EXPECT_EQ(run_json["nodes"]["rank"]["status"], "ok");
  // Its facts reach the checks downstream: features with other rows than the images are refused.
  dir_.write("f_train.npy", features(4));
  r = run(p, "again");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err,
              HasSubstr(at("\"pics/train\"") + ": error: node 'images': parameter 'splits': labels file " + (dir_ / "pics/train").string() +
                        " has 3 rows for split 'train' but the features of every model of hub 'h' have 4"));
}

TEST_F(DatasetImages, CorruptPngNamesTheFile) {
  std::string bytes = read_file(dir_ / "pics/train/cat/b.png");
  dir_.write("pics/train/cat/b.png", bytes.substr(0, bytes.size() / 2));
  auto r = run(pipeline());
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr((dir_ / "pics/train/cat/b.png").string() + ": corrupt PNG image"));
}

// OpenCV is loaded only when images are read (caulk/images/preprocess.hpp): a process that cannot
// load it says which library it needs and how to get it, and nothing else is affected.
TEST_F(DatasetImages, WithoutOpenCvsLibraryTheNodeSaysWhatItNeeds) {
  dir_.write("p.toml", pipeline());
  auto r = run_caulk({"run", (dir_ / "p.toml").string(), "--out", (dir_ / "out").string(), "--no-cache"},
                     "CAULK_IMAGES_OPENCV=" + (dir_ / "missing.so").string());
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("reading images needs libcaulk_images_opencv.so, which is not at " + (dir_ / "missing.so").string()));
  EXPECT_THAT(r.err, HasSubstr("scripts/install-deps.sh core"));
}

TEST_F(DatasetImages, TruncatedJpegNamesTheFile) {
  cv::Mat img(16, 16, CV_8UC3, cv::Scalar(10, 20, 30));
  std::vector<unsigned char> buf;
  ASSERT_TRUE(cv::imencode(".jpg", img, buf));
  dir_.write("pics/test/dog/f.jpg", std::string(buf.begin(), buf.end() - 30));
  auto r = run(pipeline(R"(splits = { train = "pics/train", test = "pics/test" }, resize = 4, crop = 4)"));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr((dir_ / "pics/test/dog/f.jpg").string() + ": truncated JPEG"));
}

TEST_F(DatasetImages, ImagesOfDifferentSizesNeedResizeAndCrop) {
  write_png(dir_ / "pics/train/dog/c.png", 2, 5, 6);
  auto r = run(pipeline());
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr((dir_ / "pics/train/dog/c.png").string() + ": is 5 x 6 (height x width) after preprocessing"));
  EXPECT_THAT(r.err, HasSubstr("set resize and crop"));
}

TEST_F(DatasetImages, MissingFolderIsReportedByCheckAtTheParameterWithASuggestion) {
  dir_.write("p.toml", pipeline(R"(splits = { train = "pics/train", test = "pics/tset" })"));
  auto r = run_caulk({"check", (dir_ / "p.toml").string()});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(
      r.err, HasSubstr(at("\"pics/tset\"") + ": error: node 'images': parameter 'splits': image folder or list file " +
                       (dir_ / "pics/tset").string() + ": no such folder or file (did you mean '" + (dir_ / "pics/test").string() + "'?)"));
}

TEST_F(DatasetImages, ClassesThatDifferFromTrainAreReportedBeforeRunning) {
  write_png(dir_ / "pics/test/bird/g.png", 5);
  auto r = run(pipeline());
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr(at("\"pics/test\"") + ": error: node 'images': parameter 'splits': " + (dir_ / "pics/test").string() +
                               ": the classes of split 'test' differ from those of split 'train' (" + (dir_ / "pics/train").string() +
                               "): extra 'bird'"));
  EXPECT_FALSE(fs::exists(dir_ / "out/run.json"));
}

TEST_F(DatasetImages, EmptyClassAndMalformedListAreReportedBeforeRunning) {
  fs::create_directories(dir_ / "pics/train/fish");
  dir_.write("pics/val.txt", "test/dog/e.png 1\ntest/cat/d.png,0\n");
  auto r = run(pipeline(R"(splits = { train = "pics/train", val = "pics/val.txt" })"));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr((dir_ / "pics/train/fish").string() + ": class 'fish' holds no PNG or JPEG images"));
  EXPECT_THAT(r.err, HasSubstr((dir_ / "pics/val.txt").string() + ":2: a comma-separated line"));
}

TEST_F(DatasetImages, ListLabelOutsideTheClassesIsAnError) {
  dir_.write("pics/val.txt", "test/dog/e.png 2\n");
  auto r = run(pipeline(R"(splits = { train = "pics/train", val = "pics/val.txt" })"));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr(at("\"pics/val.txt\"") + ": error: node 'images': parameter 'splits': " + (dir_ / "pics/val.txt").string() +
                               ":1: label 2 is not a class index: the classes are 0 to 1 (the class sub-folders of " +
                               (dir_ / "pics/train").string() + ")"));
}

TEST_F(DatasetImages, BadParametersAreNamed) {
  auto r = run(pipeline(R"(splits = "pics/train", mean = [0.5, 0.5], std = [1, 0, 1], resize = 4, crop = 5)"));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("parameter 'mean': has 2 values but channels is 3"));
  EXPECT_THAT(r.err, HasSubstr("parameter 'std': values must be positive"));
  EXPECT_THAT(r.err, HasSubstr("parameter 'crop': 5 is larger than resize (4)"));
}

}  // namespace
