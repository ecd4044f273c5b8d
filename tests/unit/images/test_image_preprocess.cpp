// dataset.images' image code (plugins/adapters/algorithms/images.hpp, image_folder.hpp) against
// independent computations: a brute-force bilinear formula with OpenCV's half-pixel convention,
// hand-worked area averages, torchvision's size and crop-offset rules worked by hand (Python's
// round halves to even), and images the test encodes itself with known pixels.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "adapters/algorithms/image_folder.hpp"
#include "caulk/images/preprocess.hpp"
#include "opencv_images.hpp"
#include "caulk/error.hpp"
#include "temp_dir.hpp"

using namespace caulk::images;
using caulk::testing::TempDir;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

namespace {

// A height x width RGB image with known, distinct values: pixel (y, x) channel c.
int pixel(int y, int x, int c) { return (y * 37 + x * 11 + c * 50 + 3) % 256; }

cv::Mat known_rgb(int height, int width) {
  cv::Mat m(height, width, CV_8UC3);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < 3; ++c) m.at<cv::Vec3b>(y, x)[c] = static_cast<unsigned char>(pixel(y, x, c));
  return m;
}

// Bilinear resampling of channel `c` of known_rgb(h, w) at output (oy, ox) of an oh x ow result,
// worked from the definition: source coordinate (o + 0.5) * in / out - 0.5, clamped to the image,
// and the 2 x 2 neighbours weighted by distance.
double bilinear(int h, int w, int oh, int ow, int oy, int ox, int c) {
  auto coord = [](int o, int in, int out, int* i0, int* i1, double* t) {
    double s = (o + 0.5) * in / out - 0.5;
    s = std::clamp(s, 0.0, static_cast<double>(in - 1));
    *i0 = static_cast<int>(std::floor(s));
    *i1 = std::min(*i0 + 1, in - 1);
    *t = s - *i0;
  };
  int y0, y1, x0, x1;
  double ty, tx;
  coord(oy, h, oh, &y0, &y1, &ty);
  coord(ox, w, ow, &x0, &x1, &tx);
  return (1 - ty) * ((1 - tx) * pixel(y0, x0, c) + tx * pixel(y0, x1, c)) + ty * ((1 - tx) * pixel(y1, x0, c) + tx * pixel(y1, x1, c));
}

float at(const std::vector<float>& t, int h, int w, int c, int y, int x) { return t[static_cast<std::size_t>((c * h + y) * w + x)]; }

std::string png_bytes(const cv::Mat& rgb) {
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  std::vector<unsigned char> buf;
  EXPECT_TRUE(cv::imencode(".png", bgr, buf));
  return std::string(buf.begin(), buf.end());
}

std::string jpeg_bytes(const cv::Mat& rgb) {
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  std::vector<unsigned char> buf;
  EXPECT_TRUE(cv::imencode(".jpg", bgr, buf, {cv::IMWRITE_JPEG_QUALITY, 100}));
  return std::string(buf.begin(), buf.end());
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const caulk::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(ImagePreprocess, ResizedSizeIsTorchvisionsShorterSideRule) {
  // torchvision: short -> size, long -> int(size * long / short).
  EXPECT_EQ(resized_size(4, 6, 2), std::make_pair(2, 3));
  EXPECT_EQ(resized_size(6, 4, 3), std::make_pair(4, 3));            // int(3 * 6 / 4) = int(4.5) = 4
  EXPECT_EQ(resized_size(5, 7, 3), std::make_pair(3, 4));            // int(21 / 5) = 4
  EXPECT_EQ(resized_size(375, 500, 256), std::make_pair(256, 341));  // int(341.33)
  EXPECT_EQ(resized_size(8, 8, 3), std::make_pair(3, 3));
}

TEST(ImagePreprocess, CropOffsetRoundsHalvesToEvenAsPython) {
  // int(round((size - crop) / 2.0)) in Python 3.
  EXPECT_EQ(center_crop_offset(5, 2), 2);  // round(1.5) = 2
  EXPECT_EQ(center_crop_offset(3, 2), 0);  // round(0.5) = 0
  EXPECT_EQ(center_crop_offset(7, 2), 2);  // round(2.5) = 2
  EXPECT_EQ(center_crop_offset(9, 2), 4);  // round(3.5) = 4
  EXPECT_EQ(center_crop_offset(6, 2), 2);
  EXPECT_EQ(center_crop_offset(4, 4), 0);
}

TEST(ImagePreprocess, NoResizeScalesToUnitRangeInChannelMajorOrder) {
  const cv::Mat img = known_rgb(4, 6);
  std::vector<float> t;
  Preprocess p;
  ASSERT_EQ(preprocess(img, p, t), std::make_pair(4, 6));
  ASSERT_EQ(t.size(), 3u * 4 * 6);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 6; ++x) EXPECT_NEAR(at(t, 4, 6, c, y, x), pixel(y, x, c) / 255.0, 1e-7);
}

