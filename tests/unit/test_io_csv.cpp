#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "caulk/error.hpp"
#include "caulk/io/csv.hpp"
#include "io_test_support.hpp"

using namespace caulk;
using namespace caulk::io;
using caulk::test::data_error_message;
using caulk::test::read_bytes;
using caulk::test::ScratchDir;
using caulk::test::write_bytes;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

using Rows = std::vector<std::vector<std::string>>;

TEST(Csv, ParsesQuotedFieldsAndRemembersLines) {
  auto table = parse_csv(
      "model,score,note\n"
      "alpha,1.5,plain\n"
      "\"be,ta\",\"2\",\"say \"\"hi\"\"\"\n"
      "gamma,3,\"two\nlines\"\n"
      "delta,4,\n",
      "t.csv");
  EXPECT_EQ(table.path, "t.csv");
  EXPECT_THAT(table.header, ElementsAre("model", "score", "note"));
  EXPECT_EQ(table.rows, (Rows{{"alpha", "1.5", "plain"}, {"be,ta", "2", "say \"hi\""}, {"gamma", "3", "two\nlines"}, {"delta", "4", ""}}));
  EXPECT_THAT(table.row_lines, ElementsAre(2, 3, 4, 6));
}

TEST(Csv, LineEndingsBomBlankLinesAndNoFinalNewline) {
  auto table = parse_csv(
      "\xEF\xBB\xBF"
      "a,b\r\n1,2\r\n\r\n\n3,4",
      "t.csv");
  EXPECT_THAT(table.header, ElementsAre("a", "b"));
  EXPECT_EQ(table.rows, (Rows{{"1", "2"}, {"3", "4"}}));
  EXPECT_THAT(table.row_lines, ElementsAre(2, 5));
  auto single = parse_csv("x\n\"\"\n", "s.csv");  // a quoted empty value is a row, not a blank line
  EXPECT_EQ(single.rows, (Rows{{""}}));
}

TEST(Csv, ColumnsAndNumbers) {
  auto table = parse_csv("name,score\na, 2.5 \nb,+3\nc,-4e2\nd,abc\ne,\nf,1e999\n", "s.csv");
  EXPECT_EQ(table.column("score"), 1u);
  EXPECT_TRUE(table.has_column("name"));
  EXPECT_FALSE(table.has_column("Score"));
  EXPECT_EQ(data_error_message([&] { table.column("rank"); }), "s.csv: no column 'rank' (the columns are 'name', 'score')");
  EXPECT_EQ(table.number(0, 1), 2.5);
  EXPECT_EQ(table.number(1, 1), 3.0);
  EXPECT_EQ(table.number(2, 1), -400.0);
  EXPECT_EQ(data_error_message([&] { table.number(3, 1); }), "s.csv:5: column 'score': 'abc' is not a number");
  EXPECT_EQ(data_error_message([&] { table.number(4, 1); }), "s.csv:6: column 'score': '' is not a number");
  EXPECT_EQ(data_error_message([&] { table.number(5, 1); }), "s.csv:7: column 'score': '1e999' is out of range for a double");
  EXPECT_THROW(table.number(9, 0), std::out_of_range);
}

TEST(Csv, MalformedFiles) {
  ScratchDir dir;
  const auto missing = dir / "missing.csv";
  EXPECT_EQ(data_error_message([&] { read_csv(missing); }), missing.string() + ": cannot open: no such file");
  write_bytes(dir / "empty.csv", "");
  EXPECT_EQ(data_error_message([&] { read_csv(dir / "empty.csv"); }), (dir / "empty.csv").string() + ": empty file (no header row)");
  EXPECT_EQ(data_error_message([&] { parse_csv("\n\n", "blank.csv"); }), "blank.csv: empty file (no header row)");

  write_bytes(dir / "short.csv", "a,b,c\n1,2,3\n4,5\n");
  EXPECT_EQ(data_error_message([&] { read_csv(dir / "short.csv"); }),
            (dir / "short.csv").string() + ":3: row has 2 fields, but the header has 3");
  EXPECT_EQ(data_error_message([&] { parse_csv("a,b\n1,2,3\n", "long.csv"); }), "long.csv:2: row has 3 fields, but the header has 2");
  EXPECT_EQ(data_error_message([&] { parse_csv("a,b\n1,\"open\n2,3\n", "q.csv"); }), "q.csv:2: unterminated quoted field (column 2)");
  EXPECT_EQ(data_error_message([&] { parse_csv("a,b\n\"x\"y,2\n", "q.csv"); }),
            "q.csv:2: unexpected text after the closing quote of column 1");
  EXPECT_EQ(data_error_message([&] { parse_csv("a,,c\n1,2,3\n", "h.csv"); }), "h.csv:1: empty name for column 2 in the header");
  EXPECT_EQ(data_error_message([&] { parse_csv("a,b,a\n1,2,3\n", "h.csv"); }),
            "h.csv:1: column name 'a' appears twice in the header (columns 1 and 3)");
}

TEST(Csv, LineIsKeptApartFromThePath) {
  try {
    parse_csv("a\n1,2\n", "x.csv");
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_EQ(e.file(), "x.csv");
    EXPECT_EQ(e.line(), 2);
    EXPECT_EQ(e.problem(), "row has 2 fields, but the header has 1");
  }
}

TEST(Csv, FieldsAreQuotedOnlyWhenNeeded) {
  EXPECT_EQ(csv_field("plain"), "plain");
  EXPECT_EQ(csv_field(""), "");
  EXPECT_EQ(csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv_field("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(csv_field("cr\r"), "\"cr\r\"");
}

TEST(Csv, WritesAtomicallyAndRoundTrips) {
  ScratchDir dir;
  const Rows rows = {{"a,b", "say \"hi\""}, {"two\nlines", ""}};
  write_csv(dir / "out.csv", {"name", "note"}, rows);
  EXPECT_EQ(read_bytes(dir / "out.csv"), "name,note\n\"a,b\",\"say \"\"hi\"\"\"\n\"two\nlines\",\n");
  auto table = read_csv(dir / "out.csv");
  EXPECT_THAT(table.header, ElementsAre("name", "note"));
  EXPECT_EQ(table.rows, rows);

  write_csv(dir / "one.csv", {"x"}, {{""}, {"1"}});
  EXPECT_EQ(read_csv(dir / "one.csv").rows, (Rows{{""}, {"1"}}));

  EXPECT_THAT(data_error_message([&] {
                write_csv(dir / "bad.csv", {"a", "b"}, {{"1"}});
              }),
              HasSubstr("row 1 has 1 fields, but the header has 2"));
  EXPECT_FALSE(std::filesystem::exists(dir / "bad.csv"));
}
