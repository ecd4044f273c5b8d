// The page's text: escaping, JSON inside <script>, base64 and PNG text chunks.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "reports/algorithms/html_text.hpp"

using namespace caulk;
using namespace caulk::report;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(HtmlText, EscapesEveryCharacterThatMeansSomethingInHtml) {
  EXPECT_EQ(html_escape("a<b>&\"c'd"), "a&lt;b&gt;&amp;&quot;c&#39;d");
  EXPECT_EQ(html_escape("plain text"), "plain text");
  EXPECT_EQ(html_escape(""), "");
  EXPECT_EQ(html_escape("&&"), "&amp;&amp;");
  EXPECT_EQ(html_escape("'x'"), "&#39;x&#39;");
  EXPECT_EQ(html_escape(std::string(1000, 'a') + "<"), std::string(1000, 'a') + "&lt;");
}

TEST(HtmlText, JsonInAScriptCannotCloseItAndStaysTheSameJson) {
  Json v = Json{{"name", "</script><script>alert(1)</script>"}, {"comment", "<!-- x -->"}, {"amp", "a&b"}};
  const std::string text = json_for_script(v);
  EXPECT_THAT(text, Not(HasSubstr("<")));
  EXPECT_THAT(text, Not(HasSubstr(">")));
  EXPECT_THAT(text, Not(HasSubstr("&")));
  EXPECT_EQ(Json::parse(text), v);
}

TEST(HtmlText, JsonWithInvalidUtf8IsStillWritten) {
  Json v = std::string("bad \xff byte");
  EXPECT_NO_THROW(Json::parse(json_for_script(v)));
}

TEST(HtmlText, Base64MatchesTheRfc4648Vectors) {
  EXPECT_EQ(base64(""), "");
  EXPECT_EQ(base64("f"), "Zg==");
  EXPECT_EQ(base64("fo"), "Zm8=");
  EXPECT_EQ(base64("foo"), "Zm9v");
  EXPECT_EQ(base64("foob"), "Zm9vYg==");
  EXPECT_EQ(base64("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64("Many hands make light work."), "TWFueSBoYW5kcyBtYWtlIGxpZ2h0IHdvcmsu");
  EXPECT_EQ(base64(std::string("\xff\xfe\x00\x01", 4)), "//4AAQ==");
  EXPECT_EQ(base64(std::string("\xff\x00\x80", 3)), "/wCA");
}

namespace {
std::string chunk(const std::string& type, const std::string& data) {
  std::string out;
  const auto n = static_cast<std::uint32_t>(data.size());
  out += static_cast<char>(n >> 24);
  out += static_cast<char>(n >> 16);
  out += static_cast<char>(n >> 8);
  out += static_cast<char>(n);
  out += type + data + std::string(4, '\0');  // the CRC is not checked
  return out;
}
}  // namespace

TEST(HtmlText, ReadsThePngTextChunksAndConvertsLatin1) {
  std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + chunk("IHDR", std::string(13, '\0')) +
                    chunk("tEXt", std::string("Title\0weights of A", 18)) + chunk("tEXt", std::string("Description\0caf\xe9", 16)) +
                    chunk("IEND", "");
  auto text = png_text_chunks(png);
  ASSERT_EQ(text.size(), 2u);
  EXPECT_EQ(text["Title"], "weights of A");
  EXPECT_EQ(text["Description"], "caf\xc3\xa9");
  EXPECT_TRUE(png_text_chunks("not a png").empty());
  // Truncated: what was read before the cut is kept, and nothing is read past the end.
  EXPECT_EQ(png_text_chunks(png.substr(0, png.size() - 20)).count("Title"), 1u);
}

TEST(HtmlText, NumbersShowFourSignificantDigitsAndIntegersWhole) {
  EXPECT_EQ(report::format_number(0.123456), "0.1235");
  EXPECT_EQ(report::format_number(3.0), "3");
  EXPECT_EQ(report::format_number(-1234567.0), "-1234567");
  EXPECT_EQ(report::format_number(1e-7), "1e-07");
  EXPECT_EQ(report::format_number(std::nan("")), "nan");
}