TEST(ImagePreprocess, BilinearDownscaleMatchesTheFormula) {
  const cv::Mat img = known_rgb(4, 6);
  std::vector<float> t;
  Preprocess p;
  p.resize = 3;  // 4 x 6 -> 3 x 4
  ASSERT_EQ(preprocess(img, p, t), std::make_pair(3, 4));
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 4; ++x) EXPECT_NEAR(at(t, 3, 4, c, y, x), bilinear(4, 6, 3, 4, y, x, c) / 255.0, 1e-6) << c << y << x;
}

TEST(ImagePreprocess, BilinearUpscaleThenCropThenNormaliseMatchesTheFormula) {
  const cv::Mat img = known_rgb(4, 6);
  std::vector<float> t;
  Preprocess p;
  p.resize = 7;  // 4 x 6 -> 7 x int(7 * 6 / 4) = 7 x 10
  p.crop = 4;    // top = round(1.5) = 2, left = round(3) = 3
  p.mean = {0.1, 0.2, 0.3};
  p.std = {0.5, 0.25, 2.0};
  ASSERT_EQ(preprocess(img, p, t), std::make_pair(4, 4));
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 4; ++x) {
        const double v = bilinear(4, 6, 7, 10, y + 2, x + 3, c) / 255.0;
        EXPECT_NEAR(at(t, 4, 4, c, y, x), (v - p.mean[c]) / p.std[c], 1e-5) << c << y << x;
      }
}

TEST(ImagePreprocess, AreaDownscaleByTwoAveragesBlocks) {
  const cv::Mat img = known_rgb(4, 4);
  std::vector<float> t;
  Preprocess p;
  p.resize = 2;
  p.interpolation = Interpolation::Area;
  ASSERT_EQ(preprocess(img, p, t), std::make_pair(2, 2));
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 2; ++y)
      for (int x = 0; x < 2; ++x) {
        const double mean =
            (pixel(2 * y, 2 * x, c) + pixel(2 * y, 2 * x + 1, c) + pixel(2 * y + 1, 2 * x, c) + pixel(2 * y + 1, 2 * x + 1, c)) / 4.0;
        EXPECT_NEAR(at(t, 2, 2, c, y, x), mean / 255.0, 1e-6);
      }
}

TEST(ImagePreprocess, GrayscaleIsLumaOfRgb) {
  const cv::Mat img = known_rgb(3, 5);
  std::vector<float> t;
  Preprocess p;
  p.channels = 1;
  p.mean = {0.5};
  p.std = {0.5};
  ASSERT_EQ(preprocess(img, p, t), std::make_pair(3, 5));
  ASSERT_EQ(t.size(), 15u);
  for (int y = 0; y < 3; ++y)
    for (int x = 0; x < 5; ++x) {
      const double luma = (0.299 * pixel(y, x, 0) + 0.587 * pixel(y, x, 1) + 0.114 * pixel(y, x, 2)) / 255.0;
      EXPECT_NEAR(at(t, 3, 5, 0, y, x), (luma - 0.5) / 0.5, 1e-6);
    }
}

TEST(ImagePreprocess, CropLargerThanTheImageIsAnError) {
  std::vector<float> t;
  Preprocess p;
  p.crop = 5;
  EXPECT_THAT(error_of([&] { preprocess(known_rgb(4, 6), p, t); }), HasSubstr("the image is 4 x 6 (height x width) but the crop is 5 x 5"));
}

TEST(ImageDecode, PngDecodesToItsPixelsInRgbOrder) {
  const cv::Mat img = known_rgb(4, 6);
  const cv::Mat back = decode_image(png_bytes(img), 3);
  ASSERT_EQ(back.rows, 4);
  ASSERT_EQ(back.cols, 6);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 6; ++x)
      for (int c = 0; c < 3; ++c) EXPECT_EQ(back.at<cv::Vec3b>(y, x)[c], pixel(y, x, c));
}

TEST(ImageDecode, JpegDecodesCloseToItsPixels) {
  // One flat colour per 8 x 8 block: JPEG keeps it (up to rounding in the colour transform).
  cv::Mat img(8, 16, CV_8UC3, cv::Scalar(200, 100, 50));
  img(cv::Rect(8, 0, 8, 8)).setTo(cv::Scalar(20, 220, 120));
  const std::string bytes = jpeg_bytes(img);
  EXPECT_EQ(image_format(bytes), "jpeg");
  const cv::Mat back = decode_image(bytes, 3);
  ASSERT_EQ(back.rows, 8);
  ASSERT_EQ(back.cols, 16);
  EXPECT_NEAR(back.at<cv::Vec3b>(4, 2)[0], 200, 3);  // R first
  EXPECT_NEAR(back.at<cv::Vec3b>(4, 2)[2], 50, 3);
  EXPECT_NEAR(back.at<cv::Vec3b>(4, 12)[1], 220, 3);
}

TEST(ImageDecode, BadBytesSayWhatIsWrong) {
  const std::string png = png_bytes(known_rgb(16, 16));
  const std::string jpeg = jpeg_bytes(known_rgb(16, 16));
  EXPECT_THAT(error_of([] { decode_image("hello, not an image", 3); }), HasSubstr("not a PNG or JPEG image"));
  EXPECT_THAT(error_of([] { decode_image("", 3); }), HasSubstr("the file is empty"));
  EXPECT_THAT(error_of([&] { decode_image(png.substr(0, png.size() / 2), 3); }), HasSubstr("corrupt PNG image"));
  EXPECT_THAT(error_of([&] { decode_image(jpeg.substr(0, jpeg.size() - 40), 3); }), HasSubstr("truncated JPEG"));
  std::string damaged = png;
  for (std::size_t i = 40; i < 60; ++i) damaged[i] = static_cast<char>(0x5A);
  EXPECT_THAT(error_of([&] { decode_image(damaged, 3); }), HasSubstr("corrupt PNG image"));
}

TEST(ImageFolder, ClassesAreSortedFolderNamesAndHiddenOnesAreSkipped) {
  TempDir dir;
  const std::string png = png_bytes(known_rgb(2, 2));
  for (const char* f : {"b/2.png", "b/1.PNG", "a/x/deep.jpg", "a/z.jpeg", "10/q.png", "2/q.png", ".caulk-images/x.png"}) dir.write(f, png);
  dir.write("b/notes.txt", "ignored");
  const SplitListing l = list_image_folder(dir.path());
  EXPECT_EQ(l.classes, (std::vector<std::string>{"10", "2", "a", "b"}));  // byte order, as Python's sorted()
  std::vector<std::pair<std::string, int>> got;
  for (const auto& e : l.images) got.emplace_back(e.file.lexically_relative(dir.path()).string(), e.label);
  EXPECT_EQ(got, (std::vector<std::pair<std::string, int>>{
                     {"10/q.png", 0}, {"2/q.png", 1}, {"a/x/deep.jpg", 2}, {"a/z.jpeg", 2}, {"b/1.PNG", 3}, {"b/2.png", 3}}));
}

TEST(ImageFolder, EmptyClassAndNoClassesAreErrorsNamingTheFolder) {
  TempDir dir;
  dir.write("a/1.png", png_bytes(known_rgb(2, 2)));
  fs::create_directories(dir / "b");
  EXPECT_THAT(error_of([&] { list_image_folder(dir.path()); }),
              HasSubstr((dir / "b").string() + ": class 'b' holds no PNG or JPEG images"));
  TempDir flat;
  flat.write("1.png", "x");
  EXPECT_THAT(error_of([&] { list_image_folder(flat.path()); }),
              HasSubstr(flat.path().string() + ": has no class sub-folders (its images lie directly in it)"));
}

TEST(ImageList, LinesArePathAndClassIndex) {
  TempDir dir;
  dir.write("img/one two.png", "x");
  dir.write("img/b.jpg", "x");
  dir.write("list.txt", "# a comment\nimg/one two.png 1\n\n  img/b.jpg\t0  \n");
  const SplitListing l = read_image_list(dir / "list.txt");
  ASSERT_EQ(l.images.size(), 2u);
  EXPECT_EQ(l.images[0].file, dir / "img/one two.png");
  EXPECT_EQ(l.images[0].label, 1);
  EXPECT_EQ(l.images[0].line, 2);
  EXPECT_EQ(l.images[1].file, dir / "img/b.jpg");
  EXPECT_EQ(l.images[1].label, 0);
}

TEST(ImageList, MalformedLinesAreNamedByFileAndLine) {
  TempDir dir;
  dir.write("a.png", "x");
  const std::string list = (dir / "list.txt").string();
  dir.write("list.txt", "a.png 0\na.png,1\n");
  EXPECT_THAT(error_of([&] { read_image_list(list); }), HasSubstr(list + ":2: a comma-separated line: each line is \"PATH LABEL\""));
  dir.write("list.txt", "a.png\n");
  EXPECT_THAT(error_of([&] { read_image_list(list); }), HasSubstr(list + ":1: no label"));
  dir.write("list.txt", "a.png 0\na.png cat\n");
  EXPECT_THAT(error_of([&] { read_image_list(list); }), HasSubstr(list + ":2: the label 'cat' is not a class index"));
  dir.write("list.txt", "a.png -1\n");
  EXPECT_THAT(error_of([&] { read_image_list(list); }), HasSubstr(list + ":1: the label '-1' is not a class index"));
  dir.write("list.txt", "a.png 0\n\nmissing.png 1\n");
  EXPECT_THAT(error_of([&] { read_image_list(list); }), HasSubstr(list + ":3: image " + (dir / "missing.png").string() + ": no such file"));
  dir.write("list.txt", "notes.txt 1\n");
  EXPECT_THAT(error_of([&] { read_image_list(list); }), HasSubstr(list + ":1: 'notes.txt' is not a .png, .jpg or .jpeg file"));
}

TEST(ImageClasses, ListsAloneGiveZeroToTheLargestLabelAndFoldersMustAgree) {
  SplitListing a, b;
  a.is_folder = b.is_folder = false;
  a.source = "a.txt";
  b.source = "b.txt";
  a.images = {ImageEntry{"x.png", 0, {}, 1}, ImageEntry{"y.png", 3, {}, 2}};
  b.images = {ImageEntry{"z.png", 1, {}, 1}};
  std::vector<std::pair<std::string, std::string>> problems;
  EXPECT_EQ(shared_classes({{"train", a}, {"test", b}}, problems), (std::vector<std::string>{"0", "1", "2", "3"}));
  EXPECT_TRUE(problems.empty());

  a.images = {ImageEntry{"x.png", 0, {}, 1}};
  b.images = {ImageEntry{"z.png", 0, {}, 1}};
  shared_classes({{"train", a}, {"test", b}}, problems);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0].second, HasSubstr("classification needs at least two classes, found 1"));

  // Folders: "train" is the reference even when another split sorts first.
  SplitListing train, other;
  train.source = "tr";
  other.source = "ot";
  train.classes = {"cat", "dog"};
  other.classes = {"cat", "cow"};
  problems.clear();
  EXPECT_EQ(shared_classes({{"train", train}, {"a", other}}, problems), train.classes);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].first, "a");
  EXPECT_THAT(problems[0].second,
              HasSubstr("ot: the classes of split 'a' differ from those of split 'train' (tr): missing 'dog' extra 'cow'"));
}
